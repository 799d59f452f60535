"""Throw-away (issue 14 baseline): count etcd requests, writes, watch responses/events
and thread hand-offs in a worker process, without changing src/.

    I14_COUNT_DIR=/tmp/c2 PYTHONPATH=benchmarks/baseline14:src python -m benchmarks.latency ...
    python benchmarks/baseline14/window.py /tmp/c2 100

Active only when I14_COUNT_DIR is set (the harness passes its environment to the
workers); patches cluster.etcd._connection, cluster.etcd._watch and trio.to_thread by
an import hook when a process imports them, and appends the cumulative counters with
a timestamp and argv to I14_COUNT_DIR/<pid>.jsonl every 0.25 s (window.py keeps the
workers' files)."""
import os, sys
_DIR = os.environ.get("I14_COUNT_DIR")
if _DIR:
    import importlib.abc, importlib.util, threading, time, json, collections
    COUNTS = collections.Counter()
    DIRS = {"jobs", "killer", "trigger", "retry", "workers", "active", "state", "lock",
            "running", "audit", "unschedulable", "alert-channels", "alert-settings", "catch-up",
            "lost", "skipped"}

    def kind(key):
        if isinstance(key, bytes):
            key = key.decode(errors="replace")
        for part in key.strip("'\"").split("/"):
            if part in DIRS:
                return part
        return "other"

    def patch_conn(mod):
        Connection = mod.Connection
        real_unary = Connection.unary
        real_call = Connection.call
        def unary(self, method, request, **kw):
            op = kw.get("operation", "?")
            verb = op.split(" ")[0]
            w = kw.get("write", False)
            if verb == "txn":
                keys = set()
                for c in request.compare:
                    keys.add(kind(c.key))
                for o in list(request.success):
                    for f in ("request_put", "request_delete_range", "request_range"):
                        if o.HasField(f):
                            keys.add(f[8:] + ":" + kind(getattr(o, f).key))
                label = "txn[" + ",".join(sorted(keys)) + "]"
            else:
                rest = op[len(verb):].strip()
                if verb in ("get", "put", "delete", "stamp", "read"):
                    label = verb + (" prefix" if "prefix" in op else "") + ":" + kind(rest)
                else:
                    label = op
            COUNTS["req"] += 1
            if w:
                COUNTS["write"] += 1
            COUNTS["op " + label + (" W" if w else "")] += 1
            return real_unary(self, method, request, **kw)
        def call(self, attempt, **kw):
            COUNTS["call " + kw.get("operation", "?")] += 1
            if kw.get("operation") == "lease keepalive":
                COUNTS["req"] += 1
            return real_call(self, attempt, **kw)
        Connection.unary = unary
        Connection.call = call

    def patch_watch(mod):
        WS = mod.WatchStream
        real_accept = WS._accept
        def _accept(self, call, response):
            k = kind(self._key)
            COUNTS["watch responses " + k] += 1
            COUNTS["watch events " + k] += len(response.events)
            COUNTS["watch events"] += len(response.events)
            COUNTS["watch responses"] += 1
            return real_accept(self, call, response)
        WS._accept = _accept

    def patch_trio(mod):
        real = mod.run_sync
        async def run_sync(fn, *a, **kw):
            COUNTS["to_thread"] += 1
            return await real(fn, *a, **kw)
        mod.run_sync = run_sync

    TARGETS = {"cluster.etcd._connection": patch_conn, "cluster.etcd._watch": patch_watch,
               "trio.to_thread": patch_trio}

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in TARGETS:
                return None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
                if spec is not None:
                    loader = spec.loader
                    real_exec = loader.exec_module
                    def exec_module(module, _real=real_exec, _name=name):
                        _real(module)
                        TARGETS[_name](module)
                        COUNTS["patched " + _name] = 1
                    loader.exec_module = exec_module
                    return spec
            return None

    sys.meta_path.insert(0, Hook())

    def dumper():
        path = os.path.join(_DIR, f"{os.getpid()}.jsonl")
        while True:
            time.sleep(0.25)
            if not any(k.startswith("patched cluster") for k in COUNTS):
                continue
            with open(path, "a") as f:
                f.write(json.dumps({"t": time.time(), "argv": sys.argv, "c": dict(COUNTS)}) + "\n")
    threading.Thread(target=dumper, daemon=True).start()
