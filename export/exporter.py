"""Export a checkpoint's EMA models into modeld's files, checked before anything is moved into place.

Per model: torch -> ONNX (+ ``metadata_props``) -> the metadata modeld would read from that ONNX (checked against
the contract) -> onnxruntime parity -> tinygrad compile in a child process (``DEV=<device>``) -> the pickle loaded
and run in a fresh process -> parity and parse checks -> JSON sidecar. The tinygrad children of all models run
at the same time. Files are staged in a hidden folder beside the destination and moved only when every model of
the export passed; otherwise nothing is written and the ExportError names the problem.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..contract.metadata import dump_metadata
from ..contract.profiles import ModelSpec
from ..contract.runtimes import CAMERA_SIZES, SPLIT
from ..errors import ExportError
from ..fileio import sha256_file
from . import checks, onnx_export
from .artifacts import ArtifactPaths, make_staging_dir, move_into_place, write_json
from .checkpoint_models import ExportSource, load_export_source
from .runtime_export import MANIFEST, export_runtime, manifest
from .tinygrad_compile import DEFAULT_DEVICE, Job, check_device, start_compile, start_fresh_run, wait

Log = Callable[[str], None]


@dataclass
class _Model:
    """One model on its way through the export."""

    name: str
    spec: ModelSpec
    final: ArtifactPaths
    staged: ArtifactPaths
    inputs_npz: Path
    reference: np.ndarray  # torch output on the parity inputs, (1, W)
    report: dict[str, Any] = field(default_factory=dict)

    def npz(self, tag: str) -> Path:
        return self.inputs_npz.with_name(f"{self.name}_{tag}.npz")


VISION = "driving_vision"
POLICY = "driving_policy"


def _timed(report: dict, key: str, start: float) -> None:
    report.setdefault("timings_s", {})[key] = round(time.perf_counter() - start, 2)


def _prepare(source: ExportSource, name: str, final: ArtifactPaths, stage: Path, log: Log) -> _Model:
    """torch -> ONNX -> metadata -> onnxruntime parity, all in ``stage``."""
    spec = source.spec(name)
    model = source.models[name]
    staged = ArtifactPaths.in_dir(stage, name)
    inputs = checks.parity_inputs(spec)
    start = time.perf_counter()
    log(f"{name}: torch -> ONNX (opset {onnx_export.OPSET})")
    tensors = tuple(torch.from_numpy(inputs[i.name]) for i in spec.inputs)
    onnx_export.export_to_onnx(model, spec, tensors, staged.onnx, source.model_checkpoint)
    with torch.no_grad():
        reference = model(*tensors).numpy().astype(np.float32)
    item = _Model(name, spec, final, staged, stage / f"{name}_inputs.npz", reference)
    _timed(item.report, "torch_to_onnx", start)
    item.report["onnx"] = onnx_export.check_onnx_file(staged.onnx, spec, source.model_checkpoint)
    metadata = onnx_export.metadata_from_onnx(staged.onnx)
    checks.check_metadata(metadata, spec, source.model_checkpoint, f"{final.onnx.name} (read back)")
    staged.metadata.write_bytes(dump_metadata(metadata))
    checks.check_parsed(spec, reference, "torch")
    start = time.perf_counter()
    ort_out = onnx_export.run_onnxruntime(staged.onnx, inputs)
    item.report["parity"] = {"onnxruntime": checks.parity(spec, reference, ort_out, "onnxruntime")}
    _timed(item.report, "onnxruntime", start)
    np.savez(item.inputs_npz, **inputs)
    return item


def _run_children(items: list[_Model], start_job: Callable[[_Model], Job], what: str) -> list[dict]:
    """Start one child per model, wait for all; on the first failure stop the others and re-raise."""
    jobs = [start_job(item) for item in items]
    try:
        return [wait(job, what) for job in jobs]
    finally:
        for job in jobs:
            if job.proc.poll() is None:
                job.proc.kill()
                job.proc.wait()


def _tinygrad(items: list[_Model], device: str, stage: Path, log: Log) -> None:
    log(f"{', '.join(i.name for i in items)}: compiling tinygrad pickles (DEV={device}; tens of seconds per model)")
    compiled = _run_children(items, lambda i: start_compile(
        i.name, i.staged.onnx, i.staged.tinygrad, i.inputs_npz, i.npz("tinygrad_jit"), stage, device), "compile")
    for item, comp in zip(items, compiled):
        if comp["device"].split(":")[0] != device.split(":")[0]:
            raise ExportError(f"{item.name}: asked tinygrad for DEV={device} but it compiled for {comp['device']}; "
                              f"check what `python -c \"from tinygrad import Device; print(Device.DEFAULT)\"` prints "
                              f"with DEV={device}")
    log(f"{', '.join(i.name for i in items)}: loading the pickles in fresh processes and running them like modeld")
    fresh = _run_children(items, lambda i: start_fresh_run(
        i.name, i.staged.tinygrad, i.inputs_npz, i.npz("tinygrad_fresh"), stage, device), "fresh-process run")
    for item, comp, run in zip(items, compiled, fresh):
        item.report["tinygrad"] = comp
        item.report["fresh_run"] = run
        item.report["timings_s"].update(tinygrad_compile=comp["child_s"], tinygrad_fresh_run=run["child_s"])


def _finish(item: _Model, source: ExportSource, device: str) -> None:
    """Parity and parse checks of the tinygrad outputs, then the sidecar."""
    spec = item.spec
    with np.load(item.npz("tinygrad_jit")) as jit_out, np.load(item.npz("tinygrad_fresh")) as fresh_out:
        jit, fresh = jit_out["outputs"], fresh_out["outputs"]
    item.report["parity"]["tinygrad_jit"] = checks.parity(spec, item.reference, jit, "tinygrad (jit)")
    item.report["parity"]["tinygrad_pickle"] = checks.parity(spec, item.reference, fresh,
                                                             "tinygrad (pickle in a fresh process)")
    checks.check_parsed(spec, fresh, "tinygrad")
    comp = item.report["tinygrad"]
    sidecar = {
        "model": item.name, "profile": source.profile.id, "model_checkpoint": source.model_checkpoint,
        "checkpoint": str(source.path), "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sunnypilot_training_version": __version__, "tinygrad_version": comp["tinygrad_version"],
        "device": comp["device"], "requested_device": device, "inputs": comp["inputs"],
        "output": {"name": spec.output_name, "shape": list(spec.output_shape)}, "kernels": comp["kernels"],
        "onnx_sha256": sha256_file(item.staged.onnx), "onnx_bytes": item.staged.onnx.stat().st_size,
        "tinygrad_pickle_sha256": sha256_file(item.staged.tinygrad),
        "tolerance": {"rtol": checks.RTOL, "atol": checks.ATOL}, "parity_vs_torch": item.report["parity"],
        "timings_s": item.report["timings_s"], "normalizers_fitted": source.fitted[item.name],
    }
    write_json(item.staged.sidecar, sidecar)


def _drop_stale_manifest(out_dir: Path, profile_id: str, log: Log) -> None:
    """A split export into a folder that held a 2026 export: its ``sptrain_export.json`` would make install place the
    old runtime files, so it goes (the runtime files it lists stay, unread)."""
    stale = out_dir / MANIFEST
    if stale.is_file():
        stale.unlink()
        log(f"removed {stale}: it described an earlier export of a 2026 profile, this folder now holds {profile_id}")


DEFAULT_CAMERAS = [f"{w}x{h}" for w, h in CAMERA_SIZES]


def export_models(checkpoint: str | os.PathLike, targets: dict[str, ArtifactPaths], device: str = DEFAULT_DEVICE,
                  expect_profile: str | None = None, log: Log = print,
                  cameras: list[str] | None = None) -> dict[str, Any]:
    """Export the models named in ``targets`` (model name -> destination paths); all-or-nothing.

    For a profile whose runtime is not the split one (``contract.runtimes``) and both models, the runtime's files
    (``runtime_export``: the fused graph, the runtime's pickles for ``cameras``, ``sptrain_export.json``) are made,
    checked in the release's harness, and moved into the same folder.

    Returns ``{"checkpoint", "profile", "model_checkpoint", "device", "models": {name: {"files", "parity",
    "timings_s", "onnx", "tinygrad", "fresh_run"}}, "files": [every written path], "total_s"}``.
    """
    check_device(device)
    start = time.perf_counter()
    source = load_export_source(checkpoint, expect_profile)
    log(f"checkpoint {source.path}: run {source.run_id}, epoch {source.epoch} ({source.stage}), profile "
        f"{source.profile.id}")
    if POLICY in targets and source.fitted[POLICY] and not source.policy_trained:
        raise ExportError(f"checkpoint {source.path} is from the {source.stage} stage (epoch {source.epoch}): its "
                          f"policy was not trained on this vision model's features; export a checkpoint written "
                          f"after the policy stage (epoch > training.vision_epochs), or export only the vision model")
    for name, fitted in source.fitted.items():
        if name in targets and not fitted:
            log(f"warning: {name} has unfitted normalisers (an untrained model): outputs are in normalised units")
    out_dir = next(iter(targets.values())).onnx.parent
    runtime_wanted = source.profile.runtime.packaging != SPLIT
    if runtime_wanted and set(targets) != {VISION, POLICY}:
        raise ExportError(f"profile {source.profile.id} runs vision and policy as one runtime artifact; export both "
                          f"models (--models vision,policy)")
    stage = make_staging_dir(out_dir)
    runtime_report = None
    try:
        items = [_prepare(source, name, paths, stage, log) for name, paths in targets.items()]
        _tinygrad(items, device, stage, log)
        for item in items:
            _finish(item, source, device)
        moves = [(src, dst) for item in items for src, dst in zip(item.staged.files().values(),
                                                                   item.final.files().values())]
        if runtime_wanted:
            runtime_report = export_runtime(source, stage, device, cameras or DEFAULT_CAMERAS, log)
            write_json(stage / MANIFEST, manifest(source, runtime_report, device))
            moves += [(stage / name, out_dir / name) for name in [*runtime_report["files"], MANIFEST]]
        move_into_place(moves)
        if not runtime_wanted:
            _drop_stale_manifest(out_dir, source.profile.id, log)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    models = {}
    for item in items:
        files = {kind: str(path) for kind, path in item.final.files().items()}
        models[item.name] = {"files": files, **item.report}
    files = [path for entry in models.values() for path in entry["files"].values()]
    if runtime_report is not None:
        files += [str(out_dir / name) for name in [*runtime_report["files"], MANIFEST]
                  if str(out_dir / name) not in files]
    return {"checkpoint": str(source.path), "profile": source.profile.id, "model_checkpoint": source.model_checkpoint,
            "device": device, "models": models, "files": files, "runtime": runtime_report,
            "total_s": round(time.perf_counter() - start, 1)}


def size_text(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.2f} {unit}"
    return f"{n_bytes} B"


def format_summary(report: dict[str, Any]) -> str:
    """One screen: files with sizes, parity numbers and timings per model."""
    lines = [f"exported {report['model_checkpoint']} (profile {report['profile']}, tinygrad DEV={report['device']}) "
             f"in {report['total_s']:.1f} s"]
    for name, entry in report["models"].items():
        lines.append(f"  {name}:")
        for kind, path in entry["files"].items():
            size = Path(path).stat().st_size if Path(path).exists() else 0
            lines.append(f"    {kind:<9} {path}  ({size_text(size)})")
        for runtime, p in entry["parity"].items():
            lines.append(f"    parity vs torch, {runtime:<16} max |diff| {p['max_abs_diff']:.2e} "
                         f"(tolerance {p['tolerance']:.2e})")
        timings = ", ".join(f"{k} {v:.1f} s" for k, v in entry["timings_s"].items())
        lines.append(f"    timings: {timings}")
    runtime = report.get("runtime")
    if runtime:
        cameras = " ".join(runtime["cameras"])
        lines.append(f"  runtime {runtime['profile']} ({runtime['packaging']}), cameras {cameras}:")
        for name in runtime["files"]:
            lines.append(f"    {name}")
        for what, p in runtime.get("parity", {}).items():
            lines.append(f"    parity, {what:<26} max |diff| {p['max_abs_diff']:.2e} (tolerance {p['tolerance']:.2e})")
        lines.append(f"    runtime files made and checked in {runtime['total_s']:.1f} s")
    return "\n".join(lines)
