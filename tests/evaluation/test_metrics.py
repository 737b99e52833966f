"""Metrics on hand-made predictions whose errors are known."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.contract.constants import T_IDXS, X_IDXS
from sunnypilot_training.evaluation.metrics import (
    desire_accuracy,
    lane_metrics,
    lead_metrics,
    plan_errors,
    plan_metrics,
    vision_lane_distance_error,
)


def test_plan_metrics_perfect_and_constant_velocity() -> None:
    n, v = 4, 10.0
    true = np.zeros((n, 33, 15))
    true[:, :, 0] = v * T_IDXS
    true[:, :, 1] = 0.5 * T_IDXS**2 * 0.2  # drifting right (curving)
    out = plan_metrics(true.copy(), np.full_like(true, 0.1), true, np.full(n, v))
    assert out["plan_ade_10s"] == 0 and out["plan_fde_10s"] == 0
    assert out["plan_fde_10s_cv"] == pytest.approx(0.5 * 100 * 0.2)  # all lateral drift at 10 s
    assert out["plan_fde_5s_cv"] == pytest.approx(0.5 * 25 * 0.2, rel=1e-2)
    assert out["plan_calibration_1sigma"] == 1.0


def test_lane_metrics_straight_baseline_on_a_curve() -> None:
    n = 3
    true = np.zeros((n, 4, 33, 2))
    true[:, :, :, 0] = np.array([-5.4, -1.8, 1.8, 5.4])[None, :, None] + 0.001 * X_IDXS**2
    prob = np.ones((n, 4))
    out = lane_metrics(true.copy(), np.ones_like(true), true, prob)
    assert out["lane_left_err_60m"] == pytest.approx(0.0, abs=1e-9)
    assert out["lane_left_err_60m_straight"] == pytest.approx(0.001 * 3600, rel=2e-2)
    model, base = vision_lane_distance_error(true + 0.5, true, prob)
    assert model == pytest.approx(0.5) and base == pytest.approx(3.6, rel=2e-2)


def test_lead_metrics_and_desire() -> None:
    true = np.zeros((2, 3, 6, 4))
    true[:, 0, 0] = [30.0, 0.0, 20.0, 0.0]
    pred = true.copy()
    pred[:, 0, 0, 0] += 2.0
    out = lead_metrics(pred, np.ones((2, 3)), true, np.array([[1, 1, 1], [0, 0, 0]], float))
    assert out["lead_x_err_m"] == 2.0 and out["lead_v_err_mps"] == 0.0 and out["lead_prob_accuracy"] == 0.5
    assert desire_accuracy(np.eye(8)[[1, 2]], np.eye(8)[[1, 3]]) == 0.5


def test_ade_weights_time_uniformly() -> None:
    """An error that grows linearly in time averages to half its final value over [0, h]."""
    true = np.zeros((1, 33, 15))
    pred = true.copy()
    pred[0, :, 1] = T_IDXS  # 1 m of lateral error per second
    out = plan_errors(pred[:, :, :3], true[:, :, :3])
    assert out["ade_10s"] == pytest.approx(5.0, rel=1e-3) and out["fde_10s"] == pytest.approx(10.0)
