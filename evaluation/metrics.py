"""Validation metrics against simple baselines, computed from parsed model outputs (numpy).

* Plan ADE (the error averaged over a uniform time grid up to the horizon) / FDE (m) at 2, 5 and 10 s against a
  constant-velocity baseline (straight ahead at the current speed).
* Lane-line lateral error (m) at 10 / 30 / 60 m for the left and right lines against "straight lines at the
  current offset" (each true line's y at x = 0 held constant).
* Lane centre at the car (m): the middle of the left and right lines at x = 0, against saying the car is centred
  (offset 0) - where the car is in its lane, which a closed loop needs to come back to the centre.
* Lead x / v error at offset 0 where a lead exists (x also relative to the distance); desire accuracy;
  calibration = the fraction of errors within one predicted standard deviation (0.68 for a calibrated Gaussian).
* Lateral action: the curvature modeld would steer by (``contract.actions``: from the plan, or op-0.10.0's own
  ``desired_curvature``) against the one from the true plan, as lateral acceleration (|dk| v^2, m/s^2), against
  holding the car's current curvature (its yaw rate / speed) - what the closed loop needs the model to add.
* Speed: the plan's forward velocity at t = 0 and the vision model's pose velocity against the car's speed (the
  models read speed from the frames: no speed input reaches an op-0.10.1 model).
"""

from __future__ import annotations

import numpy as np

from ..contract.actions import LAT_ACTION_T_S, MIN_SPEED_MPS, YAW, accel_action, curvature_from_plan
from ..contract.constants import IDX_N, T_IDXS, X_IDXS, LaneLine, LeadField, Plan, lane_centre_y

PLAN_HORIZONS_S = (2.0, 5.0, 10.0)
ADE_STEP_S = 0.25  # ADE averages the error over a uniform time grid up to the horizon
LANE_DISTANCES_M = (10.0, 30.0, 60.0)


def _interp_rows(values: np.ndarray, grid: np.ndarray, at: float) -> np.ndarray:
    """Linear interpolation over axis 1 of (N, G, ...) values at ``at`` on ``grid``."""
    j = int(np.clip(np.searchsorted(grid, at), 1, len(grid) - 1))
    w = (at - grid[j - 1]) / (grid[j] - grid[j - 1])
    return values[:, j - 1] * (1 - w) + values[:, j] * w


def constant_velocity_plan(speed_mps: np.ndarray) -> np.ndarray:
    """(N, 33, 3) positions of driving straight at the current speed."""
    pos = np.zeros((len(speed_mps), IDX_N, 3))
    pos[:, :, 0] = speed_mps[:, None] * T_IDXS[None, :]
    return pos


def plan_errors(pred_pos: np.ndarray, true_pos: np.ndarray) -> dict[str, float]:
    """ADE/FDE of (N, 33, 3) position tracks (xy distance) at PLAN_HORIZONS_S."""
    dist = np.linalg.norm(pred_pos[..., :2] - true_pos[..., :2], axis=-1)  # (N, 33)
    out = {}
    for h in PLAN_HORIZONS_S:
        times = np.linspace(0.0, h, int(round(h / ADE_STEP_S)) + 1)  # uniform in time: T_IDXS crowds near 0
        out[f"ade_{h:g}s"] = float(np.mean([_interp_rows(dist, T_IDXS, float(t)) for t in times]))
        out[f"fde_{h:g}s"] = float(_interp_rows(dist, T_IDXS, h).mean())
    return out


def plan_metrics(pred_plan: np.ndarray, pred_std: np.ndarray, true_plan: np.ndarray,
                 speed_mps: np.ndarray) -> dict[str, float]:
    pos = Plan.POSITION
    model = plan_errors(pred_plan[:, :, pos], true_plan[:, :, pos])
    base = plan_errors(constant_velocity_plan(speed_mps), true_plan[:, :, pos])
    out = {f"plan_{k}": v for k, v in model.items()}
    out.update({f"plan_{k}_cv": v for k, v in base.items()})
    err = np.abs(pred_plan[:, 1:, pos] - true_plan[:, 1:, pos])
    out["plan_calibration_1sigma"] = float((err <= pred_std[:, 1:, pos]).mean())
    vel = Plan.VELOCITY.start  # forward velocity
    out["plan_speed_err_mps"] = float(np.abs(pred_plan[:, 0, vel] - true_plan[:, 0, vel]).mean())
    return out


def action_metrics(pred_plan: np.ndarray, true_plan: np.ndarray, speed_mps: np.ndarray,
                   own_curvature: np.ndarray | None = None, action_t: float = LAT_ACTION_T_S) -> dict[str, float]:
    """Lateral action error (m/s^2) of the model (``own_curvature`` (N,) where the model outputs its own, else
    from its plan) and of holding the current curvature, against the true plan's, at the car's speed (N,); the
    longitudinal action's (``accel_action``) error and mean signed error (bias) against the true plan's, and the
    error of constant velocity (0)."""
    v = np.maximum(speed_mps, MIN_SPEED_MPS)
    truth = curvature_from_plan(true_plan, v, action_t)
    model = curvature_from_plan(pred_plan, v, action_t) if own_curvature is None else own_curvature
    hold = true_plan[:, 0, Plan.ORIENTATION_RATE.start + YAW] / v
    long_model, long_truth = accel_action(pred_plan), accel_action(true_plan)
    return {"action_lat_accel_err_mps2": float((np.abs(model - truth) * v ** 2).mean()),
            "action_lat_accel_err_mps2_hold": float((np.abs(hold - truth) * v ** 2).mean()),
            # the controls' acceleration at the harness's default action time; constant velocity asks for 0
            "action_long_accel_err_mps2": float(np.abs(long_model - long_truth).mean()),
            "action_long_accel_err_mps2_cv": float(np.abs(long_truth).mean()),
            "action_long_accel_bias_mps2": float((long_model - long_truth).mean())}


def lane_metrics(pred_lines: np.ndarray, pred_std: np.ndarray, true_lines: np.ndarray,
                 true_prob: np.ndarray) -> dict[str, float]:
    """Errors of the left and right lines (N, 4, 33, 2) where they exist."""
    out = {}
    for name, idx in (("left", LaneLine.LEFT), ("right", LaneLine.RIGHT)):
        mask = true_prob[:, idx] > 0.5
        if not mask.any():
            continue
        p, t, s = pred_lines[mask, idx, :, 0], true_lines[mask, idx, :, 0], pred_std[mask, idx, :, 0]
        straight = np.repeat(t[:, :1], IDX_N, axis=1)
        for d in LANE_DISTANCES_M:
            out[f"lane_{name}_err_{d:g}m"] = float(np.abs(_interp_rows(p, X_IDXS, d) - _interp_rows(t, X_IDXS, d))
                                                   .mean())
            out[f"lane_{name}_err_{d:g}m_straight"] = float(
                np.abs(_interp_rows(straight, X_IDXS, d) - _interp_rows(t, X_IDXS, d)).mean())
        out[f"lane_{name}_calibration_1sigma"] = float((np.abs(p - t) <= s).mean())
    both = (true_prob[:, LaneLine.LEFT] > 0.5) & (true_prob[:, LaneLine.RIGHT] > 0.5)
    if both.any():
        true_centre = lane_centre(true_lines[both], 0.0)
        out["lane_centre_err_0m"] = float(np.abs(lane_centre(pred_lines[both], 0.0) - true_centre).mean())
        out["lane_centre_err_0m_centred"] = float(np.abs(true_centre).mean())
    return out


def lane_centre(lines: np.ndarray, at_m: float) -> np.ndarray:
    """(N,) the middle of the left and right lines about the car (N, 4, 33, 2), y right, ``at_m`` metres ahead."""
    return _interp_rows(lane_centre_y(lines), X_IDXS, at_m)


def lead_metrics(pred_lead: np.ndarray, pred_prob: np.ndarray, true_lead: np.ndarray,
                 true_prob: np.ndarray) -> dict[str, float]:
    """Lead (N, 3, 6, 4) errors at offset 0, time 0 where a lead exists, and lead presence accuracy."""
    out = {"lead_prob_accuracy": float(((pred_prob[:, 0] > 0.5) == (true_prob[:, 0] > 0.5)).mean())}
    mask = true_prob[:, 0] > 0.5
    if mask.any():
        err = np.abs(pred_lead[mask, 0, 0] - true_lead[mask, 0, 0])  # (n, 4)
        out["lead_x_err_m"] = float(err[:, LeadField.X].mean())
        out["lead_x_rel_err"] = float((err[:, LeadField.X] / np.maximum(true_lead[mask, 0, 0, LeadField.X], 1.0))
                                      .mean())
        out["lead_v_err_mps"] = float(err[:, LeadField.V].mean())
    return out


def pose_speed_error(pred_pose: np.ndarray, true_pose: np.ndarray) -> float:
    """Mean |forward velocity error| (m/s) of the vision model's pose (N, 6) against the label."""
    return float(np.abs(pred_pose[:, 0] - true_pose[:, 0]).mean())


def desire_accuracy(pred_probs: np.ndarray, true_onehot: np.ndarray) -> float:
    return float((pred_probs.argmax(-1) == true_onehot.argmax(-1)).mean())


def vision_lane_distance_error(pred_lines: np.ndarray, true_lines: np.ndarray, true_prob: np.ndarray,
                               distance_m: float = 60.0) -> tuple[float, float]:
    """(model, straight-line baseline) mean |y error| at ``distance_m`` over the left and right lines."""
    m = lane_metrics(pred_lines, np.ones_like(pred_lines), true_lines, true_prob)
    keys = [k for k in m if k.endswith(f"_err_{distance_m:g}m")]
    model = float(np.mean([m[k] for k in keys])) if keys else float("nan")
    base = float(np.mean([m[k + "_straight"] for k in keys])) if keys else float("nan")
    return model, base
