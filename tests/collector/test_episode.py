"""Tests of collector.builtin.simulation: a whole simulated episode and the truth it hands to the labeller."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import fields, replace
from functools import cache

import numpy as np
import pytest

from sunnypilot_training.collector.builtin.episode_setup import setup_episode
from sunnypilot_training.collector.builtin.expert import late_braking
from sunnypilot_training.collector.builtin.simulation import (
    LINE_OFFSETS_M,
    DrivingWorld,
    SimulatedEpisode,
    simulate_episode,
)
from sunnypilot_training.collector.builtin.vehicle import (
    BRAKE_PRESSED_MPS2,
    DEFAULT_VEHICLE,
    GAS_PRESSED_MPS2,
    RouteFrame,
)
from sunnypilot_training.collector.desire_rules import LANE_CHANGE_MIN_SPEED_MPS
from sunnypilot_training.collector.scenarios import (
    DesireProfile,
    DriverProfile,
    LeadProfile,
    get_scenario,
    scenario_names,
)
from sunnypilot_training.contract.constants import Desire, LaneLine
from sunnypilot_training.driving.suites import SUITES
from sunnypilot_training.errors import ConfigError

CAMERA_AHEAD_OF_REAR_AXLE_M = DEFAULT_VEHICLE.camera_ahead_of_rear_axle_m
FRONT_AHEAD_OF_REAR_AXLE_M = DEFAULT_VEHICLE.front_ahead_of_rear_axle_m
REAR_BEHIND_REAR_AXLE_M = DEFAULT_VEHICLE.rear_behind_rear_axle_m
EGO_WIDTH_M = DEFAULT_VEHICLE.width_m
CAMERA_SAMPLE = int(np.flatnonzero(LINE_OFFSETS_M == 0.0)[0])  # the line sample beside the camera


@cache
def _episode(name: str, seed: int = 0, duration_s: float = 20.0) -> SimulatedEpisode:
    return simulate_episode(name, seed, 0, duration_s)


def _lateral(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(T,) lateral offset (m, right positive) of world points (T, 3) in the car's heading frame."""
    dx, dy = points[:, 0] - pose[:, 0], points[:, 1] - pose[:, 1]
    return -dx * np.sin(pose[:, 5]) + dy * np.cos(pose[:, 5])


def _line_offsets(ep: SimulatedEpisode) -> tuple[np.ndarray, np.ndarray]:
    t = ep.truth
    sample = t.lines_ned[:, :, CAMERA_SAMPLE]  # (T, 4, 3)
    return _lateral(sample[:, LaneLine.LEFT], t.ego_pose_ned), _lateral(sample[:, LaneLine.RIGHT], t.ego_pose_ned)


def _boxes(x, y, yaw, front, rear, half_width) -> np.ndarray:
    """(..., 4, 2) corners of rectangles."""
    c, s = np.cos(yaw), np.sin(yaw)
    corners = [(front, -half_width), (front, half_width), (-rear, half_width), (-rear, -half_width)]
    return np.stack([np.stack([x + a * c - b * s, y + a * s + b * c], -1) for a, b in corners], -2)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Separating-axis test of convex quads (..., 4, 2) -> (...) bool."""
    separated = np.zeros(a.shape[:-2], bool)
    for quad in (a, b):
        for i in range(4):
            edge = quad[..., (i + 1) % 4, :] - quad[..., i, :]
            normal = np.stack([-edge[..., 1], edge[..., 0]], -1)
            pa, pb = np.einsum("...kj,...j->...k", a, normal), np.einsum("...kj,...j->...k", b, normal)
            separated |= (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    return ~separated


def _ego_box(truth) -> np.ndarray:
    pose = truth.ego_pose_ned
    back = CAMERA_AHEAD_OF_REAR_AXLE_M
    x, y = pose[:, 0] - back * np.cos(pose[:, 5]), pose[:, 1] - back * np.sin(pose[:, 5])
    return _boxes(x, y, pose[:, 5], FRONT_AHEAD_OF_REAR_AXLE_M, REAR_BEHIND_REAR_AXLE_M, EGO_WIDTH_M / 2)


def _route_s(ep: SimulatedEpisode) -> np.ndarray:
    """(T,) the camera's arc length along the route, from its pose alone."""
    frame = RouteFrame(ep.network)
    s, out = 100.0, []
    for x, y in ep.truth.ego_pose_ned[:, :2]:
        s, _ = frame.project(float(x), float(y), s)
        out.append(s)
    return np.array(out)


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_gives_a_valid_truth(name: str) -> None:
    ep = _episode(name)
    t = ep.truth
    t.validate()
    assert t.n_frames == 400 and t.dt_s == pytest.approx(0.05)
    assert t.lines_ned.shape[2] == len(LINE_OFFSETS_M) and LINE_OFFSETS_M[-1] >= 220.0 and LINE_OFFSETS_M[0] < 0
    for f in fields(t):
        value = getattr(t, f.name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), f.name
    for name_ in ("left_blinker", "right_blinker", "gas_pressed", "brake_pressed", "engaged", "lines_exist",
                  "others_present"):
        assert getattr(t, name_).dtype == bool
    assert set(np.unique(t.desire)) <= {int(d) for d in Desire}
    assert ep.others_rgb.shape == (t.others_size_m.shape[0], 3) and ep.others_rgb.dtype == np.uint8
    lo, hi = get_scenario(name).camera.height_m
    assert lo <= t.camera_height_m <= hi  # the episode's own mounting height
    boxes = ep.vehicle_boxes(0)
    assert len(boxes) == int(t.others_present[0].sum())
    braking = np.zeros_like(t.others_present)
    braking[1:] = t.others_accel_mps2[:-1] < -1.0  # decelerating over the step before this frame
    k, i = np.argwhere(braking & t.others_present)[0] if (braking & t.others_present).any() else (0, None)
    if i is not None:
        present = np.flatnonzero(t.others_present[k])
        assert ep.vehicle_boxes(int(k))[int(np.flatnonzero(present == i)[0])].brake_lights


def test_same_episode_is_bit_identical_and_seeds_differ() -> None:
    a, b = simulate_episode("urban_intersection", 5, 2, 15.0), simulate_episode("urban_intersection", 5, 2, 15.0)
    for f in fields(a.truth):
        va, vb = getattr(a.truth, f.name), getattr(b.truth, f.name)
        assert np.array_equal(va, vb) if isinstance(va, np.ndarray) else va == vb, f.name
    for ra, rb in zip(a.world.roads, b.world.roads):
        assert np.array_equal(ra.centre_ned, rb.centre_ned) and ra.markings == rb.markings
    assert a.lighting == b.lighting and np.array_equal(a.others_rgb, b.others_rgb)
    c = simulate_episode("urban_intersection", 6, 2, 15.0)
    d = simulate_episode("urban_intersection", 5, 3, 15.0)
    assert not np.array_equal(a.truth.ego_pose_ned, c.truth.ego_pose_ned)
    assert not np.array_equal(a.truth.ego_pose_ned, d.truth.ego_pose_ned)


def _digest(ep: SimulatedEpisode) -> str:
    h = hashlib.sha256()
    for f in fields(ep.truth):
        value = getattr(ep.truth, f.name)
        h.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return h.hexdigest()


def test_episode_is_identical_in_another_process() -> None:
    code = ("import hashlib, dataclasses, numpy as np\n"
            "from sunnypilot_training.collector.builtin.simulation import simulate_episode\n"
            "ep = simulate_episode('curvy_road', 0, 0, 20.0)\n"
            "h = hashlib.sha256()\n"
            "for f in dataclasses.fields(ep.truth):\n"
            "    v = getattr(ep.truth, f.name)\n"
            "    h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode())\n"
            "print(h.hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == _digest(_episode("curvy_road"))


@pytest.mark.parametrize("name", scenario_names())
def test_left_and_right_lines_straddle_the_ego_a_lane_width_apart(name: str) -> None:
    ep = _episode(name)
    y_left, y_right = _line_offsets(ep)
    assert np.all(y_left < 0.0) and np.all(y_right > 0.0)
    width = y_right - y_left
    np.testing.assert_allclose(width, ep.network.layout.lane_width_m, rtol=0.1)


def test_lines_coincide_with_the_painted_markings() -> None:
    ep = _episode("highway_follow")
    road, t = ep.world.road("main"), ep.truth
    s_cam = _route_s(ep)
    marking_offsets = np.array(sorted({m.offset_m for m in road.markings}))
    for k in (0, 150, 399):
        for i in range(4):
            if not t.lines_exist[k, i]:
                continue
            line = t.lines_ned[k, i]  # (K, 3)
            distances = [np.abs(road.point_at(s_cam[k] + LINE_OFFSETS_M, off) - line).max() for off in marking_offsets]
            assert min(distances) < 1e-6  # the line is exactly a painted marking's polyline
    assert t.lines_exist[:, LaneLine.LEFT].all() and t.lines_exist[:, LaneLine.RIGHT].all()


def test_ego_keeps_its_lane_and_recovers_from_perturbations() -> None:
    scenario = replace(get_scenario("curvy_road"),
                       driver=DriverProfile(speed_mps=(14.0, 18.0), perturbations_per_min=(6.0, 6.0),
                                            takeovers_per_min=0.0, wander_m=(0.0, 0.0)))
    ep = simulate_episode(scenario, 1, 0, 40.0)
    y_left, y_right = _line_offsets(ep)
    error = 0.5 * (y_left + y_right)  # (T,) camera offset from the lane centre
    assert (y_left < 0.0).all() and (y_right > 0.0).all()  # the car's centre never leaves its lane
    excursions = np.flatnonzero(np.abs(error) > 0.15)
    assert excursions.size > 0  # the perturbations did push the car off centre
    recovered = np.abs(error) < 0.1
    for k in excursions[excursions < ep.truth.n_frames - 120]:
        assert recovered[k: k + 120].any()  # back near the centre within 6 s


def test_the_expert_wanders_like_a_person() -> None:
    """No perturbations: the lateral offset still spreads by decimetres (a slow random walk about the centre) and
    keeps coming back across it, and the cruise speed changes within the episode."""
    scenario = replace(get_scenario("highway_follow"),
                       driver=DriverProfile(perturbations_per_min=(0.0, 0.0), takeovers_per_min=0.0,
                                            wander_m=(0.15, 0.15), speed_changes_per_min=(3.0, 3.0)),
                       desire=DesireProfile(lane_changes_per_min=(0.0, 0.0)),
                       lead=LeadProfile(behaviours=("none",), weights=(1.0,)))
    ep = simulate_episode(scenario, 2, 0, 60.0)
    y_left, y_right = _line_offsets(ep)
    error = 0.5 * (y_left + y_right)
    assert 0.05 < np.std(error) < 0.3 and np.abs(error).max() < 0.8
    crossings = np.count_nonzero(np.diff(np.sign(error - np.mean(error))) != 0)
    assert crossings >= 4  # wanders to both sides, not a bias
    speed = ep.truth.ego_speed_mps
    assert np.ptp(speed[200:]) > 1.0  # a new cruise speed after the start


def test_lane_change_desire_blinker_and_line_switch() -> None:
    ep = _episode("lane_change")
    t = ep.truth
    changing = np.isin(t.desire, (Desire.LANE_CHANGE_LEFT, Desire.LANE_CHANGE_RIGHT))
    assert changing.sum() * t.dt_s > 2.0  # a stretch of several seconds
    first = int(np.flatnonzero(changing)[0])
    going_left = t.desire[first] == Desire.LANE_CHANGE_LEFT
    blinker = t.left_blinker if going_left else t.right_blinker
    assert blinker[changing & (t.desire == t.desire[first])].all()
    assert blinker[first - 20] and not blinker[0]  # on at least 1 s before the move
    y_left, y_right = _line_offsets(ep)
    end = first + int(np.flatnonzero(~changing[first:])[0])
    switch = first + int(np.flatnonzero(np.abs(np.diff(y_left[first:end])) > 1.0)[0]) + 1
    if going_left:
        assert y_right[switch] == pytest.approx(y_left[switch - 1], abs=0.1)  # the old left line is now right
    else:
        assert y_left[switch] == pytest.approx(y_right[switch - 1], abs=0.1)  # the old right line is now left
    assert abs(y_left[switch]) < 0.5 or abs(y_right[switch]) < 0.5  # the camera is on the line it crossed


def test_stop_and_go_lead_and_ego_stop_and_go_again() -> None:
    ep = _episode("stop_and_go", 0, 30.0)
    t = ep.truth
    ahead = _lateral(t.others_pose_ned[0, :, :3], np.repeat(t.ego_pose_ned[:1], t.others_size_m.shape[0], 0))
    dx = t.others_pose_ned[0, :, 0] - t.ego_pose_ned[0, 0]
    dy = t.others_pose_ned[0, :, 1] - t.ego_pose_ned[0, 1]
    forward = dx * np.cos(t.ego_pose_ned[0, 5]) + dy * np.sin(t.ego_pose_ned[0, 5])
    lead = int(np.argmin(np.where((forward > 0) & (np.abs(ahead) < 1.5), forward, np.inf)))
    for v in (t.others_speed_mps[:, lead], t.ego_speed_mps):
        stops = np.flatnonzero(v < 0.1)
        assert stops.size and v[stops[0]:].max() > 3.0


def test_four_way_stop_ego_stops_at_the_line_then_crosses() -> None:
    ep = _episode("suburban_four_way_stop", 0, 30.0)
    t, j = ep.truth, ep.network.junction
    front = _route_s(ep) + (FRONT_AHEAD_OF_REAR_AXLE_M - CAMERA_AHEAD_OF_REAR_AXLE_M)
    stopped = t.ego_speed_mps < 0.1
    to_line = j.stop_s_m - front
    assert np.any(stopped & (to_line > -0.2) & (to_line < 3.0))
    assert front[-1] > j.stop_s_m + 5.0


def test_junction_turn_sets_turn_desire_with_blinker() -> None:
    for seed in range(6):
        ep = _episode("urban_intersection", seed)
        turn = ep.network.junction.turn
        if turn == "straight":
            continue
        t = ep.truth
        desire = Desire.TURN_LEFT if turn == "left" else Desire.TURN_RIGHT
        blinker = t.left_blinker if turn == "left" else t.right_blinker
        assert np.any(t.desire == desire)
        assert blinker[t.desire == desire].all()
        assert np.all(t.ego_speed_mps[t.desire == desire] < LANE_CHANGE_MIN_SPEED_MPS)
        return
    pytest.fail("no turning episode among the seeds")


@pytest.mark.parametrize("name", scenario_names())
def test_no_collisions_and_bounded_lateral_acceleration(name: str) -> None:
    ep = _episode(name, 1, 30.0)
    t = ep.truth
    size = t.others_size_m
    pose = t.others_pose_ned
    others = _boxes(pose[..., 0], pose[..., 1], pose[..., 5], size[:, 0] / 2, size[:, 0] / 2, size[:, 1] / 2)
    ego = np.broadcast_to(_ego_box(t)[:, None], others.shape)
    assert not np.any(_overlap(ego, others) & t.others_present)
    yaw_rate = np.gradient(np.unwrap(t.ego_pose_ned[:, 5]), t.dt_s)
    assert np.abs(yaw_rate * t.ego_speed_mps).max() < 4.0


def test_pedal_signals_follow_the_commanded_acceleration() -> None:
    t = _episode("stop_and_go", 0, 30.0).truth
    moving = t.ego_speed_mps > 0.5
    assert np.all(t.ego_accel_mps2[t.gas_pressed & moving] > GAS_PRESSED_MPS2 - 1e-9)
    assert np.all(t.ego_accel_mps2[t.brake_pressed & moving] < BRAKE_PRESSED_MPS2 + 1e-9)
    assert t.gas_pressed.any() and t.brake_pressed.any()


def test_takeovers_disengage_and_flag_their_first_frame() -> None:
    scenario = replace(get_scenario("highway_follow"), driver=DriverProfile(takeovers_per_min=2.0))
    events = 0
    for seed in range(3):
        t = simulate_episode(scenario, seed, 0, 40.0).truth
        starts = np.flatnonzero(np.diff(t.engaged.astype(int)) == -1) + 1
        flags = t.gas_disengage | t.brake_disengage | t.steer_override
        assert t.engaged[0] and np.array_equal(np.flatnonzero(flags), starts)
        assert np.all((t.gas_disengage.astype(int) + t.brake_disengage + t.steer_override) <= 1)
        events += starts.size
    assert events >= 1  # the seeded schedule did produce takeovers


def test_an_unseen_look_drives_the_same_episode_under_another_appearance() -> None:
    from sunnypilot_training.collector.builtin.simulation import DrivingWorld

    seen = DrivingWorld("urban_intersection", 5, 2, 6.0)
    unseen = DrivingWorld("urban_intersection_unseen_look", 5, 2, 6.0)
    for world in (seen, unseen):
        while not world.done:
            world.step(world.expert_command())
    a, b = seen.truth(), unseen.truth()
    np.testing.assert_array_equal(a.ego_pose_ned, b.ego_pose_ned)
    np.testing.assert_array_equal(a.others_pose_ned, b.others_pose_ned)
    np.testing.assert_array_equal(a.lines_ned, b.lines_ned)
    assert seen.lighting.asphalt_rgb != unseen.lighting.asphalt_rgb
    assert seen.lighting.noise_std < unseen.lighting.noise_std


def test_late_braking_waits_then_matches_the_need() -> None:
    onset = 1.0
    assert late_braking(0.3, onset) == np.inf  # nothing to brake for
    assert late_braking(-0.7, onset) == np.inf  # a turn far ahead: less than RAMP_FROM of the onset, no braking yet
    assert late_braking(-0.9, onset) == pytest.approx(1.2 * -0.9 * 0.5)  # half way up the ramp
    assert late_braking(-1.0, onset) == pytest.approx(-1.2) and late_braking(-2.0, onset) == pytest.approx(-2.4)
    needs = np.linspace(-0.81, -3.0, 50)  # past the start of the ramp the braking grows with the need
    assert np.all(np.diff([late_braking(n, onset) for n in needs]) < 0)


def test_the_expert_cruises_towards_a_turn_and_brakes_in_the_last_stretch() -> None:
    """With no lead, a junction turn 80 m or more ahead brings no slowing down; within 30 m of it the car brakes.
    (Braking at the need from the first moment asked for about -0.5 m/s^2 from 100 m out, so an urban road meant
    slowing down, turn in sight or not.)"""
    urban = get_scenario("urban_intersection")
    scenario = replace(urban, lead=LeadProfile(behaviours=("none",), weights=(1.0,)),
                       traffic=replace(urban.traffic, density_per_km_lane=(0.0, 0.0)),  # nobody ahead
                       driver=replace(urban.driver, speed_changes_per_min=(0.0, 0.0)))  # no new cruise speeds
    checked = 0
    for seed in range(8):
        world = DrivingWorld(scenario, seed, 0, 20.0)  # as the quick preset: 10 s recorded + 10 s of label tail
        junction = world.network.junction
        if junction.turn == "straight":
            continue
        to_junction, accel = [], []
        while not world.done:
            to_junction.append(junction.s_in_m - world.car.s_cam)
            accel.append(world.car.a)
            world.step(world.expert_command())
        to_junction, accel = np.array(to_junction), np.array(accel)
        far, near = to_junction > 80.0, (to_junction > 0.0) & (to_junction < 30.0)
        if far.sum() < 20 or not near.any():
            continue
        assert accel[far].mean() > -0.05, (seed, accel[far].mean())  # an overshoot of the cruise speed at most
        assert accel[near].min() < -0.8, (seed, accel[near].min())
        checked += 1
    assert checked >= 2


def test_a_slow_start_speeds_up_to_the_cruise_speed_and_leaves_the_other_draws_alone() -> None:
    """With every episode starting slow the car starts at 0.2-0.3 of its cruise speed with nothing ahead and the
    expert speeds up to the cruise speed; the episode's other draws (road, cruise speed) stay those of a normal
    start, and a road test's variant (share 0) starts as before."""
    base = replace(get_scenario("curvy_road"), lead=LeadProfile(behaviours=("none",), weights=(1.0,)),
                   desire=DesireProfile(lane_changes_per_min=(0.0, 0.0)))
    slow = replace(base, driver=replace(base.driver, slow_start_share=1.0, slow_start_factor=(0.2, 0.3),
                                        speed_changes_per_min=(0.0, 0.0), takeovers_per_min=0.0))
    normal = replace(slow, driver=replace(slow.driver, slow_start_share=0.0))
    a, b = simulate_episode(slow, 3, 0, 20.0), simulate_episode(normal, 3, 0, 20.0)
    cruise = setup_episode(slow, 3, 0, 20.0).v_cruise_mps
    assert cruise == setup_episode(normal, 3, 0, 20.0).v_cruise_mps
    speed_a, speed_b = a.truth.ego_speed_mps, b.truth.ego_speed_mps
    assert 0.2 * cruise <= speed_a[0] <= 0.3 * cruise + 1e-6 and speed_b[0] >= 0.85 * cruise - 1e-6
    accel = np.diff(speed_a[:60]) / a.truth.dt_s
    assert accel.mean() > 1.0  # the driver speeds up at once
    assert speed_a[-1] > 0.8 * cruise  # and gets near the cruise speed
    assert a.network.layout == b.network.layout


def test_road_tests_never_start_slow() -> None:
    for suite in SUITES.values():
        for _, scenario, _ in suite.groups:
            assert scenario.driver.slow_start_share == 0.0
    with pytest.raises(ConfigError, match="slow_start_share"):
        DriverProfile(slow_start_share=1.5)
