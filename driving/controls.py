"""openpilot-style controls: a parsed plan -> desired curvature and acceleration, at the actuator delays.

Written from openpilot's ``selfdrive/controls/lib/drive_helpers.py`` and ``selfdrive/modeld/modeld.py`` (read, not
copied): modeld turns the plan into an *action* every 50 ms and the controls carry it out.

* **Acceleration** at the longitudinal action time ``t_long = long_delay_s + long_smooth_s + DT``:
  ``a = 2 (v(t_long) - v(0)) / t_long - a(0)`` from the plan's forward velocity and acceleration (the constant
  acceleration that reaches the plan's speed at ``t_long``), smoothed with a first-order filter of time constant
  ``long_smooth_s``. ``should_stop`` when the plan's speed at ``t_long`` and one second later are both below
  ``v_ego_stopping_mps``; then the car brakes to a standstill and holds it.
* **Curvature** at the lateral action time ``t_lat = lat_delay_s + lat_smooth_s + DT``:
  ``k = 2 psi(t_lat) / (v t_lat) - psi_rate(0) / v`` with psi the plan's yaw (``T_FROM_CURRENT_EULER``) and
  psi_rate the yaw rate (``ORIENTATION_RATE``) at t = 0, ``v >= MIN_SPEED_MPS`` (positive right, like the contract).
  Below ``min_lat_speed_mps`` the curvature is held. Models of profile op-0.10.0 output ``desired_curvature``
  themselves; modeld of those releases steers by it instead of the plan's (``Controls.update(..., curvature=...)``).
* **Limits** (ISO / EU, as openpilot's ``clip_curvature``): the curvature changes no faster than
  ``max_lat_jerk_mps3 / v^2`` per second, lateral acceleration stays within ``max_lat_accel_mps2``, and
  ``|k| <= max_curvature_inv_m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..contract.actions import (
    FORWARD,
    LAT_DELAY_S,
    LAT_SMOOTH_S,
    LONG_DELAY_S,
    LONG_SMOOTH_S,
    MIN_SPEED_MPS,
    accel_action,
    curvature_from_plan,
)
from ..contract.constants import DT_S, T_IDXS, Plan


@dataclass(frozen=True)
class ControlParams:
    """Actuator delays and limits (defaults like a typical car; openpilot adds ``DT`` to each delay)."""

    lat_delay_s: float = LAT_DELAY_S  # steering actuator delay (openpilot: liveDelay's lateralDelay)
    lat_smooth_s: float = LAT_SMOOTH_S
    long_delay_s: float = LONG_DELAY_S  # CarParams.longitudinalActuatorDelay
    long_smooth_s: float = LONG_SMOOTH_S
    v_ego_stopping_mps: float = 0.05
    min_lat_speed_mps: float = 0.3
    max_lat_jerk_mps3: float = 5.0
    max_lat_accel_mps2: float = 3.0
    max_curvature_inv_m: float = 0.2
    stop_decel_mps2: float = -1.5  # braking to a standstill once the plan says stop

    @property
    def lat_action_t(self) -> float:
        return self.lat_delay_s + self.lat_smooth_s + DT_S

    @property
    def long_action_t(self) -> float:
        return self.long_delay_s + self.long_smooth_s + DT_S


def smooth(value: float, previous: float, tau_s: float, dt_s: float = DT_S) -> float:
    """First-order filter step (tau 0: no smoothing)."""
    alpha = 1.0 - math.exp(-dt_s / tau_s) if tau_s > 0 else 1.0
    return alpha * value + (1.0 - alpha) * previous


def accel_from_plan(plan: np.ndarray, action_t: float, v_ego_stopping_mps: float = 0.05) -> tuple[float, bool]:
    """(desired acceleration, should_stop) from one plan (33, 15)."""
    speeds = plan[:, Plan.VELOCITY][:, FORWARD]
    v_target = float(np.interp(action_t, T_IDXS, speeds))
    v_target_1s = float(np.interp(action_t + 1.0, T_IDXS, speeds))
    return float(accel_action(plan, action_t)), bool(v_target < v_ego_stopping_mps and v_target_1s < v_ego_stopping_mps)


def clip_curvature(v_ego_mps: float, previous: float, new: float, params: ControlParams,
                   dt_s: float = DT_S) -> tuple[float, bool]:
    """(curvature within the jerk, lateral-acceleration and curvature limits, whether it was limited)."""
    v = max(v_ego_mps, MIN_SPEED_MPS)
    max_rate = params.max_lat_jerk_mps3 / v ** 2
    k = min(max(new, previous - max_rate * dt_s), previous + max_rate * dt_s)
    k_accel = params.max_lat_accel_mps2 / v ** 2
    clipped = min(max(k, -k_accel), k_accel)
    clipped = min(max(clipped, -params.max_curvature_inv_m), params.max_curvature_inv_m)
    return clipped, clipped != k


@dataclass
class Action:
    curvature_inv_m: float
    accel_mps2: float
    should_stop: bool


class Controls:
    """The action modeld derives from each plan, then the controls' limits; keeps the previous action."""

    def __init__(self, params: ControlParams = ControlParams()):
        self.params = params
        self.previous = Action(0.0, 0.0, False)
        self._accel_smoothed = 0.0  # modeld's desiredAcceleration (before the controls' stopping logic)

    def update(self, plan: np.ndarray, v_ego_mps: float, curvature: float | None = None) -> Action:
        """One 20 Hz update from a parsed plan (33, 15) (or (1, 33, 15)); ``curvature``: the model's own desired
        curvature (op-0.10.0), used instead of the plan's."""
        p = self.params
        plan = np.asarray(plan).reshape(-1, plan.shape[-1])[-33:]
        accel, should_stop = accel_from_plan(plan, p.long_action_t, p.v_ego_stopping_mps)
        accel = self._accel_smoothed = smooth(accel, self._accel_smoothed, p.long_smooth_s)
        if v_ego_mps > p.min_lat_speed_mps:
            wanted = float(curvature_from_plan(plan, v_ego_mps, p.lat_action_t)) if curvature is None else curvature
            curvature = smooth(wanted, self.previous.curvature_inv_m, p.lat_smooth_s)
        else:
            curvature = self.previous.curvature_inv_m
        curvature, _ = clip_curvature(v_ego_mps, self.previous.curvature_inv_m, curvature, p)
        if should_stop:
            accel = min(accel, p.stop_decel_mps2 if v_ego_mps > p.v_ego_stopping_mps else 0.0)
        self.previous = Action(curvature, accel, should_stop)
        return self.previous
