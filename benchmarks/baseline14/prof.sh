#!/bin/bash
# Throw-away: a 60 s spread run (no peers); py-spy w0 at 250 Hz (GIL holder) for 30 s,
# and per-thread CPU of w0 (from /proc) over the same 30 s.
cd "$(dirname "$0")/../.."  # the repository
PY=${PY:-python}
PYTHONPATH=src $PY -m benchmarks.latency --mode spread --workers 2 --jobs 100 --seconds 60 --peers none --tag base14-prof60 > /tmp/base14-prof60.out 2>/tmp/base14-prof60.err &
H=$!
# wait for the measuring window to begin
until grep -q "scheduler: *[0-9]" /tmp/base14-prof60.err 2>/dev/null; do sleep 0.5; done
sleep 5
W0=$(pgrep -P $H -f -- "-m worker" | head -1)
W1=$(pgrep -P $H -f -- "-m worker" | tail -1)
echo "harness $H w0 $W0 w1 $W1"
snap() { for t in /proc/$1/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(cut -d')' -f2 $t/stat | awk '{print $12, $13}')"; done; }
snap $W0 > benchmarks/results/base14-w0-threads0.txt
cat /proc/$W0/stat | cut -d')' -f2 | awk '{print "proc", $12, $13, $14, $15}' > benchmarks/results/base14-w0-proc.txt
"$(dirname "$(command -v "$PY")")/py-spy" record --pid $W0 --rate 250 --duration 30 --format raw --output benchmarks/results/base14-w0-gil.pyspy.txt --nonblocking --gil > /dev/null 2>&1
snap $W0 > benchmarks/results/base14-w0-threads1.txt
cat /proc/$W0/stat | cut -d')' -f2 | awk '{print "proc", $12, $13, $14, $15}' >> benchmarks/results/base14-w0-proc.txt
"$(dirname "$(command -v "$PY")")/py-spy" record --pid $W1 --rate 250 --duration 15 --format raw --output benchmarks/results/base14-w1-all.pyspy.txt --nonblocking > /dev/null 2>&1
wait $H
echo prof-done
