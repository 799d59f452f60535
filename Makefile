# The two set-up commands of the README. Both work on a fresh Debian machine.
.PHONY: test run bench clean

run:             ## etcd + master on 127.0.0.1:8070 + two workers, SQLite, state in .state/
	bash scripts/run.sh

test:            ## install what the tests need, start etcd + MariaDB, run pytest, stop them
	bash scripts/test.sh

clean:
	rm -rf .venv .state
