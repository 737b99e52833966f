"""Labels from hand-made ground truth whose answers follow from geometry, not from the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.collector import labels
from sunnypilot_training.contract.constants import LEAD_T_IDXS, T_IDXS, X_IDXS, LaneLine, LeadField, Meta, Plan
from sunnypilot_training.episodes.schema import LABEL_KEYS

from spt_testutil import make_truth

DT = 0.05


def _track(T=400, v=20.0, d=0.0, s0=0.0):
    """(T, 2) arc length and right offset of a vehicle at constant speed along the reference road."""
    return np.stack([s0 + v * np.arange(T) * DT, np.full(T, d)], axis=1)


def test_straight_plan_and_pose() -> None:
    out = labels.compute_labels(make_truth(_track()))
    plan = out["plan"][0]
    np.testing.assert_allclose(plan[:, Plan.POSITION][:, 0], 20.0 * T_IDXS, atol=1e-3)
    np.testing.assert_allclose(plan[:, Plan.POSITION][:, 1:], 0.0, atol=1e-6)
    np.testing.assert_allclose(plan[:, Plan.VELOCITY], np.tile([20.0, 0, 0], (33, 1)), atol=1e-3)
    np.testing.assert_allclose(out["pose"][10], [20.0, 0, 0, 0, 0, 0], atol=1e-3)


def test_right_turn_signs() -> None:
    v, radius = 15.0, 100.0
    out = labels.compute_labels(make_truth(_track(v=v), radius_m=radius))
    plan = out["plan"][20]
    yaw_rate = v / radius
    np.testing.assert_allclose(plan[:, Plan.ORIENTATION_RATE][:, 2], yaw_rate, rtol=1e-3)
    np.testing.assert_allclose(plan[:, Plan.T_FROM_CURRENT_EULER][:, 2], yaw_rate * T_IDXS, rtol=1e-3,
                               atol=1e-6)
    expected_y = radius * (1 - np.cos(yaw_rate * T_IDXS))  # to the right: positive
    np.testing.assert_allclose(plan[:, Plan.POSITION][:, 1], expected_y, atol=2e-3)
    np.testing.assert_allclose(plan[5:, Plan.ACCELERATION][:, 1], v * v / radius, rtol=1e-2)
    assert out["pose"][20, 5] == pytest.approx(yaw_rate, rel=1e-3)


def test_lane_lines_offsets_and_height() -> None:
    out = labels.compute_labels(make_truth(_track(d=0.3)))
    lanes = out["lane_lines"][30]  # (4, 33, 2)
    expected = np.array([-5.4, -1.8, 1.8, 5.4])[:, None] - 0.3  # ego 0.3 m right of the road's centre line
    np.testing.assert_allclose(lanes[:, :, 0], np.broadcast_to(expected, (4, 33)), atol=1e-6)
    np.testing.assert_allclose(lanes[:, :, 1], 1.22, atol=1e-6)  # road below the camera: z positive
    np.testing.assert_allclose(out["road_edges"][30, :, :, 0], np.broadcast_to([[-7.3], [6.7]], (2, 33)),
                               atol=1e-6)
    assert out["road_transform"][30, 2] == pytest.approx(1.22, abs=1e-5)


def test_lane_lines_on_a_curve_follow_the_arc() -> None:
    radius = 100.0
    out = labels.compute_labels(make_truth(_track(v=15.0), radius_m=radius))
    right = out["lane_lines"][10, LaneLine.RIGHT]  # line 1.8 m right of the path, radius 98.2 m
    x = X_IDXS[X_IDXS < 60]
    r_line = radius - 1.8
    expected_y = radius - np.sqrt(r_line**2 - x**2)  # circle centred at (0, R) in the device frame
    np.testing.assert_allclose(right[: len(x), 0], expected_y, atol=0.05)


def test_uphill_lines_rise_and_road_pitch() -> None:
    grade = 0.04

    def z_fn(s):
        return -grade * s  # rising (z decreasing) all along

    truth = make_truth(_track(), road_z_fn=z_fn)
    truth.ego_pose_ned[:, 4] = np.arctan(grade)  # the car is pitched nose up on the slope
    out = labels.compute_labels(truth)
    lanes = out["lane_lines"][50]
    np.testing.assert_allclose(lanes[:, :, 1], 1.22 * np.cos(np.arctan(grade)), atol=0.02)  # parallel to road
    assert abs(out["road_transform"][50, 4]) < 1e-3  # road plane aligned with the car
    flat = make_truth(_track(), road_z_fn=z_fn)  # car kept level on the slope: road pitches up
    assert labels.compute_labels(flat)["road_transform"][50, 4] == pytest.approx(np.arctan(grade), abs=2e-3)


def test_lead_in_lane_and_not_next_lane() -> None:
    ego = _track(v=20.0)
    lead = _track(v=15.0, s0=40.0)
    beside = _track(v=20.0, d=3.6, s0=20.0)
    out = labels.compute_labels(make_truth(ego, others=[beside, lead]))
    t = 10
    gap = 40.0 + 15.0 * t * DT - 2.3 - 20.0 * t * DT  # rear face minus ego position
    assert out["lead_prob"][t].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(out["lead"][t, 0, 0], [gap, 0.0, 15.0, 0.0], atol=1e-3)
    # trajectory relative to the ego's pose at t: the lead's own motion
    np.testing.assert_allclose(out["lead"][t, 0, :, LeadField.X], gap + 15.0 * LEAD_T_IDXS, atol=1e-3)


def test_lead_offsets_see_a_future_cut_in() -> None:
    T = 400
    ego = _track(T=T, v=20.0)
    cut = _track(T=T, v=20.0, d=3.6, s0=30.0)
    cut[100:, 1] = 0.0  # moves into the ego lane at frame 100
    out = labels.compute_labels(make_truth(ego, others=[cut]))
    t = 80  # 1 s before the cut-in: no lead now, one at +2 s and +4 s
    assert out["lead_prob"][t].tolist() == [0.0, 1.0, 1.0]
    assert np.all(out["lead"][t, 0] == 0)


def test_meta_hard_brake_and_blinkers() -> None:
    T = 400
    speed = np.full(T, 20.0)
    speed[200:] = np.maximum(20.0 - 6.0 * DT * np.arange(T - 200), 0)  # brake at 6 m/s^2 from frame 200
    truth = make_truth(_track(T=T), speed_mps=speed)
    truth.left_blinker[150:170] = True
    meta = labels.compute_labels(truth)["meta"]
    hb5_2s = Meta.HARD_BRAKE_5[0]
    assert meta[170, hb5_2s] == 1 and meta[150, hb5_2s] == 0  # 1.5 s / 2.5 s before the braking
    assert meta[150, Meta.HARD_BRAKE_5[1]] == 1  # within 4 s
    assert meta[150, Meta.HARD_BRAKE_3[0]] == 0 and meta[199, Meta.HARD_BRAKE_3[0]] == 1
    assert meta[155, Meta.LEFT_BLINKER[0]] == 1
    assert meta[115, Meta.LEFT_BLINKER[1]] == 1 and meta[115, Meta.LEFT_BLINKER[2]] == 0
    assert meta[100, Meta.LEFT_BLINKER[0]] == 0
    assert np.all(meta[:, Meta.ENGAGED] == 1)


def test_valid_mask_and_shapes() -> None:
    out = labels.compute_labels(make_truth(_track(T=300)))
    assert out["valid"].sum() == 300 - 200
    assert out["valid"][99] and not out["valid"][100]
    shapes = {"plan": (33, 15), "lane_lines": (4, 33, 2), "lane_lines_prob": (4,), "road_edges": (2, 33, 2),
              "lead": (3, 6, 4), "lead_prob": (3,), "pose": (6,), "road_transform": (6,),
              "wide_from_device_euler": (3,), "desire": (8,), "meta": (55,), "traffic_convention": (2,)}
    for key, shape in shapes.items():
        assert out[key].shape == (300,) + shape, key
        assert out[key].dtype == np.float32
    assert set(out) == set(LABEL_KEYS)
    np.testing.assert_array_equal(out["traffic_convention"][0], [1, 0])


@pytest.mark.parametrize("scenario", ["highway_follow", "urban_intersection", "suburban_four_way_stop", "curvy_road",
                                      "lane_change", "stop_and_go"])
def test_lane_lines_stay_ordered_and_on_a_plausible_road_in_every_scenario(scenario: str) -> None:
    """Through junction turns too: the four lines never cross, the painted ego lane keeps a lane's width near the
    car, and heights stay on a road no steeper than 12 % (the camera above the road at x = 0)."""
    from sunnypilot_training.collector.builtin.simulation import simulate_episode

    episode = simulate_episode(scenario, 3, 0, 30.0)
    out = labels.compute_labels(episode.truth)
    lanes, painted = out["lane_lines"], out["lane_lines_prob"]  # (T, 4, 33, 2), (T, 4)
    y, z = lanes[..., 0], lanes[..., 1]
    assert (np.diff(y, axis=1) >= -1e-4).all()  # far-left <= left <= right <= far-right everywhere
    near = X_IDXS <= 30.0
    both = (painted[:, LaneLine.LEFT] > 0.5) & (painted[:, LaneLine.RIGHT] > 0.5)  # inside a junction: no paint
    width = y[both][:, LaneLine.RIGHT, near] - y[both][:, LaneLine.LEFT, near]  # (T', n)
    assert both.mean() > 0.5 and np.mean((width > 2.5) & (width < 4.5)) > 0.95, np.percentile(width, [1, 50, 99])
    climb = np.abs(z - z[:, :, :1]) - (0.12 * X_IDXS + 0.3)[None, None, :]
    assert (climb <= 0).all(), float(climb.max())
    assert np.allclose(z[:, LaneLine.LEFT, 0], episode.truth.camera_height_m, atol=0.2)
