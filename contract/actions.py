"""How modeld turns a plan into its actions: the lateral one (profiles op-0.10.1 on; op-0.10.0 outputs
``desired_curvature``) and the longitudinal one (every profile).

``k = 2 psi(t) / (v t) - psi_rate(0) / v`` (1/m, positive right like device-frame yaw): psi the plan's yaw
(``T_FROM_CURRENT_EULER``) at the action time ``t`` (lateral actuator delay + smoothing + one frame), psi_rate
the plan's yaw rate (``ORIENTATION_RATE``) at t = 0, v the car's own speed (at least ``MIN_SPEED_MPS``): the
constant curvature that reaches the plan's heading at ``t`` from the yaw rate it has now. Written from the
description of openpilot's ``get_curvature_from_plan``. Pure numpy.

Acceleration: ``a = 2 (v(t) - v(0)) / t - a(0)`` from the plan's forward velocity and acceleration at the
longitudinal action time ``t`` (actuator delay + smoothing + one frame): the constant acceleration that reaches the
plan's speed at ``t`` (``accel_action``; numpy or torch, so training can weigh the action the controls will take).
"""

from __future__ import annotations

import numpy as np

from .constants import DT_S, IDX_N, PLAN_WIDTH, T_IDXS, Plan

MIN_SPEED_MPS = 1.0  # the speed modeld divides by is at least this
YAW = 2  # index of yaw in T_FROM_CURRENT_EULER and ORIENTATION_RATE
FORWARD = 0  # index of x in POSITION, VELOCITY and ACCELERATION
RIGHT = 1  # index of y (right) in POSITION, VELOCITY and ACCELERATION
# the closed-loop harness's default actuators (driving.controls.ControlParams): a steering delay without smoothing,
# a longitudinal delay (CarParams.longitudinalActuatorDelay) with smoothing; each action time adds one frame
LAT_DELAY_S, LAT_SMOOTH_S = 0.1, 0.0
LONG_DELAY_S, LONG_SMOOTH_S = 0.15, 0.3
LAT_ACTION_T_S = LAT_DELAY_S + LAT_SMOOTH_S + DT_S
LONG_ACTION_T_S = LONG_DELAY_S + LONG_SMOOTH_S + DT_S
# pure pursuit's look-ahead, clip(PURSUIT_LOOKAHEAD_S * v + PURSUIT_LOOKAHEAD_M, *PURSUIT_LOOKAHEAD_RANGE_M) metres:
# the built-in expert steers by it, and the policy's lane prior steers by the same
PURSUIT_LOOKAHEAD_S, PURSUIT_LOOKAHEAD_M, PURSUIT_LOOKAHEAD_RANGE_M = 0.6, 2.5, (4.0, 25.0)


def pursuit_lookahead_m(speed_mps):
    """Pure pursuit's look-ahead (m) at ``speed_mps``: a float, a numpy array or a torch tensor (kept a tensor, so
    the policy's exported graph computes it)."""
    look = PURSUIT_LOOKAHEAD_S * speed_mps + PURSUIT_LOOKAHEAD_M
    return look.clamp(*PURSUIT_LOOKAHEAD_RANGE_M) if hasattr(look, "clamp") else \
        np.clip(look, *PURSUIT_LOOKAHEAD_RANGE_M)


def curvature_from_plan(plan: np.ndarray, v_ego_mps: np.ndarray | float, action_t: float) -> np.ndarray:
    """Desired curvature (1/m) from plans (..., 33, 15) and the car's speeds (...) at the action time (s)."""
    plan = np.asarray(plan)
    if plan.shape[-2:] != (IDX_N, PLAN_WIDTH):
        raise ValueError(f"plan has shape {plan.shape}, expected (..., {IDX_N}, {PLAN_WIDTH})")
    psi = _at_time(plan[..., Plan.T_FROM_CURRENT_EULER.start + YAW], action_t)
    psi_rate = plan[..., 0, Plan.ORIENTATION_RATE.start + YAW]
    v = np.maximum(np.asarray(v_ego_mps, dtype=np.float64), MIN_SPEED_MPS)
    return 2.0 * psi / (v * action_t) - psi_rate / v


def accel_action(plan, action_t: float = LONG_ACTION_T_S):
    """The longitudinal action (m/s^2), ``2 (v(t) - v(0)) / t - a(0)`` (module doc), of plans (..., 33, 15): a numpy
    array or a torch tensor (kept one, differentiable) of shape (...)."""
    if tuple(plan.shape[-2:]) != (IDX_N, PLAN_WIDTH):
        raise ValueError(f"plan has shape {tuple(plan.shape)}, expected (..., {IDX_N}, {PLAN_WIDTH})")
    if not 0.0 < action_t <= T_IDXS[-1]:
        raise ValueError(f"action_t={action_t}: expected a time in (0, {T_IDXS[-1]:g}] s")
    speed = plan[..., Plan.VELOCITY.start + FORWARD]  # (..., 33)
    accel_now = plan[..., 0, Plan.ACCELERATION.start + FORWARD]
    return 2.0 * (_at_time(speed, action_t) - speed[..., 0]) / action_t - accel_now


def _at_time(series, t_s: float):
    """(...) a series over T_IDXS (..., 33), numpy or torch, linearly interpolated at the time ``t_s``."""
    j = int(np.clip(np.searchsorted(T_IDXS, t_s), 1, IDX_N - 1))
    w = float((t_s - T_IDXS[j - 1]) / (T_IDXS[j] - T_IDXS[j - 1]))
    return series[..., j - 1] * (1.0 - w) + series[..., j] * w
