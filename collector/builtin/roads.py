"""Procedural road networks: the ego's route, the painted carriageways and an optional junction.

Frames (see ``world.py``): world NED, x north, y east, z down; heading 0 = north, positive turns right
(east); a lateral offset ``d`` is measured to the right of a road's reference line. Arc length ``s`` is the
*horizontal* arc length of the reference line (grades are at most a few percent). Curvature is positive to
the right (the contract's sign).

The ego's **route** is one reference line sampled every ``DS_M`` (uniform grid), built from pieces whose
curvature is piecewise linear in ``s``: arcs and straights joined by clothoids; heading = integral of
curvature, position = integral of (cos h, sin h), ``z = -integral of tan(grade)``. Its reference line is the
line between the two directions of traffic (or the median-side edge of a divided road), and the lanes lie at
constant offsets along it (:class:`LaneLayout`), so lane boundaries at ``j * lane_width`` follow the route
through a junction's connector too. The world's roads are pieces of the route with identical samples
(``main``, ``exit``), straight crossing roads and stubs, an unmarked ``connector`` (the ego's path through
the junction) and a square ``junction`` patch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..scenarios import RoadProfile, Scenario, sample_range
from .world import Marking, MarkingColor, MarkingStyle, RoadSurface, StopLine, World

DS_M = 0.5  # route sample spacing
TURN_CLOTHOID_M = 4.0  # clothoid at each end of a junction turn
APPROACH_STRAIGHT_M = (60.0, 90.0)  # straight before and after a junction
STUB_M = 150.0  # length of the crossing road's arms beyond the junction centre
CROSS_HALF_M = 220.0  # half length of a straight crossing road
STOP_LINE_SETBACK_M = 1.0  # stop line before the start of the junction box's turn path
TURNS = ("left", "straight", "right")


@dataclass(frozen=True)
class LaneLayout:
    """Lanes at constant offsets from a reference line; boundaries at ``j * lane_width_m``.

    ``side`` = +1 (right-hand traffic): the ego's (forward) lanes are right of the reference line (d > 0) and
    the oncoming lanes left of it; -1 (left-hand traffic) mirrors that. Forward lane ``k`` counts from the
    leftmost forward lane; oncoming lane ``j`` from the reference line outwards.
    """

    lane_width_m: float
    n_forward: int
    n_oncoming: int
    side: int
    shoulder_m: float

    @property
    def forward_bounds(self) -> tuple[int, int]:
        """Boundary indices (lo, hi) of the forward carriageway."""
        return (0, self.n_forward) if self.side > 0 else (-self.n_forward, 0)

    @property
    def boundary_bounds(self) -> tuple[int, int]:
        """Boundary indices (lo, hi) of the whole road, left to right."""
        return (-self.n_oncoming, self.n_forward) if self.side > 0 else (-self.n_forward, self.n_oncoming)

    def forward_centre_m(self, k):
        return (self.forward_bounds[0] + np.asarray(k) + 0.5) * self.lane_width_m

    def oncoming_centre_m(self, j):
        return -self.side * (np.asarray(j) + 0.5) * self.lane_width_m

    def forward_lane(self, d_m: float) -> int:
        """Forward lane index under lateral offset ``d_m`` (clamped to the forward carriageway)."""
        k = math.floor(d_m / self.lane_width_m) - self.forward_bounds[0]
        return min(max(k, 0), self.n_forward - 1)

    def d_range(self, forward: bool) -> tuple[float, float]:
        lo, hi = self.forward_bounds if forward else ((-self.n_oncoming, 0) if self.side > 0 else (0, self.n_oncoming))
        return lo * self.lane_width_m, hi * self.lane_width_m

    @property
    def left_edge_m(self) -> float:
        return self.boundary_bounds[0] * self.lane_width_m - self.shoulder_m

    @property
    def right_edge_m(self) -> float:
        return self.boundary_bounds[1] * self.lane_width_m + self.shoulder_m

    @property
    def lane_centres_m(self) -> tuple[float, ...]:
        lo, hi = self.boundary_bounds
        return tuple((j + 0.5) * self.lane_width_m for j in range(lo, hi))


@dataclass(frozen=True)
class PaintStyle:
    centre_style: str  # line between the directions (two-way roads)
    median_edge_color: str  # median-side edge of a divided road
    dash_m: float
    gap_m: float
    width_m: float


def boundary_marking(layout: LaneLayout, paint: PaintStyle, j: int) -> tuple[MarkingStyle, MarkingColor] | None:
    """Style and colour of boundary ``j`` (None when nothing is painted there)."""
    lo, hi = layout.boundary_bounds
    if not lo <= j <= hi:
        return None
    if j == 0 and layout.n_oncoming > 0:
        return MarkingStyle(paint.centre_style), MarkingColor.YELLOW
    if j == 0:
        return MarkingStyle.SOLID, MarkingColor(paint.median_edge_color)
    if j in (lo, hi):
        return MarkingStyle.SOLID, MarkingColor.WHITE
    return MarkingStyle.DASHED, MarkingColor.WHITE


def layout_markings(layout: LaneLayout, paint: PaintStyle, painted: list[tuple[float, float]]) -> list[Marking]:
    """Markings of every boundary over each painted ``(s_start, s_end)`` interval."""
    out = []
    lo, hi = layout.boundary_bounds
    for j in range(lo, hi + 1):
        style, color = boundary_marking(layout, paint, j)
        for s0, s1 in painted:
            out.append(Marking(offset_m=j * layout.lane_width_m, style=style, color=color, width_m=paint.width_m,
                               dash_m=paint.dash_m, gap_m=paint.gap_m, s_start_m=s0, s_end_m=s1))
    return out


@dataclass
class JunctionPlan:
    """Where the route crosses a junction, in route arc length, and the box every approach must clear."""

    kind: str  # "priority" (the route has right of way) or "all_way_stop"
    turn: str  # the ego's manoeuvre: one of TURNS
    s_in_m: float  # start of the connector (the turn path)
    s_out_m: float  # end of the connector
    centre_ned: np.ndarray  # (3,) where the two roads' reference lines cross
    half_size_m: float  # the junction box spans +-half_size_m around the centre along each road

    @property
    def stop_s_m(self) -> float:
        """Stop line of the route's forward approach."""
        return self.s_in_m - STOP_LINE_SETBACK_M

    @property
    def oncoming_stop_s_m(self) -> float:
        """Stop line of the route's oncoming approach (traffic travelling towards -s)."""
        return self.s_out_m + STOP_LINE_SETBACK_M


@dataclass
class RoadNetwork:
    world: World
    route: RoadSurface  # the ego's route on a uniform DS_M grid
    curvature_knots: np.ndarray  # (K, 2) s_m, curvature 1/m of the route (piecewise linear between knots)
    layout: LaneLayout
    paint: PaintStyle
    junction: JunctionPlan | None = None
    cross: RoadSurface | None = None  # straight crossing road travelled by cross traffic (straight-through)
    arms: list[tuple[RoadSurface, int, float]] = field(default_factory=list)  # (road, direction, stop s) queues

    def route_curvature(self, s_m) -> np.ndarray:
        """Intended curvature (1/m) of the route's reference line at ``s_m``."""
        return np.interp(s_m, self.curvature_knots[:, 0], self.curvature_knots[:, 1])


def _round_ds(x: float) -> float:
    return max(DS_M, round(x / DS_M) * DS_M)


def _limit_arc(h: float, kappa: float, k_new: float, lt: float, seg: float, road: RoadProfile,
               limit: float) -> tuple[float, float]:
    """Curvature and length of the next arc so the heading stays within +-limit (flip or shorten it)."""
    if h * k_new > 0 and abs(h) > 0.3 * limit:
        k_new = -k_new
    h1 = h + 0.5 * (kappa + k_new) * lt
    room = (limit - abs(h1) if h1 * k_new >= 0 else limit + abs(h1)) - 0.5 * abs(k_new) * road.transition_length_m[1]
    max_len = min(room / abs(k_new), (math.pi / 2) / abs(k_new))
    if max_len < road.segment_length_m[0]:
        return 0.0, seg
    return k_new, min(seg, math.floor(max_len / DS_M) * DS_M)


def _free_knots(road: RoadProfile, rng: np.random.Generator, length_m: float, limit_rad: float) -> list:
    """Curvature knots (s, kappa) of a random piece that starts and ends straight (kappa = 0)."""
    knots = [(0.0, 0.0)]
    s = h = kappa = 0.0
    lt_close = _round_ds(road.transition_length_m[1])
    while True:
        lt = _round_ds(sample_range(rng, road.transition_length_m))
        seg = _round_ds(sample_range(rng, road.segment_length_m))
        radius = sample_range(rng, road.radius_m)
        straight = rng.random() < road.straight_prob
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if s + lt + seg + lt_close > length_m:
            break
        k_new, seg = (0.0, seg) if straight else _limit_arc(h, kappa, sign / radius, lt, seg, road, limit_rad)
        h += 0.5 * (kappa + k_new) * lt + k_new * seg
        knots += [(s + lt, k_new), (s + lt + seg, k_new)]
        s, kappa = s + lt + seg, k_new
    if kappa != 0.0 and s < length_m:
        s = min(s + lt_close, length_m)
        knots.append((s, 0.0))
    if s < length_m:
        knots.append((length_m, 0.0))
    return knots


def _concat_knots(pieces: list[list]) -> np.ndarray:
    """(K, 2) knots of consecutive pieces, each given relative to its own start."""
    out, s0 = [], 0.0
    for piece in pieces:
        out += [(s0 + s, k) for s, k in piece]
        s0 += piece[-1][0]
    arr = np.array(out)
    keep = np.ones(len(arr), bool)
    keep[1:] = ~((np.diff(arr[:, 0]) == 0) & (np.diff(arr[:, 1]) == 0))
    return arr[keep]


def _grade_knots(road: RoadProfile, rng: np.random.Generator, length_m: float) -> np.ndarray:
    """(K, 2) knots (s, grade): grade is piecewise linear (parabolic vertical curves)."""
    s, out = 0.0, []
    while True:
        out.append((s, sample_range(rng, road.grade)))
        if s >= length_m:
            return np.array(out)
        s += sample_range(rng, road.grade_length_m)


def _simpson(values_fine: np.ndarray, ds_m: float) -> np.ndarray:
    """Cumulative integral at every other fine sample (Simpson over pairs of fine steps)."""
    steps = (ds_m / 6.0) * (values_fine[0:-1:2] + 4.0 * values_fine[1::2] + values_fine[2::2])
    return np.concatenate([[0.0], np.cumsum(steps)])


def integrate_route(knots: np.ndarray, grade_knots: np.ndarray, length_m: float, heading0_rad: float,
                    flat_spans: list[tuple[float, float]] = ()) -> RoadSurface:
    """A reference line on a DS_M grid from curvature and grade knots (grade forced to 0 over flat_spans)."""
    n = int(round(length_m / DS_M))
    s_fine = np.arange(2 * n + 1) * (DS_M / 2)
    k_fine = np.interp(s_fine, knots[:, 0], knots[:, 1])
    h_fine = heading0_rad + np.concatenate([[0.0], np.cumsum(0.5 * (k_fine[1:] + k_fine[:-1]) * (DS_M / 2))])
    g_fine = np.interp(s_fine, grade_knots[:, 0], grade_knots[:, 1])
    for s0, s1 in flat_spans:  # smooth 0..1 window: 0 inside [s0, s1], ramps over 80 m outside
        u = np.clip(np.maximum(s0 - s_fine, s_fine - s1) / 80.0, 0.0, 1.0)
        g_fine *= u * u * (3.0 - 2.0 * u)
    centre = np.stack([_simpson(np.cos(h_fine), DS_M), _simpson(np.sin(h_fine), DS_M),
                       -_simpson(np.tan(g_fine), DS_M)], axis=1)  # (N, 3)
    return RoadSurface(name="main", centre_ned=centre, s_m=s_fine[::2].copy(), heading_rad=h_fine[::2].copy(),
                       grade_rad=np.arctan(g_fine[::2]), left_edge_m=0.0, right_edge_m=0.0)


# --- the network ------------------------------------------------------------------------------------------
def sample_layout(scenario: Scenario, rng: np.random.Generator) -> tuple[LaneLayout, PaintStyle]:
    lanes = scenario.lanes
    n_forward = int(rng.integers(lanes.lanes[0], lanes.lanes[1] + 1))
    n_oncoming = int(rng.integers(lanes.oncoming_lanes[0], lanes.oncoming_lanes[1] + 1))
    side = 1 if scenario.traffic_convention == "right_hand" else -1
    layout = LaneLayout(round(sample_range(rng, lanes.lane_width_m), 3), n_forward, n_oncoming, side,
                        round(sample_range(rng, lanes.shoulder_m), 3))
    paint = PaintStyle(centre_style=str(rng.choice(lanes.centre_styles)),
                       median_edge_color=str(rng.choice(lanes.median_edge_colors)),
                       dash_m=sample_range(rng, lanes.dash_m), gap_m=sample_range(rng, lanes.gap_m),
                       width_m=sample_range(rng, lanes.line_width_m))
    return layout, paint


def _dress(surface: RoadSurface, name: str, layout: LaneLayout, paint: PaintStyle,
           painted: list[tuple[float, float]]) -> RoadSurface:
    """Give a bare reference line its name, pavement, lanes and markings (painted over ``painted``)."""
    surface.name = name
    surface.left_edge_m, surface.right_edge_m = layout.left_edge_m, layout.right_edge_m
    surface.markings = layout_markings(layout, paint, painted)
    surface.lane_centres_m, surface.lane_width_m = layout.lane_centres_m, layout.lane_width_m
    surface.shoulder_m = layout.shoulder_m
    return surface


def _straight(start_ned: np.ndarray, heading_rad: float, length_m: float) -> RoadSurface:
    """A flat straight reference line from ``start_ned`` (samples at most DS_M apart, ending exactly)."""
    s = np.linspace(0.0, length_m, int(math.ceil(length_m / DS_M)) + 1)
    fwd = np.array([math.cos(heading_rad), math.sin(heading_rad), 0.0])
    return RoadSurface(name="", centre_ned=start_ned[None, :] + s[:, None] * fwd, s_m=s,
                       heading_rad=np.full_like(s, heading_rad), grade_rad=np.zeros_like(s),
                       left_edge_m=0.0, right_edge_m=0.0)


def _join(a: RoadSurface, b: RoadSurface) -> RoadSurface:
    """``b`` appended after ``a`` (b's first sample is dropped when it repeats a's last point)."""
    gap_m = float(np.linalg.norm(b.centre_ned[0] - a.centre_ned[-1]))
    skip = 1 if gap_m < 1e-3 else 0
    s_b = b.s_m[skip:] - b.s_m[0] + a.s_m[-1] + (0.0 if skip else gap_m)
    return RoadSurface(name="", centre_ned=np.concatenate([a.centre_ned, b.centre_ned[skip:]]),
                       s_m=np.concatenate([a.s_m, s_b]),
                       heading_rad=np.concatenate([a.heading_rad, b.heading_rad[skip:]]),
                       grade_rad=np.concatenate([a.grade_rad, b.grade_rad[skip:]]), left_edge_m=0.0, right_edge_m=0.0)


def _slice(route: RoadSurface, s0: float, s1: float) -> RoadSurface:
    keep = (route.s_m >= s0 - 1e-9) & (route.s_m <= s1 + 1e-9)
    return RoadSurface(name="", centre_ned=route.centre_ned[keep], s_m=route.s_m[keep] - s0,
                       heading_rad=route.heading_rad[keep], grade_rad=route.grade_rad[keep],
                       left_edge_m=0.0, right_edge_m=0.0)


def _turn_piece(turn: str, radius_m: float) -> list:
    """Curvature knots of a 90 degree turn (clothoid, arc, clothoid) or of a straight of the same size."""
    if turn == "straight":
        return [(0.0, 0.0), (_round_ds(2.0 * radius_m + TURN_CLOTHOID_M), 0.0)]
    arc = _round_ds(radius_m * math.pi / 2 - TURN_CLOTHOID_M)
    kappa = (1.0 if turn == "right" else -1.0) * (math.pi / 2) / (TURN_CLOTHOID_M + arc)
    lt = TURN_CLOTHOID_M
    return [(0.0, 0.0), (lt, kappa), (lt + arc, kappa), (2 * lt + arc, 0.0)]


def build_network(scenario: Scenario, rng: np.random.Generator, length_m: float,
                  junction_s_m: float | None = None) -> RoadNetwork:
    """A route of at least ``length_m`` (and its world); with a junction whose stop line is near ``junction_s_m``."""
    layout, paint = sample_layout(scenario, rng)
    road = scenario.road
    heading0 = float(rng.uniform(0.0, 2.0 * math.pi))
    grade = _grade_knots(road, rng, length_m + 400.0)
    if road.intersection == "none" or junction_s_m is None:
        knots = _concat_knots([_free_knots(road, rng, _round_ds(length_m), road.heading_limit_rad)])
        route = _dress(integrate_route(knots, grade, knots[-1, 0], heading0), "main", layout, paint,
                       [(0.0, math.inf)])
        return RoadNetwork(World([route]), route, knots, layout, paint)
    weights = np.asarray(scenario.desire.turn_weights, dtype=np.float64)
    turn = TURNS[int(rng.choice(3, p=weights / weights.sum()))]
    radius = (max(layout.n_forward, layout.n_oncoming) + 1) * layout.lane_width_m + layout.shoulder_m
    radius += sample_range(rng, (3.0, 6.0))
    approach, exit_len = (_round_ds(sample_range(rng, APPROACH_STRAIGHT_M)) for _ in range(2))
    free_a = _round_ds(max(junction_s_m + STOP_LINE_SETBACK_M - approach, 0.0))
    turn_piece = _turn_piece(turn, radius)
    s_in = free_a + approach
    s_out = s_in + turn_piece[-1][0]
    rest = _round_ds(max(length_m - s_out - exit_len, 100.0))
    knots = _concat_knots([_free_knots(road, rng, free_a, min(road.heading_limit_rad, math.pi / 8)),
                           [(0.0, 0.0), (approach, 0.0)], turn_piece, [(0.0, 0.0), (exit_len, 0.0)],
                           _free_knots(road, rng, rest, min(road.heading_limit_rad, math.pi / 4))])
    route = integrate_route(knots, grade, knots[-1, 0], heading0, flat_spans=[(s_in - 40.0, s_out + 40.0)])
    route = _dress(route, "main", layout, paint, [(0.0, s_in - STOP_LINE_SETBACK_M),
                                                  (s_out + STOP_LINE_SETBACK_M, math.inf)])
    return _junction_network(scenario, route, knots, layout, paint, turn, s_in, s_out)


def _junction_centre(route: RoadSurface, turn: str, s_in: float, s_out: float) -> tuple[np.ndarray, float]:
    """Where the approach and exit tangents cross, and the tangent length from the connector's ends."""
    if turn == "straight":
        return route.point_at(0.5 * (s_in + s_out)), 0.5 * (s_out - s_in)
    p0, p1 = route.point_at(s_in), route.point_at(s_out)
    h0, h1 = np.interp([s_in, s_out], route.s_m, route.heading_rad)
    f0, f1 = np.array([math.cos(h0), math.sin(h0)]), np.array([math.cos(h1), math.sin(h1)])
    a, b = np.linalg.solve(np.stack([f0, f1], axis=1), (p1 - p0)[:2])
    return np.array([*(p0[:2] + a * f0), p0[2]]), 0.5 * (a + b)


def _junction_network(scenario: Scenario, route: RoadSurface, knots: np.ndarray, layout: LaneLayout,
                      paint: PaintStyle, turn: str, s_in: float, s_out: float) -> RoadNetwork:
    """World roads, stop lines and traffic approaches around the route's junction."""
    centre, tangent = _junction_centre(route, turn, s_in, s_out)
    half = tangent + STOP_LINE_SETBACK_M
    plan = JunctionPlan(scenario.road.intersection, turn, s_in, s_out, centre, half)
    h_in, h_out = (float(np.interp(s, route.s_m, route.heading_rad)) for s in (s_in, s_out))
    fwd, onc = layout.d_range(True), layout.d_range(False)
    connector = _dress(_slice(route, s_in, s_out), "connector", layout, paint, [])
    connector.markings = []
    patch = _straight(centre - half * np.array([math.cos(h_in), math.sin(h_in), 0.0]), h_in, 2 * half)
    patch.name, patch.left_edge_m, patch.right_edge_m = "junction", -half, half
    all_way = plan.kind == "all_way_stop"
    if turn == "straight":
        g = h_in + math.pi / 2
        cross = _straight(centre - CROSS_HALF_M * np.array([math.cos(g), math.sin(g), 0.0]), g, 2 * CROSS_HALF_M)
        _dress(cross, "cross", layout, paint, [(0.0, CROSS_HALF_M - half), (CROSS_HALF_M + half, math.inf)])
        stops = [StopLine("cross", CROSS_HALF_M - half, *fwd), StopLine("cross", CROSS_HALF_M + half, *onc)]
        if all_way:
            stops += [StopLine("main", plan.stop_s_m, *fwd), StopLine("main", plan.oncoming_stop_s_m, *onc)]
        world = World([route, cross, connector, patch], stop_lines=stops)
        return RoadNetwork(world, route, knots, layout, paint, plan, cross=cross)
    main = _join(_slice(route, 0.0, s_in), _straight(route.point_at(s_in), h_in, tangent + STUB_M))
    _dress(main, "main", layout, paint, [(0.0, plan.stop_s_m), (s_in + tangent + half, math.inf)])
    f1 = np.array([math.cos(h_out), math.sin(h_out), 0.0])
    exit_road = _join(_straight(centre - STUB_M * f1, h_out, STUB_M + tangent), _slice(route, s_out, math.inf))
    _dress(exit_road, "exit", layout, paint, [(0.0, STUB_M - half), (STUB_M + half, math.inf)])
    stops = [StopLine("main", s_in + tangent + half, *onc), StopLine("exit", STUB_M - half, *fwd)]
    if all_way:
        stops += [StopLine("main", plan.stop_s_m, *fwd), StopLine("exit", STUB_M + half, *onc)]
    route.name = "route"
    arms = [(main, -1, s_in + tangent + half), (exit_road, 1, STUB_M - half)]
    world = World([main, exit_road, connector, patch], stop_lines=stops)
    return RoadNetwork(world, route, knots, layout, paint, plan, arms=arms)
