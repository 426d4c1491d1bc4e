#!/usr/bin/env python3
"""One runtime's worker for tools/bench_peers.py: `python bench_worker.py RUNTIME THREADS`, RUNTIME one of
pytorch, ort, executorch. It stays alive for one model, so the driver can interleave timing rounds across
runtimes, and its peak RSS (VmHWM) is that runtime's alone (the ORT worker never imports torch).

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout (library prints are sent to
stderr). Every answer has "ok"; a failure has "error" (the exception's first line).
  {"cmd": "load", "inputs": [npy, ..], ...}   pytorch: "pt2"; ort: "onnx";
                                              executorch: "model", "weights", "pte", "source" (the
                                              .pte is exported when missing or its stamp PTE.json differs,
                                              by a child process: export-executorch REQ THREADS)
  {"cmd": "round", "warmup": W, "iters": N}   -> "times": N wall-clock times in ms, one per call
  {"cmd": "check", "refs": [npy, ..]}         -> "max_abs_diff" of one more call's flattened outputs
  {"cmd": "mem"}                              -> "vmhwm_mb", "vmrss_mb" from /proc/self/status
  {"cmd": "quit"}
"""
import json
import os
import subprocess
import sys
import time
import traceback

import numpy as np


def first_line(e):
    s = str(e).strip()
    return f"{type(e).__name__}: {s.splitlines()[0] if s else ''}"[:300]


def proc_status_mb():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k.lower() + "_mb"] = round(int(v.split()[0]) / 1024, 1)
    return out


def max_abs_diff(outs, refs):
    if len(outs) != len(refs):
        raise ValueError(f"{len(outs)} outputs, PyTorch has {len(refs)}")
    worst = 0.0
    for o, r in zip(outs, refs):
        o = np.asarray(o)
        if o.shape != r.shape:
            raise ValueError(f"output shape {list(o.shape)}, PyTorch's {list(r.shape)}")
        if r.size:
            d = np.abs(o.astype(np.float64) - r.astype(np.float64))
            worst = max(worst, float(np.nanmax(d)) if not np.isnan(d).all() else float("nan"))
            if np.isnan(o).sum() != np.isnan(r).sum():
                worst = float("inf")
    return worst


class PyTorch:
    def __init__(self, threads):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch

    def load(self, req):
        import torch.utils._pytree as pytree
        torch = self.torch
        ep = torch.export.load(req["pt2"])
        flat = [torch.from_numpy(np.load(p)) for p in req["inputs"]]
        self.args, self.kwargs = pytree.tree_unflatten(flat, ep.call_spec.in_spec)
        self.m = ep.module()
        return {"threads": torch.get_num_threads()}

    def call(self):
        with self.torch.no_grad():
            return self.m(*self.args, **self.kwargs)

    def outputs(self):
        import torch.utils._pytree as pytree
        return [o.numpy() for o in pytree.tree_leaves(self.call())]


class Ort:
    def __init__(self, threads):
        import onnxruntime as ort
        self.ort = ort
        self.threads = threads

    def load(self, req):
        ort = self.ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(req["onnx"], so, providers=["CPUExecutionProvider"])
        names = [i.name for i in self.sess.get_inputs()]
        arrays = [np.load(p) for p in req["inputs"]]
        if len(names) != len(arrays):
            raise ValueError(f"the ONNX graph has {len(names)} inputs, the program {len(arrays)}")
        self.feed = dict(zip(names, arrays))
        return {"version": ort.__version__, "providers": self.sess.get_providers()}

    def call(self):
        return self.sess.run(None, self.feed)

    def outputs(self):
        return self.call()


def export_executorch(req, threads):
    """torch.export -> to_edge_transform_and_lower(XNNPACK) -> to_executorch(), into req["pte"]; run in its own
    process (`bench_worker.py export-executorch REQ THREADS`) so the timing worker's peak RSS is the runtime's."""
    import torch
    import torch.utils._pytree as pytree
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_models
    torch.set_num_threads(threads)
    mod, args, kwargs = bench_models.build(req["model"])
    mod.load_state_dict(torch.load(req["weights"]), strict=True)
    flat = [torch.from_numpy(np.load(p)) for p in req["inputs"]]
    args, kwargs = pytree.tree_unflatten(flat, pytree.tree_structure((args, kwargs)))
    t0 = time.time()
    ep = torch.export.export(mod, args, kwargs)
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    tmp = req["pte"] + ".tmp"
    with open(tmp, "wb") as f:
        prog.write_to_file(f)
    os.replace(tmp, req["pte"])
    return round(time.time() - t0, 2)


class ExecuTorch:
    def __init__(self, threads):
        import torch
        from executorch.extension.pybindings import portable_lib
        # The XNNPACK delegate and ExecuTorch's optimized CPU kernels share one pthreadpool
        # (extension/threadpool); by default it has one thread per performance core that cpuinfo finds.
        # The pybindings can resize it.
        portable_lib._unsafe_reset_threadpool(threads)
        self.threads = portable_lib._threadpool_get_thread_count()
        self.torch = torch

    def load(self, req):
        from importlib.metadata import version
        from executorch.runtime import Runtime
        info = {"version": version("executorch"), "torch": self.torch.__version__}
        stamp = req["pte"] + ".json"
        want = {"executorch": info["version"], "torch": self.torch.__version__, "source": req["source"]}
        have = json.load(open(stamp)) if os.path.exists(stamp) else None
        if have is None or {k: have.get(k) for k in want} != want or \
                "error" not in have and not os.path.exists(req["pte"]):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "export-executorch", json.dumps(req),
                                str(self.threads)], stdout=subprocess.PIPE, text=True)
            if r.returncode == 0 and r.stdout.strip():
                want.update(json.loads(r.stdout.strip().splitlines()[-1]))
            else:
                want["error"] = f"export: process exited with {r.returncode}"
            json.dump(want, open(stamp, "w"))
            have = want
        if "error" in have:
            raise RuntimeError(have["error"])
        info["export_seconds"] = have.get("export_seconds")
        program = Runtime.get().load_program(req["pte"])
        self.method = program.load_method("forward")
        self.inputs = [self.torch.from_numpy(np.load(p)) for p in req["inputs"]]
        info["threads"] = self.threads
        with open(req["pte"], "rb") as f:
            info["delegated"] = f.read().count(b"XnnpackBackend") > 0
        return info

    def call(self):
        return self.method.execute(self.inputs)

    def outputs(self):
        return [o.numpy() if hasattr(o, "numpy") else np.asarray(o) for o in self.call()]


RUNTIMES = {"pytorch": PyTorch, "ort": Ort, "executorch": ExecuTorch}


def main():
    if sys.argv[1] == "export-executorch":
        proto = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        try:
            secs = export_executorch(json.loads(sys.argv[2]), int(sys.argv[3]))
            proto.write(json.dumps({"export_seconds": secs}) + "\n")
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            proto.write(json.dumps({"error": "export: " + first_line(e)}) + "\n")
        proto.flush()
        return
    runtime, threads = sys.argv[1], int(sys.argv[2])
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr
    sys.stdout = sys.stderr

    def reply(**kw):
        proto.write(json.dumps(kw) + "\n")
        proto.flush()

    rt = None
    init_error = None
    try:
        rt = RUNTIMES[runtime](threads)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        init_error = first_line(e)
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        if cmd == "quit":
            break
        if cmd == "mem":
            reply(ok=True, **proc_status_mb())
            continue
        if init_error:
            reply(ok=False, error=init_error)
            continue
        try:
            if cmd == "load":
                reply(ok=True, **(rt.load(req) or {}))
            elif cmd == "round":
                for _ in range(req["warmup"]):
                    rt.call()
                times = []
                for _ in range(req["iters"]):
                    t0 = time.perf_counter()
                    rt.call()
                    times.append((time.perf_counter() - t0) * 1e3)
                reply(ok=True, times=times)
            elif cmd == "check":
                refs = [np.load(p) for p in req["refs"]]
                reply(ok=True, max_abs_diff=max_abs_diff(rt.outputs(), refs))
            else:
                reply(ok=False, error=f"unknown command {cmd}")
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            reply(ok=False, error=first_line(e))


if __name__ == "__main__":
    main()
