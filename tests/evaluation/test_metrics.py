"""Metrics on hand-made predictions whose errors are known."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.contract.constants import T_IDXS, X_IDXS
from sunnypilot_training.evaluation.metrics import (
    action_metrics,
    desire_accuracy,
    lane_metrics,
    lead_metrics,
    plan_errors,
    plan_metrics,
    pose_speed_error,
    vision_lane_distance_error,
)
from sunnypilot_training.evaluation.open_loop import evaluate_exported, summarise, verdicts


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


def _circle(v: float, kappa: float, yaw_rate0: float | None = None) -> np.ndarray:
    """(33, 15) plan on a circle of curvature kappa at speed v (yaw = kappa v t), its yaw rate now given."""
    plan = np.zeros((33, 15))
    plan[:, 0], plan[:, 3], plan[:, 11] = v * T_IDXS, v, kappa * v * T_IDXS
    plan[0, 14] = kappa * v if yaw_rate0 is None else yaw_rate0
    return plan


def test_action_metrics_against_holding_the_current_curvature() -> None:
    v = np.array([10.0, 20.0])
    # the car goes straight now (yaw rate 0) but the road bends at 0.01 1/m: the true action is 2 x 0.01 (catch up
    # the heading by the action time), holding the current curvature (0) misses it by 0.02 v^2
    true = np.stack([_circle(10.0, 0.01, 0.0), _circle(20.0, 0.01, 0.0)])
    out = action_metrics(true.copy(), true, v)
    assert out["action_lat_accel_err_mps2"] == pytest.approx(0.0, abs=1e-9)
    assert out["action_lat_accel_err_mps2_hold"] == pytest.approx(np.mean(0.02 * v ** 2))
    straight = np.stack([_circle(10.0, 0.0), _circle(20.0, 0.0)])
    assert action_metrics(straight, true, v)["action_lat_accel_err_mps2"] == pytest.approx(np.mean(0.02 * v ** 2))
    own = action_metrics(straight, true, v, own_curvature=np.array([0.02, 0.01]))  # op-0.10.0 steers by its own
    assert own["action_lat_accel_err_mps2"] == pytest.approx(np.mean([0.0, 0.01 * 400]))


def test_action_metrics_of_the_longitudinal_action_against_constant_velocity() -> None:
    """The controls' acceleration: truth speeds up at 1 m/s^2 in one plan and holds its speed in the other; a model
    that holds both misses by 1 in one of two (mean 0.5, bias -0.5), as does constant velocity (0 m/s^2)."""
    v = np.array([10.0, 20.0])
    true = np.stack([_circle(10.0, 0.0), _circle(20.0, 0.0)])
    true[0, :, 3] = 10.0 + T_IDXS
    true[0, :, 6] = 1.0
    out = action_metrics(true.copy(), true, v)
    assert out["action_long_accel_err_mps2"] == pytest.approx(0.0, abs=1e-6)
    assert out["action_long_accel_err_mps2_cv"] == pytest.approx(0.5, abs=1e-6)
    held = action_metrics(np.stack([_circle(10.0, 0.0), _circle(20.0, 0.0)]), true, v)
    assert held["action_long_accel_err_mps2"] == pytest.approx(0.5, abs=1e-6)
    assert held["action_long_accel_bias_mps2"] == pytest.approx(-0.5, abs=1e-6)


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


def test_lane_centre_at_the_car_against_saying_the_car_is_centred() -> None:
    """The car 0.4 m right of its lane's centre (the lines 0.4 m further left in the device frame): a model that
    says so has no error, one that says the car is centred misses by 0.4 m, like the baseline; frames without both
    lines painted do not count."""
    true = np.zeros((3, 4, 33, 2))
    true[:, :, :, 0] = np.array([-5.8, -2.2, 1.4, 5.0])[None, :, None]
    prob = np.ones((3, 4))
    out = lane_metrics(true.copy(), np.ones_like(true), true, prob)
    assert out["lane_centre_err_0m"] == pytest.approx(0.0, abs=1e-12)
    assert out["lane_centre_err_0m_centred"] == pytest.approx(0.4)
    centred = true.copy()
    centred[:, :, :, 0] += 0.4
    assert lane_metrics(centred, np.ones_like(true), true, prob)["lane_centre_err_0m"] == pytest.approx(0.4)
    prob[0, 1] = 0.0  # no left line on frame 0: only frames 1 and 2 count
    skewed = true.copy()
    skewed[0, :, :, 0] += 9.0
    assert lane_metrics(skewed, np.ones_like(true), true, prob)["lane_centre_err_0m"] == pytest.approx(0.0, abs=1e-12)
    prob[:, 1] = 0.0
    assert "lane_centre_err_0m" not in lane_metrics(true, np.ones_like(true), true, prob)


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


def test_speed_and_relative_lead_errors() -> None:
    true = np.zeros((2, 33, 15))
    true[:, 0, 3] = [10.0, 20.0]  # forward speed at t = 0
    pred = true.copy()
    pred[:, 0, 3] += [1.0, -3.0]
    assert plan_metrics(pred, np.ones_like(pred), true, true[:, 0, 3])["plan_speed_err_mps"] == pytest.approx(2.0)
    assert pose_speed_error(np.array([[11.0, 0, 0, 0, 0, 0]]), np.array([[10.0, 5, 0, 0, 0, 0]])) == 1.0
    lead = np.zeros((1, 3, 6, 4))
    lead[0, 0, 0, 0] = 40.0
    off = lead.copy()
    off[0, 0, 0, 0] = 46.0
    assert lead_metrics(off, np.ones((1, 3)), lead, np.ones((1, 3)))["lead_x_rel_err"] == pytest.approx(0.15)


def test_summaries_and_quality_bars_over_episodes() -> None:
    """Means and spreads over episodes per scenario; the bars hold only where every part of them holds."""
    def episode(scenario: str, ade5: float, lane30: float, coverage: float) -> dict:
        m = {"plan_ade_2s": 0.5, "plan_ade_2s_cv": 0.5, "plan_ade_5s": ade5, "plan_ade_5s_cv": 10.0,
             "plan_ade_10s": 10.0, "plan_ade_10s_cv": 30.0, "lead_x_rel_err": 0.1, "plan_calibration_1sigma": coverage,
             "lane_left_calibration_1sigma": 0.7, "lane_right_calibration_1sigma": 0.7}
        for side in ("left", "right"):
            for d in (30, 60):
                m[f"lane_{side}_err_{d}m"], m[f"lane_{side}_err_{d}m_straight"] = lane30, 2.0
        return {"shard": f"{scenario}.zarr", "scenario": scenario, **m}

    episodes = [episode("a", 4.0, 1.0, 0.6), episode("a", 6.0, 1.0, 0.7), episode("b", 7.0, 1.0, 0.7)]
    summary = summarise(episodes)
    assert summary["a"]["plan_ade_5s"] == {"mean": 5.0, "std": pytest.approx(np.sqrt(2.0)), "n": 2}
    assert summary["all"]["plan_ade_5s"]["mean"] == pytest.approx(17 / 3) and summary["b"]["plan_ade_5s"]["std"] == 0
    v = verdicts(summary)
    assert all(v.values()), v
    assert not verdicts(summarise([episode("a", 7.5, 1.0, 0.7)]))["plan_ade_5s_beats_constant_velocity_by_30pct"]
    assert not verdicts(summarise([episode("a", 4.0, 1.5, 0.7)]))["lane_lines_beat_straight_lines_by_30pct"]
    assert not verdicts(summarise([episode("a", 4.0, 1.0, 0.9)]))["one_sigma_holds_55_to_80pct"]


def test_exported_models_are_evaluated_per_episode_and_scenario(export_dir, tmp_path) -> None:
    from spt_testutil import write_fake_shard

    shards = [write_fake_shard(tmp_path, name=f"fake_0_{k}.zarr", T=260, seed=k) for k in range(2)]
    result = evaluate_exported(export_dir, shards)
    assert [e["shard"] for e in result["episodes"]] == ["fake_0_0.zarr", "fake_0_1.zarr"]
    assert set(result["summary"]) == {"all", "fake"} and result["summary"]["all"]["plan_ade_5s"]["n"] == 2
    means = [e["plan_ade_5s"] for e in result["episodes"]]
    assert result["summary"]["fake"]["plan_ade_5s"]["mean"] == pytest.approx(np.mean(means))
    assert result["pooled"]["plan_ade_5s"] > 0 and result["policy_frames"] > 0
