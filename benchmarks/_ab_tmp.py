"""Ad-hoc A/B: 2 workers, N spread jobs, CPU (workers+etcd) per fire, alternating source trees."""
import sys, uuid, trio, statistics
from benchmarks._servers import scratch_dir, etcd_server, store_url
from benchmarks._workers import Fleet, wait_registered
from benchmarks._ours import _cpu_of
from benchmarks._load import put_jobs, Load
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace

async def one(etcd, db, base, n, seconds, src, tag):
    prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
    ks = Keyspace(prefix)
    env = {"PYTHONPATH": src} if src else {}
    wd = base / f"{tag}-{uuid.uuid4().hex[:4]}"; wd.mkdir()
    fleet = Fleet(etcd.endpoint, prefix, db, wd, [], env, "worker")
    load = Load("spread", n, 0)
    async with open_etcd([etcd.endpoint]) as c:
        await put_jobs(c, ks, [load.spec(i) for i in range(n)])
        fleet.start(2)
        await wait_registered(c, ks, {w.worker_id for w in fleet.workers}, fleet)
        await trio.sleep(3)
        w0, e0 = fleet.cpu_s(), _cpu_of(etcd.process.pid)
        await trio.sleep(seconds)
        w1, e1 = fleet.cpu_s(), _cpu_of(etcd.process.pid)
        await trio.to_thread.run_sync(fleet.stop)
        await c.delete_prefix(prefix)
    w = sum(w1[k]-w0[k] for k in w1) * 1000 / seconds / n
    e = (e1-e0) * 1000 / seconds / n
    return w, e

async def main(n, seconds, rounds, srcs):
    res = {s: [] for s in srcs}
    with scratch_dir("ab") as base, etcd_server(base) as etcd, store_url("sqlite", base) as db:
        for r in range(rounds):
            for i, s in enumerate(srcs if r % 2 == 0 else list(reversed(srcs))):
                w, e = await one(etcd, db, base, n, seconds, None if s == "-" else s, f"r{r}")
                res[s].append((w, e))
                print(f"round {r} {s}: workers {w:.2f} etcd {e:.2f} total {w+e:.2f} ms/fire", flush=True)
    for s, v in res.items():
        tot = [a+b for a, b in v]
        print(f"{s}: median total {statistics.median(tot):.2f} workers {statistics.median(a for a,_ in v):.2f} etcd {statistics.median(b for _,b in v):.2f}")
trio.run(main, int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
