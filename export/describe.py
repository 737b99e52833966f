"""Text reports of exported artifacts and checkpoints for ``sptrain inspect``.

* ONNX: inputs, outputs, ``metadata_props`` (slices decoded with the restricted loader), opset, size, parameter
  count from the initializers, a FLOPs estimate (Conv / Gemm / MatMul from inferred shapes) and the contract check;
* ``*_metadata.pkl``: loaded with the restricted loader and compared with the profile of the same output shape;
* ``*_tinygrad.pkl``: file facts and the JSON sidecar only - the pickle is never loaded (unpickling a tinygrad jit
  executes code from the file);
* checkpoints: run, epoch, stage, profile, a config summary and parameter counts (``weights_only=True``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import onnx
from onnx.helper import tensor_dtype_to_np_dtype

from ..contract.metadata import load_metadata, match_metadata
from ..contract.profiles import PROFILES
from ..errors import ContractError, ExportError
from ..fileio import sha256_file
from ..training.checkpoint import load_checkpoint
from ..training.models import build_models, count_parameters
from .artifacts import sidecar_path
from .exporter import size_text
from .onnx_export import metadata_from_onnx


def _contract_lines(metadata: dict[str, Any]) -> list[str]:
    match = match_metadata(metadata)
    if match is None:
        shape = metadata.get("output_shapes")
        return [f"  contract: no profile has output shape {shape}; known: "
                + ", ".join(f"{pid} {s.name} {s.output_shape}" for pid, p in PROFILES.items()
                            for s in p.models.values())]
    if match.exact:
        return [f"  contract: matches {match.profile_id} {match.spec.name} (input names/order/shapes, output shape, "
                f"slices)"]
    return [f"  contract: output shape of {match.profile_id} {match.spec.name}, but:"] + [
        f"    - {p}" for p in match.problems]


def _metadata_lines(metadata: dict[str, Any]) -> list[str]:
    lines = [f"  model_checkpoint   {metadata.get('model_checkpoint')!r}"]
    for name, shape in metadata.get("input_shapes", {}).items():
        lines.append(f"  input  {name:<22} {tuple(shape)}")
    for name, shape in metadata.get("output_shapes", {}).items():
        lines.append(f"  output {name:<22} {tuple(shape)}")
    lines.append("  output_slices:")
    lines += [f"    {k:<24} [{s.start}:{s.stop}]" for k, s in metadata.get("output_slices", {}).items()]
    return lines + _contract_lines(metadata)


def describe_metadata(path: str | os.PathLike) -> str:
    try:
        metadata = load_metadata(path)
    except ContractError as exc:
        raise ExportError(str(exc)) from None
    return "\n".join([f"metadata pickle {path} ({size_text(Path(path).stat().st_size)}; loaded with the "
                      f"slice-only unpickler)"] + _metadata_lines(metadata))


# --- ONNX ----------------------------------------------------------------------------------------------------
def _shapes(proto) -> dict[str, tuple[int, ...]]:
    out = {}
    for vi in list(proto.graph.input) + list(proto.graph.value_info) + list(proto.graph.output):
        out[vi.name] = tuple(int(d.dim_value) for d in vi.type.tensor_type.shape.dim)
    for init in proto.graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _node_flops(node, shapes: dict[str, tuple[int, ...]]) -> int:
    try:
        if node.op_type == "Conv":
            w, out = shapes[node.input[1]], shapes[node.output[0]]
            return 2 * math.prod(out) * math.prod(w[1:])  # each output: Cin/groups * kH * kW MACs
        if node.op_type in ("Gemm", "MatMul"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            k = a[-2] if trans_a else a[-1]
            return 2 * math.prod(out) * k
    except (KeyError, IndexError):
        return 0
    return 0


def onnx_facts(path: str | os.PathLike) -> dict[str, Any]:
    """Facts about an ONNX file (no external data is loaded)."""
    proto = onnx.load(str(path), load_external_data=False)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # a graph shape inference cannot handle: no FLOPs estimate
        inferred = proto
    shapes = _shapes(inferred)
    external = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    return {
        "inputs": [(i.name, shapes.get(i.name), str(tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)))
                   for i in proto.graph.input],
        "outputs": [(o.name, shapes.get(o.name)) for o in proto.graph.output],
        "props": {p.key: p.value for p in proto.metadata_props},
        "opsets": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
        "parameters": sum(math.prod(t.dims) for t in proto.graph.initializer),
        "flops": sum(_node_flops(n, shapes) for n in inferred.graph.node),
        "nodes": len(proto.graph.node), "external": external, "size": Path(path).stat().st_size,
    }


def describe_onnx(path: str | os.PathLike) -> str:

    f = onnx_facts(path)
    lines = [f"ONNX {path}", f"  size {size_text(f['size'])}; opsets {f['opsets']}; {f['nodes']} nodes; "
             f"{f['parameters'] / 1e6:.3f} M parameters (initializers); ~{f['flops'] / 1e9:.3f} GFLOPs "
             f"(Conv/Gemm/MatMul, batch 1)",
             "  self-contained (no external data)" if not f["external"] else
             f"  EXTERNAL DATA in {len(f['external'])} tensors: modeld cannot read this file"]
    lines += [f"  graph input  {n:<20} {s} {d}" for n, s, d in f["inputs"]]
    lines += [f"  graph output {n:<20} {s}" for n, s in f["outputs"]]
    lines.append(f"  metadata_props: {sorted(f['props'])}")
    try:
        lines += _metadata_lines(metadata_from_onnx(path))
    except ExportError as exc:
        lines.append(f"  metadata: {exc}")
    return "\n".join(lines)


# --- tinygrad pickles ----------------------------------------------------------------------------------------
def describe_tinygrad(path: str | os.PathLike) -> str:
    path = Path(path)
    head = path.read_bytes()[:2]
    lines = [f"tinygrad pickle {path}", f"  size {size_text(path.stat().st_size)}; sha256 {sha256_file(path)}",
             "  pickle protocol " + (str(head[1]) if head[:1] == b"\x80" else "? (does not start like a pickle)"),
             "  not unpickled: loading a tinygrad jit executes code from the file; only file facts and the "
             "sidecar are shown"]
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return "\n".join(lines + [f"  no sidecar {sidecar.name}: built elsewhere (e.g. by the modeld build)"])
    try:
        info = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        return "\n".join(lines + [f"  sidecar {sidecar} is not valid JSON ({exc})"])
    lines.append(f"  sidecar {sidecar.name}:")
    lines += [f"    {k:<28} {json.dumps(v)}" for k, v in info.items()]
    if info.get("tinygrad_pickle_sha256") not in (None, sha256_file(path)):
        lines.append("  WARNING: the pickle's sha256 differs from the sidecar's: the sidecar describes another build")
    return "\n".join(lines)


# --- checkpoints ---------------------------------------------------------------------------------------------
def _parameter_counts(ckpt: dict) -> dict[str, str]:
    """Exact trainable parameter counts from the rebuilt models; state-dict value counts if they cannot be built."""
    try:
        vision, policy = build_models(ckpt["model_args"])
        return {"vision": f"{count_parameters(vision) / 1e6:.3f} M parameters",
                "policy": f"{count_parameters(policy) / 1e6:.3f} M parameters"}
    except Exception as exc:  # model_args this version cannot build: fall back to what the state dicts hold
        values = {k: sum(int(v.numel()) for v in ckpt.get(k, {}).values()) for k in ("vision", "policy")}
        return {k: f"{v / 1e6:.3f} M state-dict values (models not rebuilt: {exc})" for k, v in values.items()}


def describe_checkpoint(path: str | os.PathLike) -> str:
    ckpt = load_checkpoint(path)
    cfg = ckpt.get("config") or {}
    model, diff, vis = cfg.get("model", {}), cfg.get("diffusion", {}), cfg.get("vision", {})
    lines = [f"checkpoint {path} ({size_text(Path(path).stat().st_size)}; loaded with weights_only=True)",
             f"  run {ckpt['run_id']}  epoch {ckpt['epoch']}  stage {ckpt['stage']}  step {ckpt['step']}  "
             f"profile {ckpt['profile']}  format {ckpt.get('format_version')}",
             f"  model {model.get('name')}: vision {model.get('vision_size')} ({vis.get('heads')} heads, shared "
             f"backbone {model.get('shared_backbone')}), policy {model.get('policy_size')}",
             f"  diffusion: {diff.get('steps')} DDIM steps, {diff.get('export_samples')} export samples, "
             f"{diff.get('prediction')}-prediction, {diff.get('schedule')} schedule",
             f"  EMA weights: {[k for k in ('vision_ema', 'policy_ema') if k in ckpt]}; "
             f"export ONNX model_checkpoint {ckpt['run_id']}/{ckpt['epoch']}"]
    lines += [f"  {part:<7} {text}" for part, text in _parameter_counts(ckpt).items()]
    history = ckpt.get("history") or []
    if history:
        last = history[-1]
        shown = {k: v for k, v in last.items() if k.startswith("val_") and isinstance(v, (int, float))}
        lines.append(f"  last epoch ({last.get('stage')}): " + ", ".join(f"{k} {v:.4g}" for k, v in
                                                                     list(shown.items())[:6]))
    return "\n".join(lines)
