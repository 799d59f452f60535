# The two set-up commands of the README. Both work on a fresh Debian machine.
.PHONY: test run bench clean

run:             ## etcd + master on 127.0.0.1:8070 + two workers, SQLite, state in .state/
	bash scripts/run.sh

test:            ## install what the tests need, start etcd + MariaDB, run pytest, stop them
	bash scripts/test.sh

bench:           ## the standard benchmark set (about 7 min on 2 cores); see BENCHMARKS.md
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/python -m pip install -q -e '.[bench]'
	.venv/bin/python -m benchmarks.latency --mode spread --json benchmarks/results/latency-spread.json
	.venv/bin/python -m benchmarks.latency --mode burst --json benchmarks/results/latency-burst.json
	.venv/bin/python -m benchmarks.scale
	.venv/bin/python -m benchmarks.sink
	.venv/bin/python -m benchmarks.faults

clean:
	rm -rf .venv .state
