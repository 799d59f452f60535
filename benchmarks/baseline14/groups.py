"""Throw-away (issue 14 baseline): group py-spy raw stacks, own-time shares.

    python benchmarks/baseline14/groups.py benchmarks/results/base14-w0-gil.pyspy.txt

A stack goes to the first group in RULES that any of its frames matches; the rest to
trio scheduling when its leaf is trio's or the actor runtime's, else to "other"."""
import sys, collections
RULES = [
    ("subprocess spawn", ("subprocess.py", "executor/spawn.py", "executor/process.py", "executor/launch.py:9", "executor/environment.py")),
    ("JSON encode/decode", ("json/",)),
    ("watch event handling", ("cluster/mirror.py", "job_watcher/", "etcd/_watch.py")),
    ("store/log sink", ("log_sink/", "cluster/store/", "sqlite", "live_output")),
    ("etcd: gRPC call (in the worker thread)", ("grpc/", "etcd/_connection.py", "WorkerThread")),
    ("etcd: request build + thread hand-off (trio side)", ("cluster/etcd/", "trio/_threads.py", "_thread_cache.py", "start_marks.py")),
    ("claim lead / plan (scheduler)", ("claim_lead.py", "scheduler/")),
]
TRIO = ("trio/", "outcome/", "actors/", "contextlib.py", "threading.py", "<frozen runpy>", "attrs generated", "_abc.py")
def group(frames):
    text = ";".join(frames)
    for name, pats in RULES:
        if any(p in text for p in pats):
            return name
    if any(p in frames[-1] for p in TRIO) or not frames[-1].strip():
        return "trio scheduling (+ actor runtime, mailboxes)"
    return "other (actor logic: locker, executor, scheduler)"
total = 0; g = collections.Counter(); leaf = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    fr, _, n = line.rstrip("\n").rpartition(" ")
    if not n.isdigit():
        continue
    frames = fr.split(";"); n = int(n); total += n
    k = group(frames); g[k] += n; leaf[k][frames[-1]] += n
fires = float(sys.argv[2]) if len(sys.argv) > 2 else None
print(f"{total} samples")
for k, v in g.most_common():
    print(f"{100*v/total:5.1f}%  {v:5d}  {k}")
    for f, c in leaf[k].most_common(4):
        print(f"          {100*c/total:4.1f}%  {f}")
