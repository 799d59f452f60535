"""Throw-away (issue 14 baseline): per-fire counts from sitecustomize.py's dumps.

    python benchmarks/baseline14/window.py DUMP_DIR FIRES_PER_SECOND

Takes the steady stretch from 4 s after the last worker's first claim to 4 s before
the first worker's last one, and divides each counter's increase by the fires due in
it (spread mode: FIRES_PER_SECOND x seconds); prints each worker, then the fleet."""
import json, sys, glob, collections
d, rate = sys.argv[1], float(sys.argv[2])
work = []
for f in sorted(glob.glob(d + "/*.jsonl")):
    rows = [json.loads(l) for l in open(f)]
    if "worker" in rows[-1]["argv"][0]:
        work.append(rows)
def claims(r):
    return sum(v for k, v in r["c"].items() if k.startswith("op txn[") and "put:running" in k)
starts, ends = [], []
for rows in work:
    cs = [claims(r) for r in rows]
    starts.append(next(r["t"] for r, c in zip(rows, cs) if c > 0))
    last = cs[-1]
    ends.append(next(r["t"] for r, c in zip(rows, cs) if c == last))
t0, t1 = max(starts) + 4, min(ends) - 4
fires = rate * (t1 - t0)
print(f"steady interval {t1 - t0:.1f} s, fires {fires:.0f}")
tot = collections.Counter()
for rows in work:
    a = min(rows, key=lambda x: abs(x["t"] - t0)); b = min(rows, key=lambda x: abs(x["t"] - t1))
    delta = +collections.Counter({k: b["c"].get(k, 0) - a["c"].get(k, 0) for k in b["c"]})
    print(f"-- worker pid file, span {b['t']-a['t']:.2f} s; per fleet fire:")
    for k, v in sorted(delta.items(), key=lambda kv: -kv[1]):
        print(f"  {v:7d}  {v/fires:6.3f}  {k}")
    tot += delta
print(f"-- fleet total ({len(work)} workers), per fire")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
    print(f"  {v:7d}  {v/fires:6.3f}  {k}")
