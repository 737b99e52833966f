"""Evaluate exported models (the ONNX files modeld would load) on held-out shards, against the baselines.

The vision ONNX runs on every frame pair of each shard (batch 1, as modeld runs it); its ``hidden_state`` slices
fill the policy's ``features_buffer`` exactly as at run time (contract/inputs.py); the policy ONNX then runs on a
deterministic subset of valid frames. Outputs are parsed with the contract's parser, so what is measured is what
modeld would see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..contract import constants as C
from ..contract import inputs as I
from ..contract.outputs import parse_outputs
from ..contract.profiles import get_profile
from . import metrics as M
from .data import ShardSet, policy_inputs_at

POLICY_EVAL_STRIDE = 4  # every 4th valid frame


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _vision_outputs(session, shards: ShardSet, i: int) -> np.ndarray:
    """(T, W) raw vision outputs for every frame of shard i."""
    rows = []
    for t in range(shards.n_frames(i)):
        feeds = {"img": shards.frame_pair(i, "img", t)[None], "big_img": shards.frame_pair(i, "big_img", t)[None]}
        rows.append(session.run(None, feeds)[0][0])
    return np.stack(rows)


def evaluate_exported(vision_onnx: Path, policy_onnx: Path, shard_paths: list[Path], profile_id: str,
                      progress: bool = False) -> dict[str, Any]:
    """Metrics of the exported pair on ``shard_paths`` (model vs baselines), plus counts."""
    from tqdm import tqdm

    profile = get_profile(profile_id)
    vision, policy = _session(vision_onnx), _session(policy_onnx)
    shards = ShardSet(shard_paths)
    hidden = profile.vision.output_slices()["hidden_state"]
    v_out, v_lab, p_out, p_lab = [], {}, [], {}
    for i in tqdm(range(len(shards)), desc="evaluate", unit="shard", disable=not progress):
        labels = shards.labels[i]
        raw = _vision_outputs(vision, shards, i)  # (T, W)
        valid = np.flatnonzero(labels["valid"])
        v_out.append(raw[valid])
        for key in ("lane_lines", "lane_lines_prob", "lead", "lead_prob"):
            v_lab.setdefault(key, []).append(labels[key][valid])
        feats, pulses = raw[:, hidden], I.desire_rising_edges(labels["desire"])
        for t in valid[::POLICY_EVAL_STRIDE]:
            inputs = policy_inputs_at(profile.policy.input_shapes(), labels, pulses, feats, int(t))
            p_out.append(policy.run(None, {k: v[None] for k, v in inputs.items()})[0][0])
            p_lab.setdefault("plan", []).append(labels["plan"][t])
            p_lab.setdefault("desire", []).append(labels["desire"][t])
    vp = parse_outputs(profile.vision, np.concatenate(v_out))
    vl = {k: np.concatenate(v) for k, v in v_lab.items()}
    pp = parse_outputs(profile.policy, np.stack(p_out))
    plan = np.stack(p_lab["plan"])
    out = M.lane_metrics(vp["lane_lines"], vp["lane_lines_stds"], vl["lane_lines"], vl["lane_lines_prob"])
    out.update(M.lead_metrics(vp["lead"], vp["lead_prob"], vl["lead"], vl["lead_prob"]))
    out.update(M.plan_metrics(pp["plan"], pp["plan_stds"], plan, plan[:, 0, C.Plan.VELOCITY][:, 0]))
    out["desire_state_accuracy"] = M.desire_accuracy(pp["desire_state"], np.stack(p_lab["desire"]))
    out["far_lane_err_m"], out["far_lane_err_m_straight"] = M.vision_lane_distance_error(
        vp["lane_lines"], vl["lane_lines"], vl["lane_lines_prob"], 60.0)
    out.update({"vision_frames": int(sum(len(v) for v in v_out)), "policy_frames": len(p_out),
                "shards": len(shards)})
    return out


def verdicts(metrics: dict[str, float]) -> dict[str, bool]:
    """Does the model beat each baseline (plan ADE vs constant velocity; far lane-line error vs straight lines)?"""
    return {"plan_ade_10s_beats_constant_velocity": metrics["plan_ade_10s"] < metrics["plan_ade_10s_cv"],
            "far_lane_beats_straight_lines": metrics["far_lane_err_m"] < metrics["far_lane_err_m_straight"]}
