"""Tests of collector.builtin.traffic: IDM following, scripted leads, MOBIL lane changes, junction rules."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sunnypilot_training.collector.builtin.episode_setup import sample_vehicle
from sunnypilot_training.collector.builtin.junction import Approach, JunctionGate
from sunnypilot_training.collector.builtin.traffic import (
    LANE_CHANGE_S,
    Behaviour,
    LeadScript,
    Traffic,
    TrafficPath,
    VehicleSpec,
    idm_accel,
)
from sunnypilot_training.collector.builtin.world import RoadSurface
from sunnypilot_training.collector.scenarios import LeadProfile, TrafficProfile
from sunnypilot_training.errors import ConfigError

DT_S = 0.05
LANE_W_M = 3.6


def _straight_path(length_m: float = 3000.0, heading_rad: float = 0.0) -> TrafficPath:
    s = np.arange(0.0, length_m + 0.5, 0.5)
    centre = np.stack([s * np.cos(heading_rad), s * np.sin(heading_rad), np.zeros_like(s)], axis=1)
    road = RoadSurface("p", centre, s, np.full_like(s, heading_rad), np.zeros_like(s), -0.5, 2 * LANE_W_M + 0.5)
    return TrafficPath(road, np.zeros_like(s))


def _car(s_m: float, d_m: float, v_mps: float, v0_mps: float, **kw) -> VehicleSpec:
    return VehicleSpec(path=kw.pop("path", 0), direction=kw.pop("direction", 1), s_m=s_m, d_m=d_m,
                          speed_mps=v_mps, size_m=(4.5, 1.8, 1.5), rgb=(200, 0, 0), v0_mps=v0_mps, **kw)


def _run(traffic: Traffic, n_frames: int, gate: JunctionGate | None = None) -> None:
    for k in range(n_frames):
        agents = traffic.agents()
        if gate is not None:
            gate.update(k * DT_S, agents)
        traffic.step(k, k * DT_S, agents, gate)


def _gaps(traffic: Traffic, follower: int, leader: int) -> np.ndarray:
    h = traffic.hist
    return h["s"][:, leader] - h["s"][:, follower] - 0.5 * (traffic.size_m[leader, 0] + traffic.size_m[follower, 0])


def test_idm_free_road_and_interaction_terms() -> None:
    a_max = 1.5
    assert idm_accel(10.0, 20.0, np.inf, 0.0, 1.5, 2.0, a_max, 2.0) == pytest.approx(a_max * (1 - 0.5 ** 4))
    assert idm_accel(20.0, 20.0, np.inf, 0.0, 1.5, 2.0, a_max, 2.0) == pytest.approx(0.0)
    assert idm_accel(25.0, 20.0, np.inf, 0.0, 1.5, 2.0, a_max, 2.0) < 0.0
    closing = idm_accel(20.0, 25.0, 15.0, 8.0, 1.5, 2.0, a_max, 2.0)
    assert closing < -2.0  # fast approach to a slow leader brakes hard


@pytest.mark.parametrize("behaviour", ["brakes", "stop_and_go", "cruise"])
def test_a_queue_follows_a_scripted_lead_without_collisions(behaviour: str) -> None:
    rng = np.random.default_rng(3)
    lead = _car(400.0, 1.8, 20.0, 20.0, behaviour=Behaviour.LEAD)
    followers = [_car(400.0 - 30.0 * i, 1.8, 20.0, 25.0) for i in range(1, 10)]
    script = LeadScript(behaviour, LeadProfile(brake_decel_mps2=(5.0, 6.0)), 20.0, rng)
    traffic = Traffic([lead, *followers], [_straight_path()], 1200, DT_S, rng, lead_index=0, lead_script=script)
    _run(traffic, 1200)
    for i in range(traffic.n - 1):
        assert _gaps(traffic, i + 1, i).min() > 0.5
    lead_v = traffic.hist["v"][:, 0]
    if behaviour == "stop_and_go":
        stopped = np.flatnonzero(lead_v < 0.01)
        assert stopped.size and lead_v[stopped[0]:].max() > 5.0  # stops, then goes again
        assert traffic.hist["v"][:, 1].min() < 0.1  # the follower stops too
    if behaviour == "brakes":
        assert traffic.hist["a"][:, 0].min() <= -4.9
    assert np.all(traffic.hist["v"] >= 0.0)


def test_mobil_overtakes_a_slow_leader_with_a_smooth_lateral_move() -> None:
    rng = np.random.default_rng(0)
    lanes = (0.5 * LANE_W_M, 1.5 * LANE_W_M)
    slow = _car(150.0, lanes[0], 10.0, 10.0, behaviour=Behaviour.LEAD)
    fast = _car(100.0, lanes[0], 25.0, 25.0, lc_threshold_mps2=0.2, lanes_m=lanes)
    traffic = Traffic([slow, fast], [_straight_path()], 400, DT_S, rng, lead_index=-1)
    _run(traffic, 400)
    d = traffic.hist["d"][:, 1]
    assert d[-1] == pytest.approx(lanes[1])
    moving = np.flatnonzero(np.abs(np.diff(d)) > 1e-6)
    duration_s = (moving[-1] - moving[0] + 1) * DT_S
    assert LANE_CHANGE_S[0] - 0.1 <= duration_s <= LANE_CHANGE_S[1] + 0.1
    assert np.abs(np.diff(d)).max() < 2.0 * abs(lanes[1] - lanes[0]) / duration_s * DT_S  # no jumps
    passed = traffic.hist["s"][-1, 1] > traffic.hist["s"][-1, 0]
    assert passed


def test_mobil_refuses_a_lane_change_into_a_close_follower() -> None:
    rng = np.random.default_rng(0)
    lanes = (0.5 * LANE_W_M, 1.5 * LANE_W_M)
    slow = _car(140.0, lanes[0], 10.0, 10.0, behaviour=Behaviour.LEAD)
    fast = _car(120.0, lanes[0], 12.0, 25.0, lanes_m=lanes)
    blocker = _car(117.0, lanes[1], 12.0, 12.0, behaviour=Behaviour.LEAD)  # right beside it in the other lane
    traffic = Traffic([slow, fast, blocker], [_straight_path()], 20, DT_S, rng)
    _run(traffic, 20)
    assert np.all(traffic.hist["d"][:, 1] == lanes[0])


def test_all_way_stop_first_come_first_go() -> None:
    rng = np.random.default_rng(0)
    paths = [_straight_path(400.0), _straight_path(400.0, np.pi / 2)]
    box = (190.0, 210.0)
    approaches = {(q, 1): Approach(box[0], box[0], box[1], True) for q in (0, 1)}
    gate = JunctionGate(approaches, "all_way_stop")
    first = _car(150.0, 1.8, 10.0, 10.0, path=0)
    second = _car(120.0, 1.8, 10.0, 10.0, path=1)
    traffic = Traffic([first, second], paths, 900, DT_S, rng)
    _run(traffic, 900, gate)
    h = traffic.hist
    front = h["s"] + 0.5 * traffic.size_m[:, 0]
    for i in range(2):
        stopped = np.flatnonzero(h["v"][:, i] < 0.01)
        assert stopped.size and box[0] - 3.0 < front[stopped[0], i] <= box[0]  # stops at its line
        assert h["s"][-1, i] > box[1] + 10.0  # and crosses afterwards
    inside = (front > box[0]) & (h["s"] - 0.5 * traffic.size_m[:, 0] < box[1])  # (T, 2)
    assert not np.any(inside[:, 0] & inside[:, 1])  # never both in the box
    assert np.flatnonzero(inside[:, 0])[0] < np.flatnonzero(inside[:, 1])[0]  # the first to arrive goes first


def test_priority_junction_yielding_vehicle_waits_for_the_gap() -> None:
    rng = np.random.default_rng(0)
    paths = [_straight_path(600.0), _straight_path(600.0, np.pi / 2)]
    box = (290.0, 310.0)
    approaches = {(0, 1): Approach(box[0], box[0], box[1], False), (1, 1): Approach(box[0], box[0], box[1], True)}
    gate = JunctionGate(approaches, "priority")
    major = _car(150.0, 1.8, 12.0, 12.0, path=0)  # reaches the box after ~12 s
    minor = _car(260.0, 1.8, 8.0, 10.0, path=1)  # at its line first
    traffic = Traffic([major, minor], paths, 800, DT_S, rng)
    _run(traffic, 800, gate)
    h = traffic.hist
    front = h["s"] + 0.5 * traffic.size_m[:, 0]
    assert h["v"][:, 0].min() > 11.0  # the priority vehicle never slows
    entered_minor = np.flatnonzero(front[:, 1] > box[0])[0]
    left_major = np.flatnonzero(h["s"][:, 0] - 0.5 * traffic.size_m[0, 0] > box[1])[0]
    assert entered_minor > left_major  # it waited for the major-road car to pass


def test_sampled_vehicles_vary_in_size_and_colour() -> None:
    rng = np.random.default_rng(0)
    profile = TrafficProfile(truck_fraction=0.2, van_fraction=0.2)
    specs = [sample_vehicle(rng, profile, 20.0, 0, 1, 0.0, 1.8) for _ in range(200)]
    lengths = np.array([s.size_m[0] for s in specs])
    assert lengths.min() >= 4.2 and lengths.max() > 8.0  # cars and trucks
    assert len({s.rgb for s in specs}) >= 8
    assert all(s.v0_mps > 0 for s in specs)


def test_the_stop_and_go_scenario_stops_early_and_the_follow_suite_as_measured() -> None:
    """The stop_and_go training scenario's lead first stops after 0.5-3 s of moving (a 10 s episode records the
    approach and the stop, not only the go); the follow suite keeps its first stop after 4-8 s; the CARLA schedule
    draws its first stop from the same range."""
    from sunnypilot_training.collector.carla_backend.schedule import _lead_events
    from sunnypilot_training.collector.scenarios import get_scenario
    from sunnypilot_training.driving.suites import SUITES

    training = get_scenario("stop_and_go")
    suite = {name: scenario for name, scenario, _ in SUITES["follow"].groups}["stop_and_go"]
    assert training.lead.first_stop_after_s == (0.5, 3.0) and training.lead.go_duration_s == (4.0, 8.0)
    assert suite.lead.first_stop_after_s == (4.0, 8.0)
    assert LeadProfile().first_stop_after_s == LeadProfile().go_duration_s  # unset: as every later stop
    for profile, (lo, hi) in ((training.lead, (0.5, 3.0)), (suite.lead, (4.0, 8.0))):
        for seed in range(20):
            script = LeadScript("stop_and_go", profile, 10.0, np.random.default_rng(seed))
            assert lo <= script.next_event_s <= hi
            first = _lead_events(replace(training, lead=profile), "stop_and_go", 10.0, 60.0, DT_S,
                                 np.random.default_rng(seed))[0]
            assert first[1] == "lead_speed" and first[2] == 0.0 and lo <= first[0] * DT_S <= hi + DT_S
    with pytest.raises(ConfigError, match="first_go_s"):
        LeadProfile(first_go_s=(-1.0, 2.0))
