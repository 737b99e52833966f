"""Checks an export must pass before its files are moved into place; each failure is an ExportError naming it.

* parity: torch vs onnxruntime vs tinygrad, per head ``max |a - b| <= atol + rtol * max |torch|`` (the tolerance is
  scaled to each head's own magnitude); the numbers go into the report either way;
* layout: the metadata read back from the ONNX equals the contract's (``compare_metadata``) and its slices tile the
  output width exactly;
* parsing: the output parses through ``contract.outputs.parse_outputs`` into finite values of the right shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..contract.metadata import build_metadata, compare_metadata
from ..contract.outputs import parse_outputs
from ..contract.profiles import HeadKind, ModelSpec
from ..errors import ContractError, ExportError

RTOL = 1e-3
ATOL = 1e-3


def parity_inputs(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible inputs of the profile's names, shapes and dtypes: uint8 images, a desire pulse, right-hand
    traffic, random features and lateral parameters (batch 1)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec_in in spec.inputs:
        name, shape = spec_in.name, spec_in.shape
        if spec_in.dtype == "uint8":
            out[name] = rng.integers(0, 256, size=shape, dtype=np.uint8)
            continue
        value = rng.standard_normal(shape).astype(np.float32)
        if name in ("desire", "desire_pulse"):
            value = np.zeros(shape, np.float32)
            value[0, -3, 3] = 1.0  # a lane-change-left pulse
        elif name == "traffic_convention":
            value = np.array([[1.0, 0.0]], np.float32)
        elif name == "lateral_control_params":
            value = np.array([[20.0, 0.2]], np.float32)  # v_ego m/s, lateral delay s
        elif name == "prev_desired_curv":
            value = 0.01 * value
        out[name] = value.astype(np.dtype(spec_in.dtype))
    return out


def parity(spec: ModelSpec, reference: np.ndarray, other: np.ndarray, what: str, rtol: float = RTOL,
           atol: float = ATOL) -> dict[str, Any]:
    """``{max_abs_diff, tolerance, worst_head}`` of ``other`` against the torch ``reference``; ExportError if over."""
    ref = np.asarray(reference, np.float64).reshape(1, -1)
    got = np.asarray(other, np.float64).reshape(1, -1)
    if ref.shape != got.shape:
        raise ExportError(f"{spec.name}: {what} output has {got.shape[1]} values, torch has {ref.shape[1]}")
    diff = np.abs(got - ref)
    finite = bool(np.isfinite(got).all())
    max_diff = float(np.nanmax(np.where(np.isfinite(diff), diff, np.inf)))
    slices = spec.output_slices()
    # Each head is held to its own scale: small logits are not excused by a 200 m plan value elsewhere.
    tolerances = {h.name: atol + rtol * float(np.abs(ref[:, slices[h.name]]).max()) for h in spec.heads}
    ratios = {name: float(np.where(np.isfinite(diff[:, slices[name]]), diff[:, slices[name]], np.inf).max()) / tol
              for name, tol in tolerances.items()}
    worst = max(ratios, key=ratios.get)
    tolerance = tolerances[worst]
    max_diff_worst = float(diff[:, slices[worst]].max())
    result = {"max_abs_diff": max_diff, "tolerance": tolerance, "worst_head": worst}
    if not finite or ratios[worst] > 1.0:
        max_diff = max_diff_worst
        raise ExportError(f"{spec.name}: {what} differs from torch by max |diff| {max_diff:.3g} (worst head "
                          f"{worst!r}), tolerance {tolerance:.3g} (atol {atol:g} + rtol {rtol:g} x max |torch| of "
                          f"that head); "
                          f"the runtime computes the graph differently - check for ops it handles differently")
    return result


def check_output_layout(spec: ModelSpec, metadata: dict[str, Any], source: str) -> None:
    """The metadata slices tile ``[0, width - pad)`` in order and the pad covers the rest."""
    width = metadata["output_shapes"].get(spec.output_name, (0, 0))[-1]
    slices = metadata["output_slices"]
    start = 0
    for head in spec.heads:
        s = slices.get(head.name)
        if s is None or (s.start, s.stop) != (start, start + head.width):
            raise ExportError(f"{source}: slice of {head.name!r} is {s}, expected slice({start}, "
                              f"{start + head.width}) ({head.width} values after the previous head)")
        start += head.width
    if start + spec.pad_width != width:
        raise ExportError(f"{source}: the heads end at {start} and the pad holds {spec.pad_width}, but the output is "
                          f"{width} wide; the output width must equal the slices")


def check_metadata(metadata: dict[str, Any], spec: ModelSpec, model_checkpoint: str, source: str) -> None:
    """The metadata modeld would build from our ONNX equals the contract's for ``spec``."""
    expected = build_metadata(spec, model_checkpoint)
    problems = compare_metadata(metadata, expected)
    if metadata.get("model_checkpoint") != model_checkpoint:
        problems.append(f"model_checkpoint {metadata.get('model_checkpoint')!r} != {model_checkpoint!r}")
    if problems:
        raise ExportError(f"{source}: the metadata modeld would read differs from the contract for {spec.name}: "
                          + "; ".join(problems))
    check_output_layout(spec, metadata, source)


def check_parsed(spec: ModelSpec, flat: np.ndarray, what: str) -> None:
    """``flat`` parses like modeld parses it into finite values of the contract's shapes."""
    flat = np.asarray(flat, np.float32).reshape(1, -1)
    try:
        parsed = parse_outputs(spec, flat)
    except ContractError as exc:
        raise ExportError(f"{spec.name}: the {what} output does not parse: {exc}") from None
    for head in spec.heads:
        shape = head.parsed_shape(1) if head.kind is HeadKind.MDN else (1,) + head.shape
        names = [head.name] + ([head.name + "_stds"] if head.kind is HeadKind.MDN else [])
        for name in names:
            value = parsed[name]
            if value.shape != shape:
                raise ExportError(f"{spec.name}: parsed {what} {name!r} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise ExportError(f"{spec.name}: parsed {what} {name!r} has non-finite values; the model produces "
                                  f"NaN/inf on plausible inputs - check the checkpoint's training")

