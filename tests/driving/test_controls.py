"""openpilot-style controls and the lane-change desire helper, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sunnypilot_training.contract.actions import LAT_ACTION_T_S, LONG_ACTION_T_S, accel_action
from sunnypilot_training.contract.constants import DT_S, T_IDXS, Desire, Plan
from sunnypilot_training.driving.controls import (
    ControlParams,
    Controls,
    accel_from_plan,
    clip_curvature,
    curvature_from_plan,
    smooth,
)
from sunnypilot_training.driving.desire import FINISHING, OFF, PRE, STARTING, DesireHelper


def _plan(speed_mps, accel_mps2=0.0, yaw_rad=None, yaw_rate0=0.0) -> np.ndarray:
    plan = np.zeros((33, 15), np.float32)
    plan[:, Plan.VELOCITY.start] = speed_mps
    plan[:, Plan.ACCELERATION.start] = accel_mps2
    if yaw_rad is not None:
        plan[:, Plan.T_FROM_CURRENT_EULER.start + 2] = yaw_rad
    plan[0, Plan.ORIENTATION_RATE.start + 2] = yaw_rate0
    return plan


def test_accel_reaches_the_plans_speed_at_the_action_time() -> None:
    # v(t) = 10 + 2 t, a(0) = 2: at t = 0.5 s, v = 11 -> 2 (11 - 10) / 0.5 - 2 = 2
    accel, stop = accel_from_plan(_plan(10.0 + 2.0 * T_IDXS, 2.0), 0.5)
    assert accel == pytest.approx(2.0, abs=1e-4) and not stop
    # v(t) = 10 - 1 t with a(0) = 0: 2 (9.5 - 10) / 0.5 - 0 = -2
    accel, _ = accel_from_plan(_plan(10.0 - T_IDXS, 0.0), 0.5)
    assert accel == pytest.approx(-2.0, abs=1e-4)


def test_the_contracts_accel_action_is_the_controls_on_numpy_and_torch_batches() -> None:
    """Training weighs the acceleration the controls take (contract.actions.accel_action): the same number as the
    controls' for each plan of a batch, as numpy or torch, at the harness's default action time."""
    assert ControlParams().long_action_t == pytest.approx(LONG_ACTION_T_S)
    rng = np.random.default_rng(0)
    plans = np.stack([_plan(v + a * T_IDXS + rng.normal(0, 0.3, 33), a0) for v, a, a0 in
                      rng.uniform([5.0, -2.0, -1.0], [30.0, 2.0, 1.0], (6, 3))])
    expected = [accel_from_plan(p, LONG_ACTION_T_S)[0] for p in plans]
    np.testing.assert_allclose(accel_action(plans), expected, rtol=1e-5, atol=1e-5)
    as_torch = accel_action(torch.from_numpy(plans).requires_grad_())
    assert as_torch.requires_grad and as_torch.shape == (6,)
    np.testing.assert_allclose(as_torch.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 33, 15\)"):
        accel_action(plans[:, :10])
    with pytest.raises(ValueError, match="action_t=0"):
        accel_action(plans, 0.0)


def test_should_stop_needs_both_speeds_below_the_stopping_speed() -> None:
    assert accel_from_plan(_plan(np.full(33, 0.01)), 0.5)[1]
    late = np.where(T_IDXS < 1.2, 0.01, 3.0)  # slow now, moving again one second after the action time
    assert not accel_from_plan(_plan(late), 0.5)[1]


@pytest.mark.parametrize(("speed_mps", "kappa"), [(20.0, 0.01), (8.0, -0.05)])
def test_curvature_of_a_circle(speed_mps: float, kappa: float) -> None:
    # on a circle the yaw grows as kappa v t and the yaw rate is kappa v: 2 kappa v t / (v t) - kappa v / v = kappa
    plan = _plan(speed_mps, yaw_rad=kappa * speed_mps * T_IDXS, yaw_rate0=kappa * speed_mps)
    assert curvature_from_plan(plan, speed_mps, 0.15) == pytest.approx(kappa, rel=1e-5)
    # a yaw rate already too high now asks for less: 2 * kappa - 2 kappa = 0
    plan = _plan(speed_mps, yaw_rad=kappa * speed_mps * T_IDXS, yaw_rate0=2 * kappa * speed_mps)
    assert curvature_from_plan(plan, speed_mps, 0.15) == pytest.approx(0.0, abs=1e-6)


def test_curvature_limits() -> None:
    params = ControlParams()
    # jerk: at 20 m/s the curvature may change by 5 / 400 = 0.0125 1/m per second -> 0.000625 per 50 ms
    k, limited = clip_curvature(20.0, 0.0, 0.01, params)
    assert k == pytest.approx(0.000625) and not limited  # the jerk limit is not reported (as openpilot)
    # lateral acceleration: at 30 m/s at most 3 / 900 1/m
    k, limited = clip_curvature(30.0, 0.00333, 0.01, params)
    assert k == pytest.approx(3.0 / 900.0) and limited
    # at walking pace the curvature limit 0.2 1/m applies
    k, limited = clip_curvature(1.0, 0.2, 0.5, params)
    assert k == pytest.approx(0.2) and limited


def test_smoothing_is_a_first_order_filter() -> None:
    assert smooth(1.0, 0.0, 0.3) == pytest.approx(1.0 - math.exp(-DT_S / 0.3))
    assert smooth(1.0, 0.0, 0.0) == 1.0


def test_controls_hold_the_curvature_at_standstill_and_brake_to_stop() -> None:
    controls = Controls(ControlParams(long_smooth_s=0.0))
    plan = _plan(10.0, yaw_rad=0.01 * 10.0 * T_IDXS, yaw_rate0=0.1)
    first = controls.update(plan, 10.0)
    assert first.curvature_inv_m == pytest.approx(clip_curvature(10.0, 0.0, 0.01, ControlParams())[0])
    held = controls.update(_plan(0.0), 0.1)  # below min_lat_speed: the curvature is held
    assert held.curvature_inv_m == first.curvature_inv_m
    assert held.should_stop and held.accel_mps2 <= ControlParams().stop_decel_mps2


def test_a_models_own_curvature_replaces_the_plans() -> None:
    params = ControlParams(max_lat_jerk_mps3=1e9)  # no jerk limit: the value itself comes out
    plan = _plan(10.0, yaw_rad=0.01 * 10.0 * T_IDXS, yaw_rate0=0.1)  # the plan asks for 0.01 1/m
    assert Controls(params).update(plan, 10.0).curvature_inv_m == pytest.approx(0.01, rel=1e-4)
    assert Controls(params).update(plan, 10.0, curvature=-0.004).curvature_inv_m == pytest.approx(-0.004)


def test_lane_change_waits_for_the_model_to_say_it_is_done() -> None:
    helper = DesireHelper()
    helper.update(True, False, 25.0, 0.0)  # blinker on: pre
    assert helper.state == PRE and helper.desire == Desire.NONE
    helper.update(True, False, 25.0, 0.9)  # the driver nudges: starting, desire laneChangeLeft
    assert helper.state == STARTING and helper.desire == Desire.LANE_CHANGE_LEFT
    for _ in range(40):  # the model still says "changing lanes": it keeps going
        helper.update(True, False, 25.0, 0.9)
    assert helper.state == STARTING
    steps = 0
    while helper.state == STARTING:
        helper.update(False, False, 25.0, 0.0)
        steps += 1
    assert steps == 1 and helper.state == FINISHING and helper.desire == Desire.LANE_CHANGE_LEFT
    for _ in range(int(1.0 / DT_S) + 1):  # lane lines fade back in over 1 s
        helper.update(False, False, 25.0, 0.0)
    assert helper.state == OFF and helper.desire == Desire.NONE


def test_no_lane_change_below_the_speed_and_none_longer_than_ten_seconds() -> None:
    slow = DesireHelper()
    for _ in range(10):
        slow.update(False, True, 5.0, 0.0)
    assert slow.state == OFF
    stuck = DesireHelper()
    for _ in range(int(10.0 / DT_S) + 5):
        stuck.update(False, True, 25.0, 0.9)  # the model never finishes
    assert stuck.state == OFF


def test_the_harness_steers_at_the_action_time_the_evaluation_measures() -> None:
    assert ControlParams().lat_action_t == pytest.approx(LAT_ACTION_T_S)
    plans = np.stack([_plan(10.0, yaw_rad=k * 10.0 * T_IDXS, yaw_rate0=k * 10.0) for k in (0.01, -0.02)])
    both = curvature_from_plan(plans, np.array([10.0, 10.0]), 0.15)  # one call for many plans
    assert both == pytest.approx([0.01, -0.02], rel=1e-5)
