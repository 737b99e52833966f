"""Pack per-head tensors into modeld's flat output layout, and parse a flat output as modeld does.

Layout of one MDN head with ``H = max(hypotheses, 1)`` hypotheses, each of ``n`` values::

    for each hypothesis: [ n means | n log-stds | `selection` logits ]

(all means first, then all log-stds - not interleaved). ``parse_outputs`` is a numpy re-implementation of
``selfdrive/modeld/parse_model_outputs.py``: safe exp (clipped at 11), sigmoid, softmax, hypothesis
selection by the highest softmax weight, and the same output names (``name``, ``name_stds``,
``name_weights``, ``name_hypotheses``, ``name_stds_hypotheses``) and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ContractError
from .profiles import HeadKind, HeadSpec, ModelSpec

SAFE_EXP_MAX = 11.0


@dataclass
class MdnOutput:
    """Raw MDN head values, batch first.

    mu, log_std: (B, *shape) for single-hypothesis heads, (B, H, *shape) for multi-hypothesis heads.
    logits: (B, H, selection) hypothesis logits (multi-hypothesis heads only).
    """

    mu: np.ndarray
    log_std: np.ndarray
    logits: np.ndarray | None = None


def safe_exp(x: np.ndarray) -> np.ndarray:
    return np.exp(np.clip(x, -np.inf, SAFE_EXP_MAX))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + safe_exp(-x))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = safe_exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# --- pack -----------------------------------------------------------------------------------------------
def _check_shape(head: str, what: str, arr: np.ndarray, expected: tuple[int, ...]) -> None:
    if tuple(arr.shape) != tuple(expected):
        raise ContractError(f"head {head!r}: {what} has shape {tuple(arr.shape)}, expected {tuple(expected)}")


def _pack_mdn(head: HeadSpec, value: MdnOutput, batch: int) -> np.ndarray:
    hyp = max(head.hypotheses, 1)
    lead_dims = (batch, hyp) if head.is_multi_hypothesis else (batch,)
    _check_shape(head.name, "mu", np.asarray(value.mu), lead_dims + head.shape)
    _check_shape(head.name, "log_std", np.asarray(value.log_std), lead_dims + head.shape)
    mu = np.asarray(value.mu, dtype=np.float32).reshape(batch, hyp, head.n_values)
    log_std = np.asarray(value.log_std, dtype=np.float32).reshape(batch, hyp, head.n_values)
    parts = [mu, log_std]  # (B, H, n) each
    if head.is_multi_hypothesis:
        if value.logits is None:
            raise ContractError(f"head {head.name!r} has {hyp} hypotheses and needs logits (B, {hyp}, "
                                f"{head.selection})")
        _check_shape(head.name, "logits", np.asarray(value.logits), (batch, hyp, head.selection))
        parts.append(np.asarray(value.logits, dtype=np.float32))
    elif value.logits is not None:
        raise ContractError(f"head {head.name!r} has a single hypothesis; it takes no logits")
    return np.concatenate(parts, axis=2).reshape(batch, head.width)  # (B, width)


def pack_outputs(spec: ModelSpec, heads: dict[str, object], batch: int | None = None) -> np.ndarray:
    """Flat (B, output_width) float32 output from per-head values.

    MDN heads take an :class:`MdnOutput`; sigmoid/softmax/raw heads take logits of shape (B, *shape) or
    (B, width). Every head of ``spec`` must be given; the pad stays zero.
    """
    missing = [h.name for h in spec.heads if h.name not in heads]
    extra = sorted(set(heads) - {h.name for h in spec.heads})
    if missing or extra:
        raise ContractError(f"{spec.name}: pack_outputs got missing heads {missing} and unknown heads {extra}")
    if batch is None:
        first = heads[spec.heads[0].name]
        batch = int(np.asarray(first.mu if isinstance(first, MdnOutput) else first).shape[0])
    out = np.zeros((batch, spec.output_width), dtype=np.float32)
    slices = spec.output_slices()
    for head in spec.heads:
        value = heads[head.name]
        if head.kind is HeadKind.MDN:
            if not isinstance(value, MdnOutput):
                raise ContractError(f"head {head.name!r} is an MDN head; give an MdnOutput, got {type(value)}")
            flat = _pack_mdn(head, value, batch)
        else:
            arr = np.asarray(value, dtype=np.float32)
            if arr.shape not in ((batch,) + head.shape, (batch, head.width)):
                raise ContractError(f"head {head.name!r}: logits have shape {arr.shape}, expected "
                                    f"{(batch,) + head.shape}")
            flat = arr.reshape(batch, head.width)
        out[:, slices[head.name]] = flat
    return out


# --- parse ----------------------------------------------------------------------------------------------
def slice_outputs(spec: ModelSpec, flat: np.ndarray) -> dict[str, np.ndarray]:
    """name -> flat[:, slice] for every output slice (pad included), like modeld's slice step."""
    flat = np.asarray(flat)
    if flat.ndim == 1:
        flat = flat[None]
    if flat.ndim != 2 or flat.shape[1] != spec.output_width:
        raise ContractError(f"{spec.name}: output has shape {flat.shape}, expected (B, {spec.output_width})")
    return {name: np.array(flat[:, s], dtype=np.float32) for name, s in spec.output_slices().items()}


def _parse_mdn(head: HeadSpec, raw: np.ndarray, outs: dict[str, np.ndarray]) -> None:
    batch = raw.shape[0]
    hyp = max(head.hypotheses, 1)
    raw = raw.reshape(batch, hyp, -1)  # (B, H, 2n + sel)
    n = (raw.shape[2] - head.selection) // 2
    mu = raw[:, :, :n].copy()
    std = safe_exp(raw[:, :, n:2 * n])
    if head.is_multi_hypothesis:
        weights = softmax(raw[:, :, 2 * n:], axis=1)  # (B, H, sel): softmax over hypotheses
        if head.selection == 1:  # hypotheses sorted by weight, best first
            order = np.argsort(-weights[:, :, 0], axis=1, kind="stable")  # (B, H)
            weights = np.take_along_axis(weights, order[:, :, None], axis=1)
            mu = np.take_along_axis(mu, order[:, :, None], axis=1)
            std = np.take_along_axis(std, order[:, :, None], axis=1)
        outs[head.name + "_weights"] = weights
        outs[head.name + "_hypotheses"] = mu.reshape((batch, hyp) + head.shape)
        outs[head.name + "_stds_hypotheses"] = std.reshape((batch, hyp) + head.shape)
        best = np.argmax(weights, axis=1)  # (B, sel)
        mu = np.take_along_axis(mu, best[:, :, None], axis=1)  # (B, sel, n)
        std = np.take_along_axis(std, best[:, :, None], axis=1)
    shape = head.parsed_shape(batch)
    outs[head.name] = mu.reshape(shape)
    outs[head.name + "_stds"] = std.reshape(shape)


def parse_outputs(spec: ModelSpec, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Parse a flat (B, W) or (W,) output the way modeld does; returns a new dict of float32 arrays."""
    outs = slice_outputs(spec, flat)
    for head in spec.heads:
        raw = outs[head.name]
        if head.kind is HeadKind.MDN:
            _parse_mdn(head, raw, outs)
        elif head.kind is HeadKind.SIGMOID:
            outs[head.name] = sigmoid(raw)
        elif head.kind is HeadKind.SOFTMAX:
            outs[head.name] = softmax(raw.reshape((raw.shape[0],) + head.shape), axis=-1)
    return outs


def is_multi_hypothesis_by_width(width: int, single_values: int) -> bool:
    """modeld's own test: a head is multi-hypothesis iff its width is not 2 x the single-hypothesis values."""
    return width != 2 * single_values
