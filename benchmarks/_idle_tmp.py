"""Ad-hoc: 2 workers, N jobs (spread @every 1s, or yearly), CPU by thread of workers and etcd."""
import sys, uuid, trio, os, collections
from benchmarks._servers import scratch_dir, etcd_server, store_url
from benchmarks._workers import Fleet, wait_registered
from benchmarks._ours import _cpu_of
from benchmarks._load import put_jobs, Load
from cluster.etcd import open_etcd
from cluster.keyspace import Keyspace

def threads(pid):
    out = collections.Counter()
    tck = os.sysconf("SC_CLK_TCK")
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = s[s.index("(")+1:s.rindex(")")]
        f = s[s.rindex(")")+2:].split()
        out[name.rstrip("0123456789 ")] += (int(f[11]) + int(f[12])) / tck
    return out

async def main(n, seconds, firing, src):
    with scratch_dir("idle") as base, etcd_server(base) as etcd, store_url("sqlite", base) as db:
        prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
        ks = Keyspace(prefix)
        env = {"PYTHONPATH": src} if src else {}
        if os.environ.get("COUNT_ETCD"): env = {"PYTHONPATH": "/tmp/exp/count", "COUNT_ETCD": "1"}
        if os.environ.get("COUNT_STEPS"): env = {"PYTHONPATH": "/tmp/exp/steps:" + (src or ""), "COUNT_STEPS": "1"}
        fleet = Fleet(etcd.endpoint, prefix, db, base, os.environ.get("WARGS", "").split(), env, "worker")
        load = Load("spread", n, 0)
        async with open_etcd([etcd.endpoint]) as c:
            specs = [load.spec(i) if firing else {"name": f"j{i}", "command": "true", "cronExpr": "0 0 1 1 *"} for i in range(n)]
            await put_jobs(c, ks, specs)
            fleet.start(2)
            await wait_registered(c, ks, {w.worker_id for w in fleet.workers}, fleet)
            await trio.sleep(3)
            t0 = [threads(w.pid) for w in fleet.workers]
            w0, e0 = fleet.cpu_s(), _cpu_of(etcd.process.pid)
            import subprocess
            prof = subprocess.Popen([".venv/bin/py-spy","record","--pid",str(fleet.workers[0].pid),"--rate","500","--duration",str(seconds),"--format","raw","--output","/tmp/exp/prof.txt","--nonblocking","--gil"],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL) if os.environ.get("PROF") else None
            await trio.sleep(seconds)
            if prof: prof.wait()
            w1, e1 = fleet.cpu_s(), _cpu_of(etcd.process.pid)
            t1 = [threads(w.pid) for w in fleet.workers]
            print("workers CPU ms/s:", {k: round((w1[k]-w0[k])*1000/seconds,1) for k in w1}, "etcd ms/s:", round((e1-e0)*1000/seconds,1))
            for a, b in zip(t0, t1):
                print({k: round((b[k]-a.get(k,0))*1000/seconds,1) for k in b if b[k]-a.get(k,0) > 0})
            await trio.to_thread.run_sync(fleet.stop)
            for w in fleet.workers:
                for line in open(w.log_path, errors="replace"):
                    if "lead" in line.lower(): print(w.worker_id, line.rstrip()[:200])
trio.run(main, int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "fire", sys.argv[4] if len(sys.argv) > 4 else None)
