"""Validation of the exported form of the models (their deterministic ``forward``), parsed as modeld parses it."""

from __future__ import annotations

import numpy as np
import torch

from ..contract.constants import Plan, RoadTransform
from ..contract.outputs import parse_outputs
from ..contract.profiles import get_profile
from ..evaluation.metrics import (
    LANE_DISTANCES_M,
    PLAN_HORIZONS_S,
    action_metrics,
    desire_accuracy,
    lane_centre,
    lane_metrics,
    lead_metrics,
    plan_metrics,
    pose_speed_error,
)
from .data import PolicyDataset, VisionDataset
from .models.policy import FOLLOW_RANGE_M
from .models.vision import (
    LANE_CHANNEL_AT_M,
    LEAD_CHANNEL_RANGE_M,
    bend_curvature,
    lane_channel_index,
    lane_reading_m,
    lead_channel_index,
    lead_channel_targets,
    lead_in_range,
    lead_reading,
)

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
    outs, targets, branch, heights = [], [], [], []
    for batch in _batches(dataset, _subset(len(dataset), limit)):
        flat = model(batch["img"].to(device), batch["big_img"].to(device)).float().cpu().numpy()
        outs.append(flat)
        targets.append({k: v.numpy() for k, v in batch.items() if k not in ("img", "big_img")})
        if getattr(model, "motion", None) is not None:
            speed, height = model.branch_readings(batch["img"].to(device))
            branch.append(speed.float().cpu().numpy())
            if height is not None:
                heights.append(height.float().cpu().numpy())
    flat = np.concatenate(outs)
    target = {k: np.concatenate([t[k] for t in targets]) for k in targets[0]}
    parsed = parse_outputs(spec, flat)
    if branch:  # the motion branch's own speed reading (not an output of the exported model)
        parsed["motion_speed"] = np.concatenate(branch)
    if heights:
        parsed["motion_height"] = np.concatenate(heights)
    if getattr(model, "lane_channel", False):  # lane_channel's reading of the lane centre, as hidden_state carries it
        parsed["lane_position"] = lane_reading_m(parsed["hidden_state"], lane_channel_index(model.speed_channel))
    if getattr(model, "lead_channel", False):  # lead_channel's reading of the lead, as hidden_state carries it
        index = lead_channel_index(model.speed_channel, model.lane_channel)
        parsed["lead_gap"] = np.stack(lead_reading(parsed["hidden_state"], index), axis=-1)
    return parsed, target


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
    if "motion_speed" in parsed:
        out["motion_speed_err_mps"] = float(np.abs(parsed["motion_speed"] - target["pose"][:, 0]).mean())
    if "motion_height" in parsed:  # and the camera height it multiplies the volume's reading by
        height = target["road_transform"][:, RoadTransform.HEIGHT]
        out["motion_height_err_m"] = float(np.abs(parsed["motion_height"] - height).mean())
    if "lane_position" in parsed:  # where the car is in its lane, against saying it is centred
        true = np.stack([lane_centre(target["lane_lines"], at_m) for at_m in LANE_CHANNEL_AT_M], -1)  # (N, readings)
        for j, at_m in enumerate(LANE_CHANNEL_AT_M):
            out[f"lane_position_err_{at_m:g}m"] = float(np.abs(parsed["lane_position"][:, j] - true[:, j]).mean())
            out[f"lane_position_err_{at_m:g}m_centred"] = float(np.abs(true[:, j]).mean())
        out.update(bend_metrics(parsed["lane_position"], true))
    if "lead_gap" in parsed:
        out.update(lead_gap_metrics(parsed["lead_gap"], target["lead"], target["lead_prob"], target["pose"][:, 0]))
    return out


def lead_gap_metrics(reading: np.ndarray, lead: np.ndarray, lead_prob: np.ndarray, speed_mps: np.ndarray
                     ) -> dict[str, float]:
    """How well the lead channel's readings (N, 2) (gap m, the lead's speed less the car's m/s) say the lead the
    channel is trained on (:func:`lead_channel_targets`; lead labels (N, 3, 6, 4), lead_prob (N, 3), the car's speed
    (N,) m/s): on frames with such a lead, the gap's error relative to the gap and the relative speed's error (m/s),
    each against saying the road is clear (range, 0); on frames without, the share read as a lead the follow prior
    brakes for (nearer than FOLLOW_RANGE_M)."""
    t = lead_channel_targets(torch.from_numpy(lead), torch.from_numpy(lead_prob), torch.from_numpy(speed_mps))
    true_gap, true_rel = lead_reading(t.numpy(), 0)
    near = lead_in_range(lead, lead_prob)
    out = {}
    if near.any():
        out["lead_gap_rel_err"] = float((np.abs(reading[near, 0] - true_gap[near]) / true_gap[near].clip(1.0)).mean())
        clear = (LEAD_CHANNEL_RANGE_M - true_gap[near]) / true_gap[near].clip(1.0)
        out["lead_gap_rel_err_clear"] = float(clear.mean())
        out["lead_speed_err_mps"] = float(np.abs(reading[near, 1] - true_rel[near]).mean())
        out["lead_speed_err_mps_clear"] = float(np.abs(true_rel[near]).mean())
    if (~near).any():
        out["lead_phantom_share"] = float((reading[~near, 0] < FOLLOW_RANGE_M).mean())
    return out


BEND_MIN_PER_M = 1.0 / 250.0  # a frame is on a bend where the labelled centre's curvature is at least this


def bend_metrics(reading_m: np.ndarray, true_m: np.ndarray) -> dict[str, float]:
    """How well the lane channel's readings (N, readings) m say the bend ahead (:func:`bend_curvature`, what
    policy.curve_speed slows for) against the labelled centre's (N, readings) m: the mean absolute error (1/m)
    against saying straight, and on bends (|k| >= BEND_MIN_PER_M) the share of the curvature read (1: all of it,
    0: none; a model that reads bends short brakes for them too late)."""
    read, true = bend_curvature(reading_m), bend_curvature(true_m)
    out = {"lane_bend_err_per_m": float(np.abs(read - true).mean()),
           "lane_bend_err_per_m_straight": float(np.abs(true).mean())}
    bend = np.abs(true) >= BEND_MIN_PER_M
    if bend.any():
        out["lane_bend_read_share"] = float((read[bend] * np.sign(true[bend])).sum() / np.abs(true[bend]).sum())
    return out


@torch.no_grad()
def predict_policy(model, dataset: PolicyDataset, device: torch.device, limit: int = VAL_MAX_SAMPLES):
    spec = get_profile(model.profile_id).policy
    model.eval()
    outs, targets = [], []
    shift_gen = torch.Generator().manual_seed(0)
    for batch in _batches(dataset, _subset(len(dataset), limit)):
        inputs = tuple(x.to(device) for x in model.inputs_from_batch(batch))
        if getattr(model, "curvature_prior", False):  # the fed-back history as training sees it (a fixed draw)
            inputs = model.shift_fed_back_curvature(inputs, shift_gen)
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
    own = parsed["desired_curvature"][:, 0] if "desired_curvature" in parsed else None  # op-0.10.0 steers by it
    out.update(action_metrics(parsed["plan"], target["plan"], speed, own))  # what the controls would do
    out["desire_state_accuracy"] = desire_accuracy(parsed["desire_state"], target["desire_state"])
    return out


# Epoch selection (training.select_epoch=best): the stage keeps the epoch whose validation is best. Scores are
# means of the model's error over the baseline's on the same frames, so horizons and parts of different size
# weigh alike; lower is better.
# The policy's adds the controls' actions: the plan drives through them, and its longitudinal one (the acceleration
# at 0.5 s) can worsen over epochs while ADE up to 10 s improves.
POLICY_SELECTION = tuple((f"plan_ade_{h:g}s", f"plan_ade_{h:g}s_cv") for h in PLAN_HORIZONS_S) + (
    ("action_long_accel_err_mps2", "action_long_accel_err_mps2_cv"),
    ("action_lat_accel_err_mps2", "action_lat_accel_err_mps2_hold"))
VISION_SELECTION = (("pose_speed_err_mps", "pose_speed_err_mps_const"),) + tuple(
    (f"lane_{side}_err_{d:g}m", f"lane_{side}_err_{d:g}m_straight") for side in ("left", "right")
    for d in LANE_DISTANCES_M)
SELECTION = {"vision": VISION_SELECTION, "policy": POLICY_SELECTION}
SELECTION_FLOOR = 0.1  # m or m/s: a baseline error below it counts as it (a perfect baseline makes no ratio)


def selection_score(stage: str, metrics: dict[str, float], prefix: str = "") -> float | None:
    """Mean of model error / baseline error over the stage's selection pairs (``prefix`` + name in ``metrics``);
    None where none of them was measured."""
    ratios = []
    for model_key, base_key in SELECTION[stage]:
        model, base = metrics.get(prefix + model_key), metrics.get(prefix + base_key)
        if model is not None and base is not None and np.isfinite(model) and np.isfinite(base):
            ratios.append(model / max(base, SELECTION_FLOOR))
    return float(np.mean(ratios)) if ratios else None


def selection_scores(history: list[dict], stage: str) -> dict[int, float]:
    """epoch -> selection score of every record of ``stage`` in ``history`` (metrics records, ``val_`` keys)."""
    scores = {record["epoch"]: selection_score(stage, record, "val_") for record in history
              if record.get("stage") == stage}
    return {epoch: score for epoch, score in scores.items() if score is not None}


def best_epoch(scores: dict[int, float]) -> int | None:
    """The epoch with the lowest score, the earlier one on a tie; None without scores."""
    return min(scores, key=lambda epoch: (scores[epoch], epoch)) if scores else None
