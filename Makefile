# The two set-up commands of the README. Both work on a fresh Debian machine.
.PHONY: test run bench clean

test:            ## install what the tests need, start etcd + MariaDB, run pytest, stop them
	bash scripts/test.sh

clean:
	rm -rf .venv .state
