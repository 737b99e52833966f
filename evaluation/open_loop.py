"""Evaluate exported models (the files modeld would load) on held-out shards, against the baselines.

Each shard is driven through :class:`~.model_runner.ModeldState` frame by frame, as modeld runs at 20 Hz: the vision
model on every frame pair, its ``hidden_state`` into the ``features_buffer`` history, the recorded desire as pulses;
the policy is evaluated on a deterministic subset of valid frames (it runs on every frame where modeld feeds its own
``desired_curvature`` back, op-0.10.0, so that history is the model's own, as in a car). Outputs are parsed with
the contract's parser, so what is measured is what modeld would see.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..contract.constants import Plan
from ..contract.outputs import parse_outputs
from ..episodes.shards import open_shard, read_frames, read_labels
from .metrics import (
    action_metrics,
    desire_accuracy,
    lane_metrics,
    lead_metrics,
    plan_metrics,
    pose_speed_error,
    vision_lane_distance_error,
)
from .model_runner import ExportedModels, ModeldState

POLICY_EVAL_STRIDE = 4  # every 4th valid frame
READ_BLOCK_FRAMES = 40


def _drive_recorded(models: ExportedModels, path: Path) -> tuple[dict, np.ndarray, list, list]:
    """(labels, raw vision outputs (T, W), policy frames, raw policy outputs) of one shard."""
    shard = open_shard(path)
    labels = read_labels(shard)
    T = shard.n_frames
    policy_frames = set(np.flatnonzero(labels["valid"])[::POLICY_EVAL_STRIDE].tolist())
    desire = labels["desire"].argmax(axis=1)
    state = ModeldState(models, labels["traffic_convention"][0])
    every_frame = any(i.name == "prev_desired_curv" for i in models.profile.policy.inputs)
    vision_raw, policy_t, policy_raw = [], [], []
    for start in range(0, T, READ_BLOCK_FRAMES):
        block = np.arange(start, min(start + READ_BLOCK_FRAMES, T))
        road, wide = read_frames(shard, "img", block), read_frames(shard, "big_img", block)
        for j, t in enumerate(block):
            step = state.step(road[j], wide[j], int(desire[t]), float(labels["ego_speed"][t]),
                              run_policy=every_frame or int(t) in policy_frames)
            vision_raw.append(step.vision_raw)
            if step.policy_raw is not None and int(t) in policy_frames:
                policy_t.append(int(t))
                policy_raw.append(step.policy_raw)
    return labels, np.stack(vision_raw), policy_t, policy_raw


def _metrics(profile, labels: dict[str, np.ndarray], vision_raw: np.ndarray, policy_raw: list[np.ndarray],
             policy_t: list[int]) -> dict[str, float]:
    """Every metric of one set of frames: vision outputs at the valid frames, policy outputs at ``policy_t``."""
    valid = np.flatnonzero(labels["valid"])
    vp = parse_outputs(profile.vision, vision_raw[valid])
    out = lane_metrics(vp["lane_lines"], vp["lane_lines_stds"], labels["lane_lines"][valid],
                       labels["lane_lines_prob"][valid])
    out.update(lead_metrics(vp["lead"], vp["lead_prob"], labels["lead"][valid], labels["lead_prob"][valid]))
    out["pose_speed_err_mps"] = pose_speed_error(vp["pose"], labels["pose"][valid])
    out["far_lane_err_m"], out["far_lane_err_m_straight"] = vision_lane_distance_error(
        vp["lane_lines"], labels["lane_lines"][valid], labels["lane_lines_prob"][valid], 60.0)
    if policy_raw:
        pp = parse_outputs(profile.policy, np.stack(policy_raw))
        plan = labels["plan"][policy_t]
        speed = plan[:, 0, Plan.VELOCITY][:, 0]
        out.update(plan_metrics(pp["plan"], pp["plan_stds"], plan, speed))
        own = pp["desired_curvature"][:, 0] if "desired_curvature" in pp else None  # op-0.10.0 steers by its own
        out.update(action_metrics(pp["plan"], plan, speed, own))
        out["desire_state_accuracy"] = desire_accuracy(pp["desire_state"], labels["desire"][policy_t])
    return out


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def evaluate_exported(export_dir: str | os.PathLike, shard_paths: list[Path], runtime: str = "onnxruntime",
                      progress: bool = False) -> dict[str, Any]:
    """Metrics of an export folder's models on ``shard_paths`` (model vs baselines): per episode, summarised per
    scenario and over all episodes (mean, std, count: :func:`summarise`), and pooled over every frame."""
    return evaluate_models(ExportedModels.load(export_dir, runtime), shard_paths, progress)


def evaluate_models(models: ExportedModels, shard_paths: list[Path], progress: bool = False) -> dict[str, Any]:
    """:func:`evaluate_exported` for loaded models (any callables with the exported models' interface)."""
    profile, runtime = models.profile, getattr(models.vision, "runtime", "?")
    episodes, pooled_labels, pooled_vision, pooled_policy, pooled_t = [], [], [], [], []
    offset = 0
    for path in tqdm(shard_paths, desc="evaluate", unit="shard", disable=not progress):
        labels, raw, policy_t, policy_raw = _drive_recorded(models, path)
        metrics = _metrics(profile, labels, raw, policy_raw, policy_t)
        episodes.append({"shard": Path(path).name, "scenario": str(open_shard(path).attrs.get("scenario")),
                         "frames": int(labels["valid"].sum()), **metrics})
        keys = ("valid", "lane_lines", "lane_lines_prob", "lead", "lead_prob", "pose", "plan", "desire")
        pooled_labels.append({k: labels[k] for k in keys})
        pooled_vision.append(raw)
        pooled_policy += policy_raw
        pooled_t += [offset + t for t in policy_t]
        offset += len(labels["valid"])
    pooled = _metrics(profile, _concat(pooled_labels), np.concatenate(pooled_vision), pooled_policy, pooled_t)
    return {"pooled": pooled, "episodes": episodes, "summary": summarise(episodes), "shards": len(shard_paths),
            "profile": profile.id, "runtime": runtime, "vision_frames": int(sum(e["frames"] for e in episodes)),
            "policy_frames": len(pooled_policy)}


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def summarise(episodes: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per scenario and over all episodes (key "all"): each metric's mean, std (over episodes) and episode count
    (episodes without a lead or a painted line do not count for those metrics)."""
    groups: dict[str, list[dict[str, Any]]] = {"all": episodes}
    for e in episodes:
        groups.setdefault(e["scenario"], []).append(e)
    out = {}
    for name, members in groups.items():
        keys = sorted({k for e in members for k, v in e.items() if isinstance(v, float)})
        out[name] = {k: _stats([e[k] for e in members if k in e]) for k in keys}
    return out


# The quality bars (over all held-out episodes): the plan beats constant velocity (given the true speed) by 30 % at
# 5 and 10 s and is no worse at 2 s; lane lines beat straight lines by 30 % at 30 and 60 m; the lead's distance is
# within 15 %; one predicted std holds 55-80 % of the plan's and the lane lines' errors.
IMPROVEMENT = 0.3


def verdicts(summary: dict[str, dict[str, dict[str, float]]], group: str = "all") -> dict[str, bool]:
    """Each quality bar (above) on the episode means of ``group``."""
    m = {k: v["mean"] for k, v in summary[group].items()}

    def beats(model: str, base: str, by: float) -> bool:
        return bool(m.get(model, np.inf) <= (1.0 - by) * m.get(base, -np.inf))

    lanes = [(f"lane_{s}_err_{d}m", f"lane_{s}_err_{d}m_straight") for s in ("left", "right") for d in (30, 60)]
    coverage = [m.get(k, np.nan) for k in ("plan_calibration_1sigma", "lane_left_calibration_1sigma",
                                            "lane_right_calibration_1sigma")]
    return {
        "plan_ade_2s_no_worse_than_constant_velocity": beats("plan_ade_2s", "plan_ade_2s_cv", 0.0),
        "plan_ade_5s_beats_constant_velocity_by_30pct": beats("plan_ade_5s", "plan_ade_5s_cv", IMPROVEMENT),
        "plan_ade_10s_beats_constant_velocity_by_30pct": beats("plan_ade_10s", "plan_ade_10s_cv", IMPROVEMENT),
        "lane_lines_beat_straight_lines_by_30pct": all(beats(a, b, IMPROVEMENT) for a, b in lanes),
        "lead_distance_within_15pct": bool(m.get("lead_x_rel_err", np.inf) <= 0.15),
        "one_sigma_holds_55_to_80pct": all(0.55 <= c <= 0.8 for c in coverage),
    }
