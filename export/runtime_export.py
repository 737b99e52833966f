"""The runtime half of an export for the 2026 profiles: the fused graph, the runtime's pickles, the harness check.

After the vision and policy files are made and checked (``exporter``), a profile whose runtime is not the split one
gets, in the same staging folder:

* ``combined`` (op-0.11.1): ``driving_tinygrad.pkl`` compiled from the two ONNX files;
* ``supercombo`` / ``stateful``: ``driving_supercombo.onnx`` (``export.fused``) - torch vs onnxruntime parity on
  every output - and the runtime's pickles (``runtime_build``, a child process with ``DEV`` set);

then the release's harness (``runtime_harness``) loads the pickles in a fresh process and drives them over a few
frames of raw NV12 buffers, and every frame's output must equal the onnxruntime reference
(``runtime_reference``) within the export tolerance. ``sptrain_export.json`` records the profile and the files.
"""

from __future__ import annotations

import json
import pickle
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx.helper import tensor_dtype_to_np_dtype

from ..contract.metadata import onnx_metadata_props
from ..contract.profiles import Profile
from ..contract.runtimes import COMBINED, STATEFUL
from ..errors import ExportError
from . import checks, onnx_export
from .checkpoint_models import ExportSource
from .fused import StatefulGraph, SupercomboGraph
from .runtime_reference import ACTION_T_S, make_frames, run_reference
from .tinygrad_compile import Job, start_child, wait

MANIFEST = "sptrain_export.json"
GRAPH_ONNX = "driving_supercombo.onnx"
HARNESS_FRAMES = 6  # enough for the frame pair t-4/t and a desire edge
Log = Callable[[str], None]


def graph_parity_inputs(profile: Profile, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible inputs of the fused graph: uint8 images/queues, a pulse, right-hand traffic, typical delays."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in profile.graph.inputs:
        if spec.dtype == "uint8":
            out[spec.name] = rng.integers(0, 256, size=spec.shape, dtype=np.uint8)
        elif spec.name == "traffic_convention":
            out[spec.name] = np.array([[1.0, 0.0]], np.float32)
        elif spec.name == "action_t":
            out[spec.name] = ACTION_T_S[None].copy()
        elif spec.name in ("desire", "desire_pulse", "state_desire_q"):
            value = np.zeros(spec.shape, np.float32)
            value.reshape(-1, value.shape[-1])[-1, 3] = 1.0  # a lane-change-left pulse, the newest entry
            out[spec.name] = value
        else:
            out[spec.name] = rng.standard_normal(spec.shape).astype(np.float32)
    return out


def _graph_module(source: ExportSource) -> torch.nn.Module:
    profile = source.profile
    supercombo = SupercomboGraph(source.models["driving_vision"], source.models["driving_policy"], profile.graph)
    return (StatefulGraph(supercombo) if profile.runtime.packaging == STATEFUL else supercombo).eval()


def output_names(profile: Profile) -> list[str]:
    return [profile.graph.output_name, *(o for _, o in profile.state_pairs)]


def export_graph(source: ExportSource, path: Path) -> dict[str, np.ndarray]:
    """Trace the fused graph into ``path`` (contract metadata in ``metadata_props``); torch's outputs by name."""
    profile, spec = source.profile, source.profile.graph
    inputs = graph_parity_inputs(profile)
    tensors = tuple(torch.from_numpy(inputs[i.name]) for i in spec.inputs)
    module = _graph_module(source)
    names = output_names(profile)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module, tensors, str(path), dynamo=False, opset_version=onnx_export.OPSET,
                          input_names=[i.name for i in spec.inputs], output_names=names, do_constant_folding=True)
        result = module(*tensors)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in onnx_metadata_props(spec, source.model_checkpoint).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    results = result if isinstance(result, tuple) else (result,)
    return {name: r.numpy() for name, r in zip(names, results)}


def _io(proto) -> tuple[list, list]:
    def row(v):
        return (v.name, tuple(int(d.dim_value) for d in v.type.tensor_type.shape.dim),
                str(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)))
    return [row(v) for v in proto.graph.input], [row(v) for v in proto.graph.output]


def check_graph(path: Path, profile: Profile) -> dict[str, Any]:
    """Inputs, outputs and metadata of the fused ONNX are what the runtime reads; facts for the report."""
    proto = onnx.load(str(path), load_external_data=False)
    inputs, outputs = _io(proto)
    spec = profile.graph
    expected_in = [(i.name, tuple(i.shape), i.dtype) for i in spec.inputs]
    state = {i.name: i for i in spec.inputs}
    expected_out = [(spec.output_name, spec.output_shape, "float32")] + [
        (o, tuple(state[i].shape), state[i].dtype) for i, o in profile.state_pairs]
    if inputs != expected_in or outputs != expected_out:
        raise ExportError(f"{path}: graph inputs {inputs} and outputs {outputs}; expected inputs {expected_in} and "
                          f"outputs {expected_out} for profile {profile.id} - the fused module must take the "
                          f"profile's inputs in order")
    metadata = onnx_export.metadata_from_onnx(path)
    if list(metadata["output_slices"].items()) != list(spec.output_slices().items()):
        raise ExportError(f"{path}: output_slices {metadata['output_slices']} differ from the contract's "
                          f"{spec.output_slices()} for {profile.id}")
    return {"nodes": len(proto.graph.node), "size_bytes": path.stat().st_size, "inputs": len(inputs),
            "outputs": len(outputs)}


def write_child_metadata(onnx_path: Path, profile: Profile) -> None:
    """What the tinygrad child needs from an ONNX file, beside it (the child does not import onnx)."""
    metadata = onnx_export.metadata_from_onnx(onnx_path)
    proto = onnx.load(str(onnx_path), load_external_data=False)
    inputs, outputs = _io(proto)
    info = {"pickle_hex": pickle.dumps(metadata).hex(), "props": {p.key: p.value for p in proto.metadata_props},
            "inputs": {n: [list(s), d] for n, s, d in inputs}, "outputs": {n: [list(s), d] for n, s, d in outputs}}
    onnx_path.with_suffix(".metadata.json").write_text(json.dumps(info), encoding="utf-8")


def _per_frame_parity(profile: Profile, reference: list[np.ndarray], got: np.ndarray, what: str) -> dict[str, Any]:
    if len(got) != len(reference):
        raise ExportError(f"{what}: {len(got)} frames of output, the reference has {len(reference)}")
    worst: dict[str, Any] = {"max_abs_diff": 0.0}
    for t, (ref, out) in enumerate(zip(reference, got)):
        if profile.runtime.packaging == COMBINED:
            width = profile.vision.output_width
            parts = [(profile.vision, ref[:width], out[:width]), (profile.policy, ref[width:], out[width:])]
        else:
            parts = [(profile.graph, ref, out)]
        for spec, r, o in parts:
            result = checks.parity(spec, r, o, f"{what} at frame {t}")
            if result["max_abs_diff"] >= worst["max_abs_diff"]:
                worst = {**result, "frame": t, "model": spec.name}
    return worst


def _torch_vs_onnxruntime(path: Path, profile: Profile, reference: dict[str, np.ndarray]) -> dict[str, Any]:
    session_inputs = graph_parity_inputs(profile)
    session = onnx_export.ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, session_inputs)))
    result = checks.parity(profile.graph, reference["outputs"], got["outputs"], "onnxruntime")
    for name in output_names(profile)[1:]:
        if not np.allclose(got[name], reference[name], rtol=checks.RTOL, atol=checks.ATOL):
            raise ExportError(f"{path}: onnxruntime's {name} differs from torch's (max |diff| "
                              f"{float(np.abs(got[name].astype(np.float64) - reference[name]).max()):.3g}); the "
                              f"state queues must be copied exactly")
    return result


def export_runtime(source: ExportSource, stage: Path, device: str, cameras: list[str], log: Log) -> dict[str, Any]:
    """Make and check the runtime files of ``source.profile`` in ``stage``; their names and the report."""
    profile = source.profile
    packaging = profile.runtime.packaging
    report: dict[str, Any] = {"profile": profile.id, "packaging": packaging, "cameras": cameras}
    start = time.perf_counter()
    if packaging == COMBINED:
        onnx_files = [stage / "driving_vision.onnx", stage / "driving_policy.onnx"]
    else:
        graph_path = stage / GRAPH_ONNX
        log(f"{GRAPH_ONNX}: fusing vision + policy ({packaging}) -> ONNX")
        reference = export_graph(source, graph_path)
        report["onnx"] = check_graph(graph_path, profile)
        checks.check_parsed(profile.graph, reference["outputs"], "torch")
        report["parity"] = {"onnxruntime": _torch_vs_onnxruntime(graph_path, profile, reference)}
        onnx_files = [graph_path]
    for path in onnx_files:
        write_child_metadata(path, profile)
    log(f"{profile.id}: compiling the runtime's pickles (DEV={device}, cameras {' '.join(cameras)})")
    build = wait(start_child("runtime_build", "sunnypilot_training.export.runtime_build",
                               [packaging, str(stage), "--onnx", *map(str, onnx_files), "--cameras", *cameras],
                               stage, device, "build", 3600), "runtime pickle build")
    report["build"] = build
    frames = make_frames(tuple(int(v) for v in cameras[0].split("x")), HARNESS_FRAMES)
    frames_npz = stage / "harness_frames.npz"
    np.savez(frames_npz, **frames)
    log(f"{profile.id}: driving the pickles in a fresh process like the runtime's modeld ({HARNESS_FRAMES} frames)")
    job: Job = start_child("runtime_harness", "sunnypilot_training.export.runtime_harness",
                             [packaging, str(stage), "--frames", str(frames_npz), "--outputs",
                              str(stage / "harness_out.npz")], stage, device, "harness", 1200)
    reference_frames = run_reference(profile, stage, frames)
    report["harness"] = wait(job, "runtime harness run")
    with np.load(stage / "harness_out.npz") as data:
        got = data["outputs"]
    report.setdefault("parity", {})["tinygrad_runtime_harness"] = _per_frame_parity(
        profile, reference_frames, got, f"{profile.id} harness (tinygrad, fresh process)")
    files = [Path(p).name for p in build["files"]] + ([GRAPH_ONNX] if packaging != COMBINED else [])
    report["files"] = files
    report["total_s"] = round(time.perf_counter() - start, 1)
    return report


def manifest(source: ExportSource, report: dict[str, Any], device: str) -> dict[str, Any]:
    """``sptrain_export.json``: which profile the folder is for, and its runtime files."""
    return {"profile": source.profile.id, "packaging": source.profile.runtime.packaging,
            "trains_as": source.profile.trains_as, "model_checkpoint": source.model_checkpoint,
            "device": report["build"]["device"], "requested_device": device, "cameras": report["cameras"],
            "runtime_files": report["files"], "parity": report.get("parity", {})}

