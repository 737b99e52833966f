"""The road network behind a double's map: OpenDRIVE-like roads, lanes, junctions and a spatial index.

Each road has a reference line sampled every ~0.5 m (x, y, z, heading in CARLA's frame) and lanes on both
sides with OpenDRIVE's id convention: negative ids lie to the right of the reference line and are driven along
it (right-hand traffic), positive ids lie to its left and are driven against it. A lane centre is the
reference point moved sideways by the widths of the lanes between it and the reference line. Lanes are linked
to their successors in their own driving direction; junction connectors are single-lane roads (lane -1) that
belong to a junction. The z of every point comes from the town's smooth height field, so lanes meeting at a
junction agree.
"""

from __future__ import annotations

import math

import numpy as np

from .enums import LaneChange, LaneMarkingColor, LaneMarkingType, LaneType
from .values import LaneMarking

DS = 0.5
_CELL = 25.0
_NO_MARK = LaneMarking._make(LaneMarkingType.NONE, LaneMarkingColor.Other, LaneChange.NONE, 0.0)
_BROKEN = LaneMarking._make(LaneMarkingType.Broken, LaneMarkingColor.White, LaneChange.Both, 0.15)
_SOLID = LaneMarking._make(LaneMarkingType.Solid, LaneMarkingColor.White, LaneChange.NONE, 0.15)
_EDGE_YELLOW = LaneMarking._make(LaneMarkingType.Solid, LaneMarkingColor.Yellow, LaneChange.NONE, 0.15)
_CENTRE = LaneMarking._make(LaneMarkingType.SolidSolid, LaneMarkingColor.Yellow, LaneChange.NONE, 0.3)


def resample(px, py, closed: bool = False):
    """Dense points -> (x, y, heading) every ~DS metres along the polyline (heading from central differences)."""
    px, py = np.asarray(px, float), np.asarray(py, float)
    if closed:
        px, py = np.append(px, px[0]), np.append(py, py[0])
    seg = np.hypot(np.diff(px), np.diff(py))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(round(s[-1] / DS)) + 1)
    u = np.linspace(0.0, s[-1], n)
    x, y = np.interp(u, s, px), np.interp(u, s, py)
    if closed:
        x, y = x[:-1], y[:-1]
        dx, dy = np.roll(x, -1) - np.roll(x, 1), np.roll(y, -1) - np.roll(y, 1)
    else:
        dx, dy = np.gradient(x), np.gradient(y)
    return x, y, np.unwrap(np.arctan2(dy, dx))


class Lane:
    __slots__ = (
        "road",
        "id",
        "type",
        "width",
        "offset",
        "direction",
        "succ",
        "pred",
        "right_mark",
        "left_mark",
        "turn",
        "key",
    )

    def __init__(self, road, lane_id, lane_type, width, offset):
        self.road, self.id, self.type, self.width, self.offset = road, lane_id, lane_type, width, offset
        self.direction = 1 if lane_id < 0 else -1
        self.succ, self.pred = [], []
        self.right_mark = self.left_mark = _NO_MARK
        self.turn = ""
        self.key = (road.id, lane_id)

    @property
    def length(self) -> float:
        return self.road.length

    def start_s(self) -> float:
        return 0.0 if self.direction > 0 else self.road.length

    def end_s(self) -> float:
        return self.road.length if self.direction > 0 else 0.0

    def remaining(self, s: float) -> float:
        return self.road.length - s if self.direction > 0 else s

    def neighbour(self, side: int):
        """side -1: right lane (away from the centre), +1: left lane (towards it, crossing to the other side)."""
        i = self.id
        if side < 0:
            j = i - 1 if i < 0 else i + 1
        else:
            j = -i if abs(i) == 1 else (i + 1 if i < 0 else i - 1)
        return self.road.lanes.get(j)

    def centre(self, s: float):
        """(x, y, z, yaw_deg_of_travel, pitch_deg_of_travel) of the lane centre at road s."""
        x, y, z, h, slope = self.road.pose(s)
        x, y = x - math.sin(h) * self.offset, y + math.cos(h) * self.offset
        yaw = (math.degrees(h) + 180.0) % 360.0 - 180.0
        pitch = math.degrees(math.atan(slope))
        if self.direction < 0:
            return x, y, z, yaw + 180.0, 360.0 - pitch
        return x, y, z, yaw, pitch


class Road:
    def __init__(self, road_id, x, y, heading, z_field, profile, junction_id=-1, speed_limit=30.0):
        self.id, self.junction_id, self.speed_limit = road_id, junction_id, speed_limit
        self.spawn_step = 25.0
        z = z_field(x, y)
        self.length = float(np.sum(np.hypot(np.diff(x), np.diff(y))))
        n = len(x)
        self.step = self.length / (n - 1)
        slope = np.gradient(z, self.step)
        self._x, self._y, self._z = x.tolist(), y.tolist(), z.tolist()
        self._hu, self._slope = heading.tolist(), slope.tolist()
        self.np_x, self.np_y, self.np_z = x, y, z
        self.lanes: dict[int, Lane] = {}
        self.profile = profile  # (lanes right of the line, lanes left of it), each [(LaneType, width)] outwards
        for side, lanes in zip((-1, 1), profile):
            t = 0.0
            for k, (lane_type, width) in enumerate(lanes, start=1):
                centre = t + width / 2.0  # lane offsets are positive to the right of the reference line
                self.lanes[side * k] = Lane(self, side * k, lane_type, width, centre if side < 0 else -centre)
                t += width
        self.half_width = max(sum(w for _, w in lanes) for lanes in profile)

    def pose(self, s: float):
        """(x, y, z, heading_rad, slope) of the reference line at s (linear interpolation)."""
        u = min(max(s, 0.0), self.length) / self.step
        i = min(int(u), len(self._x) - 2)
        f = u - i
        g = 1.0 - f
        xs, ys, zs, hs, ss = self._x, self._y, self._z, self._hu, self._slope
        return (
            xs[i] * g + xs[i + 1] * f,
            ys[i] * g + ys[i + 1] * f,
            zs[i] * g + zs[i + 1] * f,
            hs[i] * g + hs[i + 1] * f,
            ss[i] * g + ss[i + 1] * f,
        )

    def hprime(self, s: float) -> float:
        """d(heading)/ds of the reference line at s (positive when it turns right, i.e. yaw increases)."""
        i = min(int(min(max(s, 0.0), self.length) / self.step), len(self._x) - 2)
        return (self._hu[i + 1] - self._hu[i]) / self.step

    @property
    def is_junction(self) -> bool:
        return self.junction_id >= 0


def _edge_mark(inner: LaneType, outer) -> LaneMarking:
    if inner == LaneType.Driving and outer == LaneType.Driving:
        return _BROKEN
    if inner == LaneType.Driving:
        return _SOLID
    if inner == LaneType.Median and outer == LaneType.Driving:
        return _EDGE_YELLOW
    return _NO_MARK


def assign_marks(road: Road) -> None:
    """Road marks: broken white between same-direction lanes, solid white at the outer driving edge, double
    yellow at a two-way centre line, solid yellow along a median, none inside junctions."""
    if road.is_junction:
        return
    both = road.lanes.get(-1), road.lanes.get(1)
    centre = _CENTRE if all(ln is not None and ln.type == LaneType.Driving for ln in both) else _NO_MARK
    for lane in road.lanes.values():
        outer = road.lanes.get(lane.id - 1 if lane.id < 0 else lane.id + 1)
        lane.right_mark = _edge_mark(lane.type, outer.type if outer else None)
        inner = road.lanes.get(lane.id + 1 if lane.id < 0 else lane.id - 1)
        if abs(lane.id) == 1:
            lane.left_mark = centre
        else:
            lane.left_mark = _edge_mark(inner.type, lane.type) if inner.type != LaneType.Driving else inner.right_mark


class Junction:
    def __init__(self, junction_id, cx, cy, half, z):
        self.id, self.cx, self.cy, self.half, self.z = junction_id, cx, cy, half, z
        self.connectors: list[Lane] = []


class Network:
    """All roads, lanes and junctions of one town, with a grid index for nearest-lane queries."""

    def __init__(self, name: str):
        self.name = name
        self.roads: dict[int, Road] = {}
        self.junctions: dict[int, Junction] = {}
        self.spawn: list[tuple[Lane, float]] = []
        self._grid = None

    def add_road(self, road: Road) -> Road:
        self.roads[road.id] = road
        return road

    def lane(self, road_id: int, lane_id: int):
        road = self.roads.get(road_id)
        return road.lanes.get(lane_id) if road else None

    def finish(self) -> None:
        for road in self.roads.values():
            assign_marks(road)
        xs, ys, zs, rid, ss = [], [], [], [], []
        for road in self.roads.values():
            n = max(2, int(road.length / 2.0) + 1)
            s = np.linspace(0.0, road.length, n)
            for si in s:
                x, y, z, _, _ = road.pose(float(si))
                xs.append(x), ys.append(y), zs.append(z), rid.append(road.id), ss.append(float(si))
        self._sx, self._sy, self._sz = np.array(xs), np.array(ys), np.array(zs)
        self._srid, self._ss = np.array(rid), np.array(ss)
        cells: dict = {}
        for i, (x, y) in enumerate(zip(xs, ys)):
            cells.setdefault((int(math.floor(x / _CELL)), int(math.floor(y / _CELL))), []).append(i)
        self._grid = {k: np.array(v) for k, v in cells.items()}
        self._near: dict = {}

    def _candidates(self, x: float, y: float, ring: int):
        cx, cy = int(math.floor(x / _CELL)), int(math.floor(y / _CELL))
        key = (cx, cy, ring)
        got = self._near.get(key)
        if got is None:
            parts = [
                self._grid[(i, j)]
                for i in range(cx - ring, cx + ring + 1)
                for j in range(cy - ring, cy + ring + 1)
                if (i, j) in self._grid
            ]
            got = np.concatenate(parts) if parts else np.zeros(0, int)
            if len(self._near) < 200000:
                self._near[key] = got
        return got

    def project(self, x: float, y: float, z: float, lane_mask: int):
        """(lane, s, outside_m) of the lane of type ``lane_mask`` nearest to the point, or None."""
        ring, idx = 1, self._candidates(x, y, 1)
        while idx.size == 0:
            ring *= 2
            idx = self._candidates(x, y, ring) if ring <= 8 else np.arange(len(self._sx))
            if ring > 8 and idx.size == 0:
                return None
        d2 = (self._sx[idx] - x) ** 2 + (self._sy[idx] - y) ** 2 + 0.25 * (self._sz[idx] - z) ** 2
        order = np.argsort(d2)
        best, seen = None, set()
        for j in order[:64]:
            rid = int(self._srid[idx[j]])
            if rid in seen:
                continue
            seen.add(rid)
            road = self.roads[rid]
            found = self._on_road(road, float(self._ss[idx[j]]), x, y, z, lane_mask)
            if found is not None and (best is None or found[2:] < best[2:]):
                best = found
        return None if best is None else best[:3]

    @staticmethod
    def _on_road(road: Road, s0: float, x: float, y: float, z: float, lane_mask: int):
        s = s0
        for _ in range(3):
            rx, ry, rz, h, _ = road.pose(s)
            s = min(max(s + (x - rx) * math.cos(h) + (y - ry) * math.sin(h), 0.0), road.length)
        rx, ry, rz, h, _ = road.pose(s)
        over = math.hypot(x - rx, y - ry) if s in (0.0, road.length) else 0.0
        t = -(x - rx) * math.sin(h) + (y - ry) * math.cos(h)
        lanes = [ln for ln in road.lanes.values() if int(ln.type) & lane_mask]
        if not lanes:
            return None
        best = None
        for ln in lanes:
            gap = max(0.0, abs(t - ln.offset) - ln.width / 2.0)
            key = (max(gap, over) + abs(z - rz) * 0.5, abs(t - ln.offset))
            if best is None or key < best[2:]:
                best = (ln, s, *key)
        return best


def advance(lane: Lane, s: float, distance: float, choose=None):
    """Positions ``distance`` metres further along the driving direction: a list of (lane, s), one per branch
    (``choose(lane, successors)`` may pick one branch). An empty list at a dead end."""
    remaining = lane.remaining(s)
    if distance <= remaining:
        return [(lane, s + lane.direction * distance)]
    succ = lane.succ if choose is None or len(lane.succ) < 2 else [choose(lane, lane.succ)]
    out = []
    for nxt in succ:
        out.extend(advance(nxt, nxt.start_s(), distance - remaining, choose))
    return out
