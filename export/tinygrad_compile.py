"""ONNX -> ``*_tinygrad.pkl`` the way openpilot's compile step builds it, in a child process per model.

The child (``python -m sunnypilot_training.export.tinygrad_compile compile ...``) runs with ``DEV=<device>`` set
before tinygrad is imported, wraps tinygrad's ``OnnxRunner`` as
``TinyJit(lambda **kw: runner({k: v.to(Device.DEFAULT)})[first output].cast(float32), prune=True)``, calls it three
times with realized inputs (images on the default device, everything else as ``NPY`` tensors - how modeld feeds
them; float16 graph inputs are fed as float32), checks that the captured replay is deterministic, replays it on the
parity inputs and pickles the jitted function. ``run`` loads a pickle in a fresh process and calls it the way modeld
does (``run(**inputs).contiguous().realize().uop.base.buffer.numpy()``).

The child imports numpy, tinygrad, the standard library and the toolkit's error module only.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from sunnypilot_training.errors import ConfigError, ExportError
from sunnypilot_training.evaluation.model_runner import load_tinygrad_pickle, run_tinygrad, tinygrad_tensors

MODULE = "sunnypilot_training.export.tinygrad_compile"
DEFAULT_DEVICE = "CPU"
COMPILE_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 600
_DEVICE_RE = re.compile(r"^[A-Z][A-Z0-9_]*(:[A-Za-z0-9_+]+)?$")


# --- parent side ---------------------------------------------------------------------------------------------
def check_device(device: str) -> str:
    if not _DEVICE_RE.match(device or ""):
        raise ConfigError(f"--device {device!r}: expected a tinygrad device name such as CPU, CUDA, NV, AMD, METAL, CL "
                          f"or QCOM (what DEV= takes)")
    return device


@dataclass
class Job:
    """A child process working on one model; its output goes to ``log`` (no pipes, so jobs can run together)."""

    model_name: str
    proc: subprocess.Popen
    report: Path
    log: Path
    started_s: float
    timeout_s: float


def start_child(model_name: str, module: str, args: list[str], work_dir: Path, device: str, tag: str,
                timeout_s: float) -> Job:
    """``python -m module *args --report ...`` with ``DEV=device``, output into a log beside the report."""
    report, log = work_dir / f"{model_name}_{tag}.json", work_dir / f"{model_name}_{tag}.log"
    env = {**os.environ, "DEV": device, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, *args, "--report", str(report)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=work_dir)
    return Job(model_name, proc, report, log, time.perf_counter(), timeout_s)


def _start(model_name: str, args: list[str], work_dir: Path, device: str, tag: str, timeout_s: float) -> Job:
    return start_child(model_name, MODULE, args, work_dir, device, tag, timeout_s)


def start_compile(model_name: str, onnx_path: Path, pkl_path: Path, inputs_npz: Path, outputs_npz: Path,
                  work_dir: Path, device: str = DEFAULT_DEVICE) -> Job:
    args = ["compile", str(onnx_path), str(pkl_path), "--inputs", str(inputs_npz), "--outputs", str(outputs_npz)]
    return _start(model_name, args, work_dir, device, "compile", COMPILE_TIMEOUT_S)


def start_fresh_run(model_name: str, pkl_path: Path, inputs_npz: Path, outputs_npz: Path, work_dir: Path,
                    device: str = DEFAULT_DEVICE) -> Job:
    args = ["run", str(pkl_path), "--inputs", str(inputs_npz), "--outputs", str(outputs_npz)]
    return _start(model_name, args, work_dir, device, "fresh_run", RUN_TIMEOUT_S)


def wait(job: Job, what: str) -> dict[str, Any]:
    """Wait for the child; its JSON report, or ExportError with the tail of its log."""
    try:
        code = job.proc.wait(timeout=max(job.timeout_s - (time.perf_counter() - job.started_s), 1))
    except subprocess.TimeoutExpired:
        job.proc.kill()
        job.proc.wait()
        raise ExportError(f"{job.model_name}: tinygrad {what} did not finish within {job.timeout_s:.0f} s; see "
                          f"{job.log}") from None
    if code != 0 or not job.report.is_file():
        tail = "\n".join(job.log.read_text(errors="replace").strip().splitlines()[-12:])
        raise ExportError(f"{job.model_name}: tinygrad {what} failed (exit code {code}); the graph may use an op "
                          f"tinygrad's ONNX frontend lacks or the device is unavailable. Last output:\n{tail}")
    return json.loads(job.report.read_text())


# --- child side ----------------------------------------------------------------------------------------------
def _feed_dtype(spec_dtype) -> Any:
    from tinygrad import dtypes  # child process: after DEV is set

    return dtypes.float32 if spec_dtype == dtypes.float16 else spec_dtype  # openpilot feeds float16 as float32


def _random_inputs(graph_inputs: dict, seed: int = 100) -> dict[str, np.ndarray]:
    from tinygrad import dtypes  # child process: after DEV is set

    rng = np.random.default_rng(seed)
    out = {}
    for name, spec in sorted(graph_inputs.items()):
        dtype = _feed_dtype(spec.dtype)
        if dtypes.is_int(dtype):
            out[name] = rng.integers(0, 256, size=spec.shape).astype(np.dtype(dtype.fmt))
        else:
            out[name] = rng.standard_normal(spec.shape).astype(np.float32)
    return out


def _np_name(dtype) -> str:
    return np.dtype(dtype.fmt).name if dtype.fmt else dtype.name


def _input_specs(graph_inputs: dict) -> list[dict[str, Any]]:
    return [{"name": n, "shape": list(s.shape), "graph_dtype": _np_name(s.dtype),
             "fed_dtype": _np_name(_feed_dtype(s.dtype)), "fed_device": "default device" if "img" in n else "NPY"}
            for n, s in graph_inputs.items()]


def _check_feed(arrays: dict[str, np.ndarray], graph_inputs: dict) -> None:
    found = {k: tuple(v.shape) for k, v in arrays.items()}
    expected = {k: tuple(s.shape) for k, s in graph_inputs.items()}
    if found != expected:
        raise SystemExit(f"parity inputs {found} do not match the graph inputs {expected}")


def _kernel_count(jit) -> int | None:
    try:
        return len(jit.captured.linear.src)
    except AttributeError:  # another tinygrad version
        return None


def compile_onnx(onnx_path: str, pkl_path: str, check_inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    from tinygrad import Device, TinyJit, dtypes  # child process: after DEV is set
    from tinygrad.nn.onnx import OnnxRunner  # child process: after DEV is set

    runner = OnnxRunner(onnx_path)
    _check_feed(check_inputs, runner.graph_inputs)
    first = runner.graph_outputs[0]
    jit = TinyJit(lambda **kw: runner({k: v.to(Device.DEFAULT) for k, v in kw.items()})[first].cast(dtypes.float32),
                  prune=True)
    warm = _random_inputs(runner.graph_inputs)
    runs_s, results = [], []
    for _ in range(3):  # plain run, capture, replay
        start = time.perf_counter()
        results.append(jit(**tinygrad_tensors(warm)).numpy().copy())
        runs_s.append(round(time.perf_counter() - start, 3))
    if not np.array_equal(results[1], results[2]):
        raise SystemExit(f"the captured JIT replay differs from the capture run (max |diff| "
                         f"{float(np.abs(results[1] - results[2]).max()):.3g}); tinygrad cannot replay this graph")
    out = jit(**tinygrad_tensors(check_inputs)).numpy().copy()  # a replay on other data: inputs really flow through
    with open(pkl_path, "wb") as f:
        pickle.dump(jit, f)
    report = {"tinygrad_version": version("tinygrad"), "device": Device.DEFAULT, "output": first,
              "inputs": _input_specs(runner.graph_inputs), "kernels": _kernel_count(jit), "runs_s": runs_s,
              "pickle_bytes": os.path.getsize(pkl_path)}
    return out, report


def run_pickle(pkl_path: str, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Load a pickled jit (this executes the pickle: only for our own files) and call it like modeld."""
    from tinygrad import Device  # child process: after DEV is set

    start = time.perf_counter()
    run = load_tinygrad_pickle(pkl_path)
    loaded_s = time.perf_counter() - start
    names = sorted(getattr(getattr(run, "captured", None), "expected_names", []) or [])
    if names != sorted(inputs):
        raise SystemExit(f"{pkl_path}: the pickled jit expects inputs {names}, the parity inputs are {sorted(inputs)}")
    start = time.perf_counter()
    out = run_tinygrad(run, inputs)
    return out, {"tinygrad_version": version("tinygrad"), "device": Device.DEFAULT, "load_s": round(loaded_s, 3),
                 "run_s": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Compile an ONNX model into a pickled "
                                     "tinygrad TinyJit (compile), or run such a pickle like modeld does (run).")
    parser.add_argument("action", choices=("compile", "run"))
    parser.add_argument("paths", nargs="+", help="compile: ONNX PKL; run: PKL")
    parser.add_argument("--inputs", required=True, help=".npz of inputs by graph input name")
    parser.add_argument("--outputs", required=True, help=".npz to write the first output to (key 'outputs')")
    parser.add_argument("--report", required=True, help="JSON report to write")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with np.load(args.inputs) as data:
        inputs = {k: data[k] for k in data.files}
    if args.action == "compile":
        if len(args.paths) != 2:
            parser.error("compile takes ONNX PKL")
        out, report = compile_onnx(args.paths[0], args.paths[1], inputs)
    else:
        out, report = run_pickle(args.paths[0], inputs)
    np.savez(args.outputs, outputs=out)
    report["child_s"] = round(time.perf_counter() - start, 2)  # in the child, after its imports
    Path(args.report).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
