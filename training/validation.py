"""Validation of the exported form of the models (their deterministic ``forward``), parsed as modeld parses it."""

from __future__ import annotations

import numpy as np
import torch

from ..contract.constants import Plan
from ..contract.outputs import parse_outputs
from ..contract.profiles import get_profile
from ..evaluation.metrics import desire_accuracy, lane_metrics, lead_metrics, plan_metrics, pose_speed_error
from .data import PolicyDataset, VisionDataset

VAL_MAX_SAMPLES = 256
VAL_BATCH = 32


def _subset(n: int, limit: int) -> np.ndarray:
    """Evenly spaced, deterministic sample indices."""
    return np.unique(np.linspace(0, n - 1, min(n, limit)).astype(np.int64)) if n else np.zeros(0, np.int64)


def _batches(dataset, indices: np.ndarray):
    for start in range(0, len(indices), VAL_BATCH):
        items = [dataset[int(k)] for k in indices[start:start + VAL_BATCH]]
        yield {key: torch.stack([it[key] for it in items]) for key in items[0]}


@torch.no_grad()
def predict_vision(model, dataset: VisionDataset, device: torch.device, limit: int = VAL_MAX_SAMPLES):
    """(parsed outputs, targets) over a deterministic subset of ``dataset``."""
    spec = get_profile(model.profile_id).vision
    model.eval()
    outs, targets = [], []
    for batch in _batches(dataset, _subset(len(dataset), limit)):
        flat = model(batch["img"].to(device), batch["big_img"].to(device)).float().cpu().numpy()
        outs.append(flat)
        targets.append({k: v.numpy() for k, v in batch.items() if k not in ("img", "big_img")})
    flat = np.concatenate(outs)
    target = {k: np.concatenate([t[k] for t in targets]) for k in targets[0]}
    return parse_outputs(spec, flat), target


def vision_metrics(model, dataset: VisionDataset, device: torch.device) -> dict[str, float]:
    if len(dataset) == 0:
        return {}
    parsed, target = predict_vision(model, dataset, device)
    out = lane_metrics(parsed["lane_lines"], parsed["lane_lines_stds"], target["lane_lines"],
                         target["lane_lines_prob"])
    lead_prob = parsed["lead_prob"]
    out.update(lead_metrics(parsed["lead"], lead_prob, target["lead"], target["lead_prob"]))
    out["desire_pred_accuracy_0s"] = desire_accuracy(parsed["desire_pred"][:, 0], target["desire_pred"][:, 0])
    # does the model read the car's speed from frames t-4 and t? against guessing the validation set's mean speed
    out["pose_speed_err_mps"] = pose_speed_error(parsed["pose"], target["pose"])
    out["pose_speed_err_mps_const"] = float(np.abs(target["pose"][:, 0] - target["pose"][:, 0].mean()).mean())
    return out


@torch.no_grad()
def predict_policy(model, dataset: PolicyDataset, device: torch.device, limit: int = VAL_MAX_SAMPLES):
    spec = get_profile(model.profile_id).policy
    model.eval()
    outs, targets = [], []
    for batch in _batches(dataset, _subset(len(dataset), limit)):
        inputs = tuple(x.to(device) for x in model.inputs_from_batch(batch))
        outs.append(model(*inputs).float().cpu().numpy())
        targets.append({k: batch[k].numpy() for k in ("plan", "desire_state")})
    flat = np.concatenate(outs)
    target = {k: np.concatenate([t[k] for t in targets]) for k in targets[0]}
    return parse_outputs(spec, flat), target


def policy_metrics(model, dataset: PolicyDataset, device: torch.device) -> dict[str, float]:
    if len(dataset) == 0:
        return {}
    parsed, target = predict_policy(model, dataset, device)
    speed = target["plan"][:, 0, Plan.VELOCITY][:, 0]  # the car's current speed (what modeld's v_ego is)
    out = plan_metrics(parsed["plan"], parsed["plan_stds"], target["plan"], speed)
    out["desire_state_accuracy"] = desire_accuracy(parsed["desire_state"], target["desire_state"])
    return out
