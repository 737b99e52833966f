"""Procedural towns: one generator, parameters per town.

Three kinds of component, combined per town:

* ``loop`` ``highway``: a divided multi-lane loop (median, 3-4 lanes per direction, shoulders), large-radius
  curves, gentle grades (Town04/05/06-like);
* ``loop`` ``rural``: a curvy two-lane loop (one lane per direction, shoulders) with tight curves and hills
  (Town07-like);
* ``grid``: a town grid with 4-way junctions inside, T-junctions on its edges and curved corners, one or two
  lanes per direction, a double yellow centre line and sidewalks (Town01/02/03/10-like).

Loops are chains of roads linked end to start; grid edges end at junctions whose connector lanes join every
incoming lane to the outgoing lanes (straight: lane to same lane, right turn: outermost lanes, left turn:
innermost lanes). Spawn points lie on driving lanes 0.5 m above the road, oriented along the lane.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from .enums import LaneType
from .roads import Junction, Network, Road, resample

D, SH, SW, MED = LaneType.Driving, LaneType.Shoulder, LaneType.Sidewalk, LaneType.Median


def highway_lanes(k: int):
    return [(MED, 1.0)] + [(D, 3.5)] * k + [(SH, 2.5)]


def town_lanes(k: int):
    return [(D, 3.5)] * k + [(SW, 3.0)]


RURAL_LANES = [(D, 3.5), (SH, 1.5)]

UE4_MAPS = ("Town01", "Town02", "Town03", "Town04", "Town05", "Town06", "Town07", "Town10HD")
UE5_MAPS = ("Mine_01", "Town10HD_Opt")

_HIGHWAY4 = ("loop", dict(kind="highway", lanes=4, r0=700.0, harmonics=((4, 0.08, 0.0),), n_roads=8, speed=90.0))
_TOWNS = {
    "Town01": dict(hills=(0.0, 1.0), parts=[("grid", dict(nx=4, ny=3, lanes=1, spacing=110.0, corner=20.0))]),
    "Town02": dict(hills=(0.0, 1.0), parts=[("grid", dict(nx=3, ny=3, lanes=1, spacing=90.0, corner=18.0))]),
    "Town03": dict(hills=(3.0, 450.0), parts=[("grid", dict(nx=4, ny=4, lanes=2, spacing=110.0, corner=28.0))]),
    "Town04": dict(
        hills=(8.0, 1500.0), parts=[_HIGHWAY4, ("grid", dict(nx=3, ny=3, lanes=1, spacing=90.0, corner=18.0))]
    ),
    "Town05": dict(
        hills=(2.0, 900.0),
        parts=[
            ("grid", dict(nx=4, ny=3, lanes=2, spacing=110.0, corner=28.0)),
            ("loop", dict(kind="highway", lanes=3, r0=600.0, harmonics=((4, 0.06, 0.3),), n_roads=8, speed=90.0)),
        ],
    ),
    "Town06": dict(
        hills=(4.0, 2000.0),
        parts=[
            (
                "loop",
                dict(
                    kind="highway",
                    lanes=4,
                    r0=900.0,
                    harmonics=((2, 0.22, 0.0), (4, 0.03, 0.0)),
                    n_roads=10,
                    speed=90.0,
                ),
            )
        ],
    ),
    "Town07": dict(
        hills=(9.0, 650.0),
        parts=[
            (
                "loop",
                dict(
                    kind="rural", lanes=1, r0=520.0, harmonics=((7, 0.08, 0.0), (11, 0.02, 1.0)), n_roads=12, speed=60.0
                ),
            ),
            ("grid", dict(nx=3, ny=3, lanes=1, spacing=80.0, corner=16.0)),
        ],
    ),
    "Town10HD": dict(hills=(0.5, 600.0), parts=[("grid", dict(nx=3, ny=3, lanes=2, spacing=100.0, corner=26.0))]),
    "Mine_01": dict(
        hills=(14.0, 900.0),
        parts=[("loop", dict(kind="rural", lanes=1, r0=450.0, harmonics=((5, 0.05, 0.0),), n_roads=8, speed=40.0))],
    ),
}


def base_name(name: str) -> str:
    return name[:-4] if name.endswith("_Opt") else name


def height_field(amplitude: float, wavelength: float):
    k = 2.0 * math.pi / wavelength

    def z(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        return amplitude * (0.6 * np.sin(k * x + 0.4) * np.cos(0.8 * k * y) + 0.4 * np.sin(1.3 * k * y + 1.1))

    return z


class Builder:
    def __init__(self, name: str, z_field):
        self.net, self.z = Network(name), z_field
        self._road_id, self._junction_id = 0, 0

    def road(self, x, y, h, profile, junction_id=-1, speed=30.0) -> Road:
        self._road_id += 1
        return self.net.add_road(Road(self._road_id, x, y, h, self.z, profile, junction_id, speed))

    @staticmethod
    def link(a: Road, b: Road) -> None:
        """a's end meets b's start: lanes keep their ids across the link."""
        for lane_id, la in a.lanes.items():
            lb = b.lanes.get(lane_id)
            if lb is None:
                continue
            first, second = (la, lb) if lane_id < 0 else (lb, la)
            first.succ.append(second)
            second.pred.append(first)

    # --- loops ------------------------------------------------------------------------------------------------
    def loop(self, cx, cy, kind, lanes, r0, harmonics, n_roads, speed):
        th = np.linspace(0.0, 2.0 * math.pi, 12000, endpoint=False)
        r = r0 * (1.0 + sum(a * np.cos(k * th + ph) for k, a, ph in harmonics))
        x, y, h = resample(cx + r * np.cos(th), cy + r * np.sin(th), closed=True)
        h_next = h[-1] + ((h[0] - h[-1] + math.pi) % (2 * math.pi) - math.pi)
        x, y, h = np.append(x, x[0]), np.append(y, y[0]), np.append(h, h_next)
        side = highway_lanes(lanes) if kind == "highway" else RURAL_LANES
        cuts = np.linspace(0, len(x) - 1, n_roads + 1).astype(int)
        roads = [
            self.road(x[a : b + 1], y[a : b + 1], h[a : b + 1], (side, side), speed=speed)
            for a, b in zip(cuts[:-1], cuts[1:])
        ]
        for a, b in zip(roads, roads[1:] + roads[:1]):
            self.link(a, b)
            a.spawn_step = 90.0 if kind == "highway" else 50.0
        return roads

    # --- grids ------------------------------------------------------------------------------------------------
    def grid(self, x0, y0, nx, ny, lanes, spacing, corner):
        side = town_lanes(lanes)
        half = lanes * 3.5 + 3.0 + 1.0
        nodes = {(i, j): (x0 + i * spacing, y0 + j * spacing) for i in range(nx) for j in range(ny)}

        def degree(i, j):
            return sum((i + di, j + dj) in nodes for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)))

        arms: dict = {n: [] for n in nodes if degree(*n) > 2}
        done = set()
        for i, j in nodes:
            for di, dj in ((1, 0), (0, 1)):
                a, b = (i, j), (i + di, j + dj)
                if b not in nodes or (a, b) in done:
                    continue
                done.add((a, b))
                if degree(*a) == 2 or degree(*b) == 2:
                    continue  # part of a corner road
                ux, uy = di, dj
                (ax, ay), (bx, by) = nodes[a], nodes[b]
                p = _polyline([(ax + half * ux, ay + half * uy), (bx - half * ux, by - half * uy)])
                road = self.road(*resample(*p), (side, side))
                arms[a].append((road, False))
                arms[b].append((road, True))
        for c, (cx, cy) in nodes.items():
            if degree(*c) != 2:
                continue
            nbrs = [n for n in ((c[0] + 1, c[1]), (c[0] - 1, c[1]), (c[0], c[1] + 1), (c[0], c[1] - 1)) if n in nodes]
            p_node, q_node = nbrs
            (px, py), (qx, qy) = nodes[p_node], nodes[q_node]
            u = ((cx - px) / spacing, (cy - py) / spacing)
            v = ((qx - cx) / spacing, (qy - cy) / spacing)
            start = (px + half * u[0], py + half * u[1])
            pts = _line(start, u, spacing - half - corner)
            turn = 1.0 if (u[0] * v[1] - u[1] * v[0]) > 0 else -1.0  # positive yaw change = right turn
            pts += _arc(pts[-1], math.atan2(u[1], u[0]), corner, turn * math.pi / 2)
            pts += _line(pts[-1], v, spacing - half - corner)
            road = self.road(*resample(*_polyline(pts)), (side, side))
            arms[p_node].append((road, False))
            arms[q_node].append((road, True))
        for n, node_arms in arms.items():
            self.junction(*nodes[n], half, node_arms)

    def junction(self, cx, cy, half, node_arms):
        jid = self._junction_id
        self._junction_id += 1
        junction = Junction(jid, cx, cy, half, float(self.z(cx, cy)))
        self.net.junctions[jid] = junction
        ends = []
        for road, at_end in node_arms:
            driving = sorted((ln for ln in road.lanes.values() if ln.type == D), key=lambda ln: abs(ln.id))
            ends.append(
                (
                    [ln for ln in driving if (ln.direction > 0) == at_end],
                    [ln for ln in driving if (ln.direction > 0) != at_end],
                )
            )
        for a, (incoming, _) in enumerate(ends):
            for b, (_, outgoing) in enumerate(ends):
                if a == b or not incoming or not outgoing:
                    continue
                yaw_in = incoming[0].centre(incoming[0].end_s())[3]
                yaw_out = outgoing[0].centre(outgoing[0].start_s())[3]
                d = (yaw_out - yaw_in + 180.0) % 360.0 - 180.0
                if abs(d) < 45.0:
                    turn, pairs = "Straight", list(zip(incoming, outgoing))
                elif d > 0:
                    turn, pairs = "Right", [(incoming[-1], outgoing[-1])]
                else:
                    turn, pairs = "Left", [(incoming[0], outgoing[0])]
                for li, lo in pairs:
                    junction.connectors.append(self._connector(jid, li, lo, turn))

    def _connector(self, jid, li, lo, turn):
        x0, y0, _, yaw0, _ = li.centre(li.end_s())
        x1, y1, _, yaw1, _ = lo.centre(lo.start_s())
        h0, h1 = math.radians(yaw0), math.radians(yaw1)
        w = li.width
        p0 = (x0 + w / 2 * math.sin(h0), y0 - w / 2 * math.cos(h0))  # reference line: the lane's left edge
        p3 = (x1 + w / 2 * math.sin(h1), y1 - w / 2 * math.cos(h1))
        chord = math.hypot(p3[0] - p0[0], p3[1] - p0[1])
        k = chord * (1.0 / 3.0 + 0.0572 * abs(math.sin(h1 - h0)))
        p1 = (p0[0] + k * math.cos(h0), p0[1] + k * math.sin(h0))
        p2 = (p3[0] - k * math.cos(h1), p3[1] - k * math.sin(h1))
        t = np.linspace(0.0, 1.0, 400)[:, None]
        pts = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        road = self.road(*resample(pts[:, 0], pts[:, 1]), ([(D, w)], []), junction_id=jid, speed=li.road.speed_limit)
        lane = road.lanes[-1]
        lane.turn = turn
        li.succ.append(lane)
        lane.pred.append(li)
        lane.succ.append(lo)
        lo.pred.append(lane)
        return lane

    def spawn_points(self, margin: float = 6.0):
        for road in self.net.roads.values():
            if road.is_junction:
                continue
            step = road.spawn_step
            for lane in sorted(road.lanes.values(), key=lambda ln: ln.id):
                if lane.type != D:
                    continue
                n = int((road.length - 2 * margin) // step) + 1
                for i in range(max(n, 0)):
                    d = margin + i * step
                    self.net.spawn.append((lane, d if lane.direction > 0 else road.length - d))


def _line(p, u, length):
    n = max(2, int(length / 0.25) + 1)
    return [(p[0] + u[0] * length * f, p[1] + u[1] * length * f) for f in np.linspace(0.0, 1.0, n)]


def _arc(p, h0, radius, angle):
    """Points of an arc starting at p with heading h0; angle > 0 turns right (yaw increases)."""
    sign = 1.0 if angle > 0 else -1.0
    cx, cy = p[0] - sign * radius * math.sin(h0), p[1] + sign * radius * math.cos(h0)
    out = []
    for phi in np.linspace(0.0, abs(angle), max(8, int(abs(angle) * radius / 0.25))):
        h = h0 + sign * phi
        out.append((cx + sign * radius * math.sin(h), cy - sign * radius * math.cos(h)))
    return out


def _polyline(points):
    arr = np.array(points, float)
    keep = np.concatenate([[True], np.hypot(*np.diff(arr, axis=0).T) > 1e-9])
    return arr[keep, 0], arr[keep, 1]


@cache
def build(name: str) -> Network:
    """The road network of town ``name`` (built once per process; networks are read-only afterwards)."""
    spec = _TOWNS[base_name(name)]
    b = Builder(name, height_field(*spec["hills"]))
    for kind, params in spec["parts"]:
        if kind == "grid":
            p = dict(params)
            w, hgt = (p["nx"] - 1) * p["spacing"], (p["ny"] - 1) * p["spacing"]
            b.grid(-w / 2.0, -hgt / 2.0, **p)
        else:
            b.loop(0.0, 0.0, **params)
    b.spawn_points()
    b.net.finish()
    return b.net
