"""Calibrating the models' stds on validation data, baked into the exported graph.

A model's stds are fitted on its own training frames, where its errors are smallest; on other episodes they are
too small. After training, each head's ``std_scale`` buffer (ones until then) is set per output element to the
68.27th percentile of the absolute standardised validation errors ``|target - mu| / std`` of the uncalibrated
model, so one std of the calibrated model holds 68 % of its errors on episodes it never trained on. For Gaussian
errors that is their RMS; the errors are heavier-tailed than that (a few episodes whose speed is misread), and
scaling by the RMS made one std hold about 0.8 of them. Elements seen fewer than ``MIN_SAMPLES`` times (a lane
line that is rarely painted) take the head's overall factor. The buffers multiply the std inside the graph, so
modeld reads calibrated stds.

Calibrate on the validation split only; the held-out test episodes that a report shows stay untouched.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .models.blocks import DiffusionHead, MdnHead, RegressionHead
from .models.policy import PolicyModel
from .models.vision import LeadMhpHead, VisionModel
from .validation import predict_policy, predict_vision

MIN_SAMPLES = 20
ONE_SIGMA = 0.6827  # the share of a Gaussian within one std: what one calibrated std holds on validation
SCALE_RANGE = (0.05, 50.0)
CALIBRATION_SAMPLES = 2048  # validation frames used (evenly spaced)
CALIBRATED_HEADS = (DiffusionHead, MdnHead, RegressionHead)


def scale_factors(z: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-element calibration factors (shape z.shape[1:]) from standardised errors z (N, ...): the ONE_SIGMA
    quantile of |z| over the samples where ``mask`` (broadcastable to z) is set; elements with too few samples
    take the quantile over all elements' samples."""
    keep = np.ones(z.shape, bool) if mask is None else np.broadcast_to(mask, z.shape)
    size = np.abs(np.asarray(z, np.float64))
    count = keep.sum(axis=0)
    overall = np.quantile(size[keep], ONE_SIGMA) if keep.any() else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an element without samples: all-NaN, replaced below
        per = np.nanquantile(np.where(keep, size, np.nan), ONE_SIGMA, axis=0)
    per = np.where(count >= MIN_SAMPLES, per, overall)
    return np.clip(np.nan_to_num(per, nan=1.0, posinf=SCALE_RANGE[1]), *SCALE_RANGE)


def _reset(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, CALIBRATED_HEADS):
            module.std_scale.fill_(1.0)


def _set(head: torch.nn.Module, factors: np.ndarray) -> dict[str, float]:
    head.std_scale.copy_(torch.as_tensor(factors, dtype=head.std_scale.dtype).reshape(head.std_scale.shape))
    return {"median": float(np.median(factors)), "min": float(factors.min()), "max": float(factors.max())}


def _z(parsed: dict[str, np.ndarray], name: str, target: np.ndarray) -> np.ndarray:
    return (np.asarray(target, np.float64) - parsed[name]) / np.maximum(parsed[name + "_stds"], 1e-9)


@torch.no_grad()
def calibrate_vision(model: VisionModel, dataset, device: torch.device,
                     limit: int = CALIBRATION_SAMPLES) -> dict[str, Any]:
    """Set the vision model's std_scale buffers from ``dataset`` (a VisionDataset of validation shards)."""
    _reset(model)
    parsed, target = predict_vision(model, dataset, device, limit)
    report = {}
    masks = {"lane_lines": target["lane_lines_prob"][:, :, None, None] > 0.5,
             "lead": target["lead_prob"][:, :, None, None] > 0.5}
    for name, head in {**model.trajectory_heads, **model.mdn_heads}.items():
        if isinstance(head, LeadMhpHead) or (name == "lead" and model.lead_hyp > 1) or name + "_stds" not in parsed:
            continue  # op-0.10.0's lead hypotheses keep their own spread
        z = _z(parsed, name, target[name])
        report[name] = _set(head, scale_factors(z, masks.get(name)))
    return report


@torch.no_grad()
def calibrate_policy(model: PolicyModel, dataset, device: torch.device,
                     limit: int = CALIBRATION_SAMPLES) -> dict[str, Any]:
    """Set the plan head's std_scale from ``dataset`` (a PolicyDataset of validation shards)."""
    _reset(model)
    parsed, target = predict_policy(model, dataset, device, limit)
    return {"plan": _set(model.plan_head, scale_factors(_z(parsed, "plan", target["plan"])))}
