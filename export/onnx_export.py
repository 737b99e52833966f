"""torch -> ONNX for modeld: static shapes, opset 17, one self-contained file, the contract in ``metadata_props``.

:func:`metadata_from_onnx` reads a written file back the way openpilot's ``selfdrive/modeld/get_model_metadata.py``
does (graph input/output shapes + the decoded ``metadata_props``), so the ``*_metadata.pkl`` we ship is what the
modeld build would produce from our ONNX.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx.helper import tensor_dtype_to_np_dtype

from ..contract.metadata import (
    METADATA_KEYS,
    PROP_MODEL_CHECKPOINT,
    PROP_OUTPUT_SLICES,
    decode_output_slices,
    onnx_metadata_props,
)
from ..contract.profiles import ModelSpec
from ..errors import ContractError, ExportError

OPSET = 17
PROTOBUF_LIMIT_BYTES = 2 * 1024**3  # one protobuf file cannot hold more; bigger models need external data


def export_to_onnx(model, spec: ModelSpec, inputs: tuple, path: str | os.PathLike, model_checkpoint: str) -> Path:
    """Trace ``model`` (eval mode) into ``path`` with the profile's input names and the contract metadata."""
    path = Path(path)
    names = [i.name for i in spec.inputs]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model.eval(), inputs, str(path), dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=[spec.output_name], do_constant_folding=True)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in onnx_metadata_props(spec, model_checkpoint).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return path


def _shape(value_info) -> tuple[int, ...]:
    return tuple(int(d.dim_value) for d in value_info.type.tensor_type.shape.dim)


def _props(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def metadata_from_onnx(path: str | os.PathLike) -> dict[str, Any]:
    """``{'model_checkpoint', 'output_slices', 'input_shapes', 'output_shapes'}`` read from the ONNX file itself
    (symbolic dims read as 0, like modeld's get_model_metadata.py; slices decoded with the restricted loader)."""
    proto = onnx.load(str(path), load_external_data=False)
    props = _props(proto)
    if PROP_OUTPUT_SLICES not in props:
        raise ExportError(f"{path}: metadata_props has no {PROP_OUTPUT_SLICES!r} (found {sorted(props)}); modeld "
                          f"cannot slice the output - re-export with sptrain export")
    try:
        slices = decode_output_slices(props[PROP_OUTPUT_SLICES], f"{path} metadata_props")
    except ContractError as exc:
        raise ExportError(str(exc)) from None
    values = {
        "model_checkpoint": props.get(PROP_MODEL_CHECKPOINT),
        "output_slices": slices,
        "input_shapes": {i.name: _shape(i) for i in proto.graph.input},
        "output_shapes": {o.name: _shape(o) for o in proto.graph.output},
    }
    return {k: values[k] for k in METADATA_KEYS}


def _external_tensors(proto) -> list[str]:
    found = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_location == onnx.TensorProto.EXTERNAL:
                found.append(f"{node.name}.{attr.name}")
    return found


def _check_io(proto, spec: ModelSpec, path: Path) -> None:
    found = [(i.name, _shape(i), str(tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))) for i in
             proto.graph.input]
    expected = [(i.name, tuple(i.shape), i.dtype) for i in spec.inputs]
    if found != expected:
        raise ExportError(f"{path}: graph inputs {found}, expected exactly {expected} (name, shape, dtype, in "
                          f"order) for {spec.name}; the model's forward must take the profile's inputs")
    outputs = [(o.name, _shape(o)) for o in proto.graph.output]
    if outputs != [(spec.output_name, spec.output_shape)]:
        expected_out = (spec.output_name, spec.output_shape)
        raise ExportError(f"{path}: graph outputs {outputs}, expected one output {expected_out}; the output width "
                          f"must equal the contract's slices")


def check_onnx_file(path: str | os.PathLike, spec: ModelSpec, model_checkpoint: str) -> dict[str, Any]:
    """Structural checks modeld relies on; returns facts (opset, size, nodes) for the report."""
    path = Path(path)
    size = path.stat().st_size
    if size >= PROTOBUF_LIMIT_BYTES:
        raise ExportError(f"{path}: {size / 1e9:.2f} GB does not fit one protobuf file (limit 2 GB); modeld needs a "
                          f"self-contained ONNX - use a smaller model size")
    proto = onnx.load(str(path), load_external_data=False)
    external = _external_tensors(proto)
    if external:
        raise ExportError(f"{path}: tensors stored as external data {external[:5]}; expected one self-contained "
                          f"file (modeld's ONNX parser reads no external data) - re-export without external data")
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    if opsets.get("ai.onnx") != OPSET:
        raise ExportError(f"{path}: opset imports {opsets}, expected ai.onnx opset {OPSET} (what tinygrad's ONNX "
                          f"frontend and modeld are tested with)")
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: not a valid ONNX model ({str(exc).splitlines()[0]})") from None
    _check_io(proto, spec, path)
    props = _props(proto)
    if props.get(PROP_MODEL_CHECKPOINT) != model_checkpoint:
        raise ExportError(f"{path}: metadata_props model_checkpoint={props.get(PROP_MODEL_CHECKPOINT)!r}, expected "
                          f"{model_checkpoint!r}")
    return {"opset": OPSET, "size_bytes": size, "nodes": len(proto.graph.node),
            "initializers": len(proto.graph.initializer), "producer": f"{proto.producer_name} {proto.producer_version}"}


def run_onnxruntime(path: str | os.PathLike, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of the model on the CPU execution provider."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])
