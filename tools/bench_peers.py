#!/usr/bin/env python3
"""oxport against its peers, per model, in one run: `oxport bench` of the training-IR and core-ATen programs,
PyTorch's `ep.module()` of each, ONNX Runtime on `torch.onnx.export(ep, dynamo=True)`, and ExecuTorch with
the XNNPACK delegate, on the same inputs with the same weights and THREADS (default 2) intra-op threads.

Fairness: every runtime keeps its model loaded and warm between rounds (ONNX Runtime, PyTorch and
ExecuTorch in worker processes, tools/bench_worker.py; oxport as one `oxport bench` call per round, which
loads the program, warms up and times its iterations itself), and the rounds are interleaved: round r
runs each runtime in turn (the order rotating by one each round), so all of them see the same machine
state. A runtime's figure is the median over rounds of its per-round median ms per call (marked * when its
round medians differ by more than 25%). Round 0 only warms up (a worker for at least --warmup-seconds) and
calibrates on its fastest call: each runtime then gets enough iterations for about --round-seconds per
round, unless --iters fixes them. PyTorch runs under both libgomp's default wait policy and
OMP_WAIT_POLICY=PASSIVE, and the faster counts (tools/README.md says why). Outputs are checked against
PyTorch's (max abs diff) so a wrong answer is never timed unnoticed; a runtime that fails to export, load or
run a model is reported with the error's first line, and the run goes on.
Peak memory: each worker's VmHWM (its own process, so ONNX Runtime's figure has no torch in it) and the
peak RSS of the `oxport bench` processes (ru_maxrss from wait4 in a small launcher).

Programs and the peers' files go to ~/.cache/oxport/bench/NAME/ (never committed; reused while the torch
version is the same; the .pt2 of gen_large_pt2.py's models are taken from ~/.cache/oxport/large_pt2 when
they hold the same weights; --clean deletes them after each model).

Setup: bash tools/setup_peers.sh   (the oracle venv gets onnxruntime; ExecuTorch gets its own venv)
Run:   ~/.cache/oxport/venv/bin/python tools/bench_peers.py --oxport target/release/oxport
           [--only gpt_block,lstm] [--rounds 5] [--iters N] [--markdown FILE] [--json FILE] [--clean] [--list]
"""
import argparse
import contextlib
import gc
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
CACHE = os.path.expanduser("~/.cache/oxport")
FORMS = ("train", "core")


def first_line(e):
    s = str(e).strip()
    return f"{type(e).__name__}: {s.splitlines()[0] if s else ''}"[:300]


# ---------------------------------------------------------------- preparation (the oracle venv's torch)
def prepare(name, out, log):
    """Exports NAME's two programs, inputs, PyTorch's outputs and the ONNX graph into OUT.

    Returns meta: {"dir", "inputs": [npy], "refs": [npy], "pt2": {form: path | None}, "onnx": path | None,
    "errors": {what: first line}}. Reuses OUT's files made by the same torch."""
    import torch
    import torch.utils._pytree as pytree
    import bench_models
    os.makedirs(out, exist_ok=True)
    meta_path = os.path.join(out, "meta.json")
    if os.path.exists(meta_path):
        meta = json.load(open(meta_path))
        if meta.get("torch_version") == torch.__version__ and meta.get("complete"):
            meta["dir"] = out
            return meta
    meta = {"torch_version": torch.__version__, "errors": {}, "pt2": {}, "onnx": None}
    torch.set_num_threads(2)
    mod, args, kwargs = bench_models.build(name)
    sd = mod.state_dict()
    meta["dir"] = out
    flat = pytree.tree_leaves((args, kwargs))
    meta["inputs"] = []
    for i, x in enumerate(flat):
        p = os.path.join(out, f"in_{i}.npy")
        np.save(p, x.numpy() if isinstance(x, torch.Tensor) else np.array(x))
        meta["inputs"].append(p)
    with torch.no_grad():
        ref = pytree.tree_leaves(mod(*args, **kwargs))
    ep = None
    try:
        t0 = time.time()
        ep = torch.export.export(mod, args, kwargs)
        meta["torch_export_seconds"] = round(time.time() - t0, 2)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc(file=log)
        meta["errors"]["torch.export"] = first_line(e)
    if ep is not None:
        # The reference outputs are ep.module()'s (what oxport reproduces), as in gen_large_pt2.py.
        with torch.no_grad():
            ref = pytree.tree_leaves(ep.module()(*args, **kwargs))
        large = os.path.join(CACHE, "large_pt2")
        for form in FORMS:
            path = os.path.join(out, f"{form}.pt2")
            try:
                if not reuse_large_pt2(os.path.join(large, f"{name}.{form}.pt2"), path, sd):
                    prog = ep if form == "train" else ep.run_decompositions()
                    prog.example_inputs = None  # keep the archive to weights + program
                    torch.export.save(prog, path)
                meta["pt2"][form] = path
            except Exception as e:  # noqa: BLE001
                traceback.print_exc(file=log)
                meta["errors"][f"pt2 {form}"] = first_line(e)
        onnx_path = os.path.join(out, "model.onnx")
        try:
            t0 = time.time()
            onnx_program = torch.onnx.export(ep, args, kwargs=kwargs, dynamo=True)
            onnx_program.save(onnx_path)
            meta["onnx"] = onnx_path
            meta["onnx_export_seconds"] = round(time.time() - t0, 2)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc(file=log)
            meta["errors"]["onnx export"] = first_line(e)
    meta["refs"] = []
    for j, y in enumerate(ref):
        p = os.path.join(out, f"ref_{j}.npy")
        np.save(p, y.numpy() if isinstance(y, torch.Tensor) else np.array(y))
        meta["refs"].append(p)
    meta["complete"] = True
    json.dump(meta, open(meta_path, "w"), indent=1)
    del mod, ep
    gc.collect()
    return meta


def et_source(meta):
    """What the ExecuTorch program is made from: the training-IR program's file, or the eager module."""
    p = meta["pt2"].get("train")
    if not p:
        return f"eager {meta['torch_version']}"
    st = os.stat(p)
    return f"{os.path.basename(p)} {st.st_size} {st.st_mtime_ns}"


def et_weights(name, meta, path):
    """Writes the state_dict for the ExecuTorch export (its venv has another torch, so it rebuilds the module
    from bench_models and loads these): the training-IR program's, whose unlifted module keeps the FQNs."""
    import torch
    import bench_models
    p = meta["pt2"].get("train")
    sd = torch.export.load(p).module().state_dict() if p else bench_models.build(name)[0].state_dict()
    torch.save({k: v.detach().clone().contiguous() for k, v in sd.items()}, path)


def et_stale(pte, want):
    stamp = pte + ".json"
    if not os.path.exists(stamp) or not os.path.exists(pte) and "error" not in json.load(open(stamp)):
        return True
    have = json.load(open(stamp))
    return {k: have.get(k) for k in want} != want


def reuse_large_pt2(src, dst, sd):
    """Links gen_large_pt2.py's program to DST when it was made by this torch with the same weights."""
    import torch
    man = os.path.join(os.path.dirname(src), "manifest.json")
    if not (os.path.exists(src) and os.path.exists(man)):
        return False
    if json.load(open(man)).get("torch_version") != torch.__version__:
        return False
    try:
        theirs = torch.export.load(src).module().state_dict()
    except Exception:  # noqa: BLE001
        return False
    if set(theirs) != set(sd) or not all(torch.equal(theirs[k], sd[k]) for k in sd):
        return False
    if os.path.exists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    return True


# ---------------------------------------------------------------- runners
class Failed(Exception):
    pass


class Worker:
    """A bench_worker.py process for one runtime and one model."""

    def __init__(self, label, python, runtime, threads, log_path, timeout, extra_env=None):
        self.label, self.timeout = label, timeout
        self.log = open(log_path, "a")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.p = subprocess.Popen([python, os.path.join(HERE, "bench_worker.py"), runtime, str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)

    def ask(self, timeout=None, **req):
        try:
            self.p.stdin.write((json.dumps(req) + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            raise Failed(f"worker died (exit code {self.p.poll()}; see {self.log.name})")
        r, _, _ = select.select([self.p.stdout], [], [], timeout or self.timeout)
        if not r:
            self.close(kill=True)
            raise Failed(f"no answer in {timeout or self.timeout:.0f} s to {req['cmd']}")
        line = self.p.stdout.readline()
        if not line:
            code = self.p.wait()
            raise Failed(f"worker died (exit code {code}; see {self.log.name})")
        ans = json.loads(line)
        if not ans.get("ok"):
            raise Failed(ans.get("error", "?"))
        return ans

    def close(self, kill=False):
        if self.p.poll() is None:
            if kill:
                self.p.kill()
            else:
                try:
                    self.p.stdin.write(b'{"cmd": "quit"}\n')
                    self.p.stdin.flush()
                    self.p.wait(timeout=30)
                except Exception:  # noqa: BLE001
                    self.p.kill()
            self.p.wait()
        self.log.close()


class WorkerRunner:
    persistent = True  # one process for all rounds
    def __init__(self, column, worker, load_req, refs):
        self.column, self.worker, self.load_req, self.refs = column, worker, load_req, refs

    def load(self):
        return self.worker.ask(cmd="load", timeout=3600, **self.load_req)

    def round(self, warmup, iters):
        """(median, min) ms per call."""
        t = self.worker.ask(cmd="round", warmup=warmup, iters=iters)["times"]
        return float(np.median(t)), float(np.min(t))

    def check(self):
        return self.worker.ask(cmd="check", refs=self.refs)["max_abs_diff"]

    def peak_mb(self):
        return self.worker.ask(cmd="mem")["vmhwm_mb"]

    def close(self):
        self.worker.close()


LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(ru.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


class OxportRunner:
    """`oxport bench` as one process per round: it loads, warms up and times its iterations itself."""
    persistent = False

    def __init__(self, column, oxport, pt2, inputs, refs, threads, timeout):
        self.column, self.oxport, self.pt2, self.inputs, self.refs = column, oxport, pt2, inputs, refs
        self.threads, self.timeout, self.peak = threads, timeout, 0.0
        self.in_args = [a for p in inputs for a in ("--input", p)]

    def _run(self, cmd):
        """Runs CMD; returns (stdout, its peak RSS in MB).

        The peak comes from wait4 in a small launcher (python -S, ~8 MB): Linux's ru_maxrss of a process also
        counts the image it had before exec, which for a child forked from this driver is torch's."""
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
                tempfile.NamedTemporaryFile("r") as fr:
            p = subprocess.Popen([sys.executable, "-S", "-I", "-c", LAUNCHER, fr.name, *cmd], stdout=fo,
                                 stderr=fe, start_new_session=True)
            try:
                p.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
                raise Failed(f"killed after {self.timeout:.0f} s")
            fo.seek(0)
            fe.seek(0)
            out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
            maxrss_kb = int(fr.read().strip() or 0)
        if p.returncode != 0:
            msg = (err.strip() or out.strip() or f"exit code {p.returncode}").splitlines()
            raise Failed(msg[-1][:300])
        return out, maxrss_kb / 1024

    def load(self):
        return {}

    def round(self, warmup, iters):
        out, peak = self._run([self.oxport, "bench", self.pt2, *self.in_args, "--threads", str(self.threads),
                               "--warmup", str(warmup), "--iters", str(iters), "--no-profile"])
        self.peak = max(self.peak, peak)
        m, lo = re.search(r"median_ms=([0-9.]+)", out), re.search(r"min_ms=([0-9.]+)", out)
        if not m:
            raise Failed("no median_ms= in oxport bench's output")
        return float(m.group(1)), float(lo.group(1)) if lo else float(m.group(1))

    def check(self):
        with tempfile.TemporaryDirectory() as d:
            self._run([self.oxport, "run", self.pt2, *self.in_args, "--output-dir", d])
            outs = []
            for j in range(len(self.refs) + 8):
                p = os.path.join(d, f"output_{j}.npy")
                if not os.path.exists(p):
                    break
                outs.append(np.load(p))
            from bench_worker import max_abs_diff
            try:
                return max_abs_diff(outs, [np.load(r) for r in self.refs])
            except ValueError as e:
                raise Failed("outputs: " + str(e))

    def peak_mb(self):
        return round(self.peak, 1)

    def close(self):
        pass


# ---------------------------------------------------------------- one model
COLUMNS = ("oxport train", "oxport core", "pytorch train", "pytorch core", "ort", "executorch")


def bench_model(name, meta, a, logdir):
    """Returns {column: {"ms", "rounds", "diff", "peak_mb", "error", "info"}}."""
    res = {c: {} for c in COLUMNS}
    runners = []
    for form in FORMS:
        if meta["pt2"].get(form):
            runners.append(OxportRunner(f"oxport {form}", a.oxport, meta["pt2"][form], meta["inputs"],
                                        meta["refs"], a.threads, a.timeout))
        else:
            res[f"oxport {form}"]["error"] = res[f"pytorch {form}"]["error"] = next(
                (v for k, v in meta["errors"].items() if k in ("torch.export", f"pt2 {form}")), "no program")
    log = lambda col: os.path.join(logdir, f"{name}.{col.replace(' ', '_')}.log")  # noqa: E731
    policies = ("default", "PASSIVE") if a.omp_wait_policy == "best" else (a.omp_wait_policy,)
    for form in FORMS:
        for pol in policies if meta["pt2"].get(form) else ():
            col = f"pytorch {form} omp={pol}"
            res[col] = {}
            w = Worker(col, sys.executable, "pytorch", a.threads, log(col), a.timeout,
                       {} if pol == "default" else {"OMP_WAIT_POLICY": pol})
            runners.append(WorkerRunner(col, w, {"pt2": meta["pt2"][form], "inputs": meta["inputs"]},
                                        meta["refs"]))
    if meta.get("onnx"):
        w = Worker("ort", sys.executable, "ort", a.threads, log("ort"), a.timeout)
        runners.append(WorkerRunner("ort", w, {"onnx": meta["onnx"], "inputs": meta["inputs"]}, meta["refs"]))
    else:
        res["ort"]["error"] = meta["errors"].get("onnx export") or meta["errors"].get("torch.export", "?")
    if a.no_executorch:
        res["executorch"]["error"] = "skipped (--no-executorch)"
    elif not a.et_versions:
        res["executorch"]["error"] = f"no executorch at {a.et_python} (run tools/setup_peers.sh)"
    else:
        pte, weights = os.path.join(meta["dir"], "model.pte"), os.path.join(meta["dir"], "weights.pt")
        want = {"executorch": a.et_versions[0], "torch": a.et_versions[1], "source": et_source(meta)}
        if et_stale(pte, want):  # the worker exports; the weights file lives only until it has
            try:
                et_weights(name, meta, weights)
            except Exception as e:  # noqa: BLE001
                res["executorch"]["error"] = "weights: " + first_line(e)
        if not res["executorch"].get("error"):
            w = Worker("executorch", a.et_python, "executorch", a.threads, log("executorch"), a.timeout)
            runners.append(WorkerRunner("executorch", w, {
                "model": name, "weights": weights, "inputs": meta["inputs"], "pte": pte,
                "source": want["source"]}, meta["refs"]))
    res["ref"] = {"max_abs": max((float(np.nanmax(np.abs(np.load(p)))) for p in meta["refs"]
                                  if np.load(p).size), default=0.0)}
    live = []
    for r in runners:  # load (ExecuTorch exports on its first load), check the outputs
        try:
            res[r.column]["info"] = {k: v for k, v in r.load().items() if k != "ok"}
            res[r.column]["diff"] = r.check()
            live.append(r)
        except Failed as e:
            res[r.column]["error"] = str(e)
            r.close()
        if r.column == "executorch" and os.path.exists(r.load_req["weights"]):
            os.remove(r.load_req["weights"])
    rounds = {r.column: [] for r in live}
    iters = {r.column: a.iters or 3 for r in live}
    for rnd in range(a.rounds + 1):
        k = rnd % max(1, len(live))
        for r in live[k:] + live[:k]:
            if res[r.column].get("error"):
                continue
            try:
                ms, fastest = r.round(a.warmup, iters[r.column])
                t0 = time.time()
                while rnd == 0 and r.persistent and time.time() - t0 < a.warmup_seconds:
                    fastest = min(fastest, r.round(0, 3)[1])  # a warm process warms up for a while first
            except Failed as e:
                res[r.column]["error"] = "run: " + str(e)
                continue
            if rnd == 0:  # warm-up and calibration round, on the fastest call (robust to a stall)
                if not a.iters:
                    iters[r.column] = int(min(a.max_iters, max(a.min_iters,
                                                               round(a.round_seconds * 1e3 / fastest))))
            else:
                rounds[r.column].append(ms)
    for r in live:
        c = res[r.column]
        if rounds[r.column] and not c.get("error"):
            c["ms"] = float(np.median(rounds[r.column]))
            c["rounds"] = [round(x, 4) for x in rounds[r.column]]
            c["iters"] = iters[r.column]
        try:
            c["peak_mb"] = r.peak_mb()
        except Failed:
            pass
        r.close()
    for form in FORMS:  # PyTorch's figure: its faster OpenMP wait policy
        tried = [c for c in res if c.startswith(f"pytorch {form} omp=")]
        ok = [c for c in tried if "ms" in res[c] and not res[c].get("error")]
        best = min(ok, key=lambda c: res[c]["ms"]) if ok else (tried[0] if tried else None)
        if best:
            res[f"pytorch {form}"] = dict(res[best], omp_wait_policy=best.split("omp=")[1],
                                          tried={c.split("omp=")[1]: res[c].get("ms", res[c].get("error"))
                                                 for c in tried})
    return res


# ---------------------------------------------------------------- tables
def wrong(c, ref_max):
    """The outputs differ from PyTorch's by more than f32 noise (1e-4 + 1e-3 * max abs of PyTorch's)."""
    d = c.get("diff")
    return d is not None and not d <= 1e-4 + 1e-3 * ref_max


def _fmt_ms(c, ref_max=None):
    if c.get("error"):
        return "FAIL"
    if "ms" not in c:
        return "-"
    r = c.get("rounds") or [c["ms"]]
    return (f"{c['ms']:.3f}" + ("*" if max(r) > 1.25 * min(r) else "")
            + ("!" if ref_max is not None and wrong(c, ref_max) else ""))


def ratio(x, y):
    if "ms" in x and "ms" in y and not x.get("error") and not y.get("error"):
        return f"{x['ms'] / y['ms']:.2f}"
    return "-"


def fmt_diff(c):
    if c.get("error") or "diff" not in c:
        return "-"
    return f"{c['diff']:.1e}"


def fmt_mb(c):
    return f"{c['peak_mb']:.0f}" if c.get("peak_mb") and not c.get("error") else "-"


def tables(results):
    head = ["model", "form", "oxport ms", "pytorch ms", "ORT ms", "ExecuTorch ms", "ox/ORT", "ox/ET", "ox/PT",
            "diff ox", "diff PT", "diff ORT", "diff ET", "max abs PT", "RSS MB ox", "RSS MB PT", "RSS MB ORT", "RSS MB ET"]
    rows, errors = [], []
    for name, res in results.items():
        for form in FORMS:
            ox, pt, ort, et = res[f"oxport {form}"], res[f"pytorch {form}"], res["ort"], res["executorch"]
            ref_max = res.get("ref", {}).get("max_abs", 0.0)
            fmt_ms = lambda c: _fmt_ms(c, ref_max)  # noqa: E731
            pt_ms = fmt_ms(pt) + ("P" if pt.get("omp_wait_policy") == "PASSIVE" and "tried" in pt
                                   and len(pt["tried"]) > 1 and "ms" in pt else "")
            rows.append([name, form, fmt_ms(ox), pt_ms, fmt_ms(ort), fmt_ms(et), ratio(ox, ort),
                         ratio(ox, et), ratio(ox, pt), fmt_diff(ox), fmt_diff(pt), fmt_diff(ort), fmt_diff(et),
                         f"{res['ref']['max_abs']:.1e}" if "ref" in res else "-", fmt_mb(ox), fmt_mb(pt), fmt_mb(ort), fmt_mb(et)])
        by_msg = {}
        for col in COLUMNS:
            if res[col].get("error"):
                by_msg.setdefault(res[col]["error"], []).append(col)
        errors += [(name, ", ".join(cols), e) for e, cols in by_msg.items()]
        ref_max = res.get("ref", {}).get("max_abs", 0.0)
        for col in COLUMNS:
            if wrong(res[col], ref_max) and not res[col].get("error"):
                errors.append((name, col, f"WRONG: outputs differ from PyTorch's by {res[col]['diff']:.3g} "
                                          f"(max abs {ref_max:.3g}); its time is marked !"))
        if res.get("ref", {}).get("max_abs") == 0:
            errors.append((name, "check", "PyTorch's outputs are all zero: the diffs say nothing"))
    return head, rows, errors


def print_table(head, rows, errors, out=sys.stdout):
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    print("  ".join(h.ljust(w[i]) if i < 2 else h.rjust(w[i]) for i, h in enumerate(head)), file=out)
    for r in rows:
        print("  ".join(str(x).ljust(w[i]) if i < 2 else str(x).rjust(w[i]) for i, x in enumerate(r)), file=out)
    for name, col, e in errors:
        print(f"{'NOTE' if col == 'check' or e.startswith('WRONG') else 'FAIL'} {name} / {col}: {e}", file=out)


def markdown(head, rows, errors, a, env):
    pt = ("the faster of its two OpenMP wait policies, libgomp's default and PASSIVE (P: PASSIVE was faster)"
          if a.omp_wait_policy == "best" else f"with OMP_WAIT_POLICY {a.omp_wait_policy}")
    lines = [f"Median ms per call over {a.rounds} interleaved rounds (* when a runtime's round medians differ by "
             f"more than 25%), {a.threads} intra-op threads per runtime ({env}). Ratios below 1: oxport faster. "
             f"PyTorch is `ep.module()` of each form, {pt}. ORT runs `torch.onnx.export` of the training-IR "
             "program and ExecuTorch its own torch.export of the same module and weights (XNNPACK), one graph "
             "per model, shown on both rows. diff: max abs difference of the flattened outputs from PyTorch's "
             "(`ep.module()` of the training IR); max abs PT: the largest absolute value of those (random "
             "weights can make it tiny: read diff against it). RSS MB: peak resident memory of the runtime's "
             "process (VmHWM of the worker, ru_maxrss of `oxport bench`).", "",
             "| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    if errors:
        lines += ["", "Failures and notes:", ""] + [f"- {n} / {c}: `{e}`" for n, c, e in errors]
    return "\n".join(lines) + "\n"


def main():
    import bench_models
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--oxport", default=os.environ.get("OXPORT_BIN") or os.path.join(
        HERE, "..", "target", "release", "oxport"))
    ap.add_argument("--et-python", default=os.path.join(CACHE, "venv-executorch", "bin", "python"))
    ap.add_argument("--dir", default=os.path.join(CACHE, "bench"))
    ap.add_argument("--only", help="comma-separated model names (see --list)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, help="iterations per round (default: calibrated per runtime)")
    ap.add_argument("--round-seconds", type=float, default=0.5, help="calibration target per round")
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--max-iters", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls at the start of each round")
    ap.add_argument("--warmup-seconds", type=float, default=1.0,
                    help="round 0 keeps calling each worker (PyTorch, ORT, ExecuTorch) for this long")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900, help="seconds for any one answer")
    ap.add_argument("--omp-wait-policy", default="best", choices=("best", "default", "PASSIVE", "ACTIVE"),
                    help="OMP_WAIT_POLICY of the PyTorch workers; best (the default) times both libgomp's "
                    "default and PASSIVE, interleaved with the rest, and reports the faster (README)")
    ap.add_argument("--no-executorch", action="store_true")
    ap.add_argument("--clean", action="store_true", help="delete each model's files once it is timed (the "
                    "programs, ONNX and .pte hold four copies of the weights: ~2 GB for bert_base)")
    ap.add_argument("--markdown", help="also write the table as markdown to FILE")
    ap.add_argument("--json", help="also write every figure (per-round medians too) to FILE")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    a = ap.parse_args()
    if a.list:
        for n, (desc, _) in bench_models.MODELS.items():
            print(f"{n:<22} {desc}")
        return 0
    names = list(bench_models.MODELS)
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        bad = [n for n in names if n not in bench_models.MODELS]
        if bad:
            ap.error(f"unknown model(s) {', '.join(bad)}; --list shows them")
    a.oxport = os.path.abspath(a.oxport)
    if not os.path.exists(a.oxport):
        ap.error(f"no oxport binary at {a.oxport} (build with cargo build --release -p oxport-cli)")
    logdir = os.path.join(a.dir, "logs")
    os.makedirs(logdir, exist_ok=True)
    import torch
    torch.set_num_threads(a.threads)
    a.et_versions = et_versions(a)
    import onnxruntime
    env = (f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
           + (f"executorch {a.et_versions[0]} (torch {a.et_versions[1]})" if a.et_versions else "no executorch")
           + f", oxport {os.path.relpath(a.oxport)}, PyTorch OMP_WAIT_POLICY: "
           + ("the faster of libgomp's default and PASSIVE (P)" if a.omp_wait_policy == "best"
              else a.omp_wait_policy))
    results = {}
    for n in names:
        # One model at a time: its export, then its timing (the driver idles meanwhile), then --clean.
        t0 = time.time()
        with open(os.path.join(logdir, "prepare.log"), "a") as log:
            try:
                # torch.onnx.export prints its progress, onnxscript's optimizer its folding failures
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    meta = prepare(n, os.path.join(a.dir, n), log)
            except Exception as e:  # noqa: BLE001
                traceback.print_exc(file=log)
                meta = {"failed": first_line(e)}
        gc.collect()
        print(f"[prepare {n}] {time.time() - t0:.1f}s"
              + "".join(f"; {k}: {v}" for k, v in meta.get("errors", {}).items())
              + (f"; FAILED {meta['failed']}" if "failed" in meta else ""), flush=True)
        t0 = time.time()
        if "failed" in meta:
            results[n] = {c: {"error": "build: " + meta["failed"]} for c in COLUMNS}
        else:
            results[n] = bench_model(n, meta, a, logdir)
        print(f"[bench {n}] {time.time() - t0:.1f}s  " + "  ".join(
            f"{c}={_fmt_ms(results[n][c])}" for c in COLUMNS), flush=True)
        if a.clean and "dir" in meta:
            shutil.rmtree(meta["dir"], ignore_errors=True)
        head, rows, errors = tables(results)
        if a.markdown:  # written after every model, so an interrupted run keeps what it measured
            with open(a.markdown, "w") as f:
                f.write(markdown(head, rows, errors, a, env))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"env": env, "args": vars(a), "results": results}, f, indent=1)
    print()
    print(env)
    print_table(*tables(results))
    return 0


def et_versions(a):
    """(executorch, torch) of the ExecuTorch venv, or None."""
    if a.no_executorch or not os.path.exists(a.et_python):
        return None
    try:
        out = subprocess.run([a.et_python, "-c", "import torch; from importlib.metadata import version; "
                              "print(version('executorch'), torch.__version__)"], capture_output=True, text=True,
                             timeout=300).stdout.split()
        return out[0], out[1]
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())
