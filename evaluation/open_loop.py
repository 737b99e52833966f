"""Evaluate exported models (the files modeld would load) on held-out shards, against the baselines.

Each shard is driven through :class:`~.model_runner.ModeldState` frame by frame, as modeld runs at 20 Hz: the vision
model on every frame pair, its ``hidden_state`` into the ``features_buffer`` history, the recorded desire as pulses;
the policy is evaluated on a deterministic subset of valid frames. Outputs are parsed with the contract's parser,
so what is measured is what modeld would see.
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
from .metrics import desire_accuracy, lane_metrics, lead_metrics, plan_metrics, vision_lane_distance_error
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
    vision_raw, policy_t, policy_raw = [], [], []
    for start in range(0, T, READ_BLOCK_FRAMES):
        block = np.arange(start, min(start + READ_BLOCK_FRAMES, T))
        road, wide = read_frames(shard, "img", block), read_frames(shard, "big_img", block)
        for j, t in enumerate(block):
            step = state.step(road[j], wide[j], int(desire[t]), float(labels["ego_speed"][t]),
                              run_policy=int(t) in policy_frames)
            vision_raw.append(step.vision_raw)
            if step.policy_raw is not None:
                policy_t.append(int(t))
                policy_raw.append(step.policy_raw)
    return labels, np.stack(vision_raw), policy_t, policy_raw


def evaluate_exported(export_dir: str | os.PathLike, shard_paths: list[Path], runtime: str = "onnxruntime",
                      progress: bool = False) -> dict[str, Any]:
    """Metrics of an export folder's models on ``shard_paths`` (model vs baselines), plus counts."""
    models = ExportedModels.load(export_dir, runtime)
    profile = models.profile
    v_out, v_lab, p_out, p_lab = [], {}, [], {}
    for path in tqdm(shard_paths, desc="evaluate", unit="shard", disable=not progress):
        labels, raw, policy_t, policy_raw = _drive_recorded(models, path)
        valid = np.flatnonzero(labels["valid"])
        v_out.append(raw[valid])
        for key in ("lane_lines", "lane_lines_prob", "lead", "lead_prob"):
            v_lab.setdefault(key, []).append(labels[key][valid])
        p_out += policy_raw
        p_lab.setdefault("plan", []).append(labels["plan"][policy_t])
        p_lab.setdefault("desire", []).append(labels["desire"][policy_t])
    vp = parse_outputs(profile.vision, np.concatenate(v_out))
    vl = {k: np.concatenate(v) for k, v in v_lab.items()}
    pp = parse_outputs(profile.policy, np.stack(p_out))
    plan = np.concatenate(p_lab["plan"])
    out = lane_metrics(vp["lane_lines"], vp["lane_lines_stds"], vl["lane_lines"], vl["lane_lines_prob"])
    out.update(lead_metrics(vp["lead"], vp["lead_prob"], vl["lead"], vl["lead_prob"]))
    out.update(plan_metrics(pp["plan"], pp["plan_stds"], plan, plan[:, 0, Plan.VELOCITY][:, 0]))
    out["desire_state_accuracy"] = desire_accuracy(pp["desire_state"], np.concatenate(p_lab["desire"]))
    out["far_lane_err_m"], out["far_lane_err_m_straight"] = vision_lane_distance_error(
        vp["lane_lines"], vl["lane_lines"], vl["lane_lines_prob"], 60.0)
    out.update({"vision_frames": int(sum(len(v) for v in v_out)), "policy_frames": len(p_out),
                "shards": len(shard_paths), "profile": profile.id, "runtime": runtime})
    return out


def verdicts(metrics: dict[str, float]) -> dict[str, bool]:
    """Does the model beat each baseline (plan ADE vs constant velocity; far lane-line error vs straight lines)?"""
    return {"plan_ade_10s_beats_constant_velocity": metrics["plan_ade_10s"] < metrics["plan_ade_10s_cv"],
            "far_lane_beats_straight_lines": metrics["far_lane_err_m"] < metrics["far_lane_err_m_straight"]}
