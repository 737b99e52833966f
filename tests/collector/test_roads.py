"""Tests of collector.builtin.roads: centreline geometry (clothoids, radii, grade) and junction networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sunnypilot_training.collector.builtin.roads import DS_M, STUB_M, RoadNetwork, build_network
from sunnypilot_training.collector.builtin.world import MarkingStyle
from sunnypilot_training.collector.scenarios import get_scenario

LENGTH_M = 2500.0


def _network(name: str, seed: int, junction_s_m: float | None = None) -> RoadNetwork:
    scenario = get_scenario(name)
    return build_network(scenario, np.random.default_rng([seed, scenario.stable_id]), LENGTH_M, junction_s_m)


def _measured_curvature(road) -> tuple[np.ndarray, np.ndarray]:
    """Curvature (1/m) from the sampled points alone, at the midpoints between sample-pair midpoints."""
    d = np.diff(road.centre_ned[:, :2], axis=0)
    heading = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    ds = np.hypot(d[:, 0], d[:, 1])
    s_mid = road.s_m[:-1] + 0.5 * ds
    return 0.5 * (s_mid[1:] + s_mid[:-1]), np.diff(heading) / (0.5 * (ds[1:] + ds[:-1]))


def _holds(knots: np.ndarray) -> list[tuple[float, float, float]]:
    """(s0, s1, curvature) of every constant-curvature arc among the knots."""
    return [(a[0], b[0], a[1]) for a, b in zip(knots[:-1], knots[1:]) if a[1] == b[1] and a[1] != 0.0]


@pytest.mark.parametrize("name", ["highway_follow", "curvy_road", "lane_change", "stop_and_go"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_centreline_follows_the_intended_curvature_profile(name: str, seed: int) -> None:
    net = _network(name, seed)
    s, k_measured = _measured_curvature(net.route)
    k_intended = net.route_curvature(s)
    assert np.abs(k_measured - k_intended).max() < 2e-4
    assert net.route.length_m >= LENGTH_M - DS_M


@pytest.mark.parametrize("name", ["highway_follow", "curvy_road"])
def test_arc_radii_are_within_the_scenario_range(name: str) -> None:
    r_min, r_max = get_scenario(name).road.radius_m
    arcs = 0
    for seed in range(4):
        net = _network(name, seed)
        s, k_measured = _measured_curvature(net.route)
        for s0, s1, kappa in _holds(net.curvature_knots):
            assert r_min * 0.999 <= 1.0 / abs(kappa) <= r_max * 1.001
            inner = (s > s0 + 1.0) & (s < s1 - 1.0)
            np.testing.assert_allclose(k_measured[inner], kappa, rtol=0.01)
            arcs += 1
    assert arcs >= 4  # the check saw real arcs


def test_highway_radii_are_several_hundred_metres_and_curvy_roads_are_tight() -> None:
    for seed in range(3):
        _, k_highway = _measured_curvature(_network("highway_follow", seed).route)
        assert np.abs(k_highway).max() <= 1.0 / 400.0 * 1.01
    tightest = max(np.abs(_measured_curvature(_network("curvy_road", seed).route)[1]).max() for seed in range(3))
    assert tightest > 1.0 / 250.0


@pytest.mark.parametrize("name", ["curvy_road", "urban_intersection"])
def test_heading_is_continuous_no_kinks(name: str) -> None:
    net = _network(name, 0, junction_s_m=300.0)
    d = np.diff(net.route.centre_ned[:, :2], axis=0)
    heading = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    k_max = np.abs(net.curvature_knots[:, 1]).max()
    assert np.abs(np.diff(heading)).max() <= k_max * DS_M * 1.01 + 1e-9
    # the stored tangent heading agrees with the points
    difference = net.route.heading_rad[1:-1] - 0.5 * (heading[1:] + heading[:-1])
    assert np.abs(np.angle(np.exp(1j * difference))).max() < 2e-3


def test_grade_is_smooth_bounded_and_integrates_to_z() -> None:
    net = _network("curvy_road", 1)
    route = net.route
    g_max = max(abs(x) for x in get_scenario("curvy_road").road.grade)
    assert np.abs(np.tan(route.grade_rad)).max() <= g_max + 1e-9
    assert np.abs(np.diff(route.grade_rad)).max() < 1e-3  # no steps in the grade
    rise = -np.diff(route.centre_ned[:, 2])  # z is down
    np.testing.assert_allclose(rise / DS_M, np.tan(0.5 * (route.grade_rad[1:] + route.grade_rad[:-1])), atol=1e-4)


def test_lanes_and_markings_of_a_divided_highway() -> None:
    net = _network("highway_follow", 0)
    road, layout = net.world.road("main"), net.layout
    offsets = sorted(m.offset_m for m in road.markings)
    w = layout.lane_width_m
    np.testing.assert_allclose(offsets, [j * w for j in range(layout.n_forward + 1)])
    styles = {round(m.offset_m / w): m.style for m in road.markings}
    assert styles[0] == MarkingStyle.SOLID and styles[layout.n_forward] == MarkingStyle.SOLID
    assert all(styles[j] == MarkingStyle.DASHED for j in range(1, layout.n_forward))
    assert road.left_edge_m == pytest.approx(-layout.shoulder_m)
    assert road.right_edge_m == pytest.approx(layout.n_forward * w + layout.shoulder_m)


@pytest.mark.parametrize("seed", range(6))
def test_junction_network_pieces_line_up(seed: int) -> None:
    net = _network("suburban_four_way_stop", seed, junction_s_m=300.0)
    j, route, world = net.junction, net.route, net.world
    assert {r.name for r in world.roads} >= {"main", "connector", "junction"}
    assert len(world.stop_lines) == 4  # an all-way stop: every approach
    assert j.stop_s_m == pytest.approx(300.0, abs=1.0)
    # the connector is the route between s_in and s_out and is unmarked
    conn = world.road("connector")
    assert conn.markings == []
    np.testing.assert_allclose(conn.centre_ned[0], route.point_at(j.s_in_m), atol=1e-9)
    np.testing.assert_allclose(conn.centre_ned[-1], route.point_at(j.s_out_m), atol=1e-9)
    # markings of the main road stop at the stop line
    main = world.road("main")
    assert min(m.s_end_m for m in main.markings) == pytest.approx(j.stop_s_m)
    # after the junction, the world road that carries the route has the route's points
    after = np.linspace(j.s_out_m + 5.0, j.s_out_m + 300.0, 50)
    carrier = world.road("main" if j.turn == "straight" else "exit")
    s_carrier = after - j.s_out_m + (j.half_size_m - 1.0 + STUB_M if j.turn != "straight" else j.s_out_m)
    np.testing.assert_allclose(carrier.point_at(s_carrier, 1.7), route.point_at(after, 1.7), atol=1e-3)
    # a turn leaves 90 degrees from the approach heading, a straight crossing road is perpendicular
    h_in, h_out = np.interp([j.s_in_m, j.s_out_m], route.s_m, np.unwrap(route.heading_rad))
    expected = {"left": -math.pi / 2, "straight": 0.0, "right": math.pi / 2}[j.turn]
    assert h_out - h_in == pytest.approx(expected, abs=1e-6)


def test_turn_paths_stay_inside_the_junction_patch() -> None:
    for seed in range(6):
        net = _network("urban_intersection", seed, junction_s_m=250.0)
        j, layout = net.junction, net.layout
        s = np.linspace(j.s_in_m, j.s_out_m, 60)
        h_in = float(np.interp(j.s_in_m, net.route.s_m, net.route.heading_rad))
        axes = np.array([[math.cos(h_in), math.sin(h_in)], [-math.sin(h_in), math.cos(h_in)]])  # patch frame
        for k in range(layout.n_forward):
            path = net.route.point_at(s, float(layout.forward_centre_m(k)))
            local = (path[:, :2] - j.centre_ned[:2]) @ axes.T  # (60, 2) along, across the patch
            assert np.abs(local).max() <= j.half_size_m + 1e-6
