"""``Map``, ``Waypoint`` and ``Junction``: client-side map queries, computed from the town's road network.

As in LibCarla, these work without the server once the map is obtained. ``next(d)`` returns a LIST (several
entries at a junction entry, one per connector lane), ``previous(d)`` likewise; ``get_left_lane`` towards the
centre crosses to the first lane of the other side, which is oriented the other way; lanes with a positive id
report yaw + 180 and pitch 360 - pitch (LibCarla's Lane::ComputeTransform).
"""

from __future__ import annotations

from .enums import LaneChange, LaneMarkingType, LaneType
from .errors import argument_error
from .geom import BoundingBox, Location, Rotation, Transform, Vector3D
from .roads import Lane, Network, advance

_NO_INIT = "This class cannot be instantiated from Python"
_CROSSABLE = (LaneMarkingType.Broken, LaneMarkingType.BrokenBroken, LaneMarkingType.BottsDots)


def normalize_yaw(yaw: float) -> float:
    return (yaw + 180.0) % 360.0 - 180.0


class Waypoint:
    __slots__ = ("_net", "_lane", "_s", "_pose")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    @classmethod
    def _make(cls, net: Network, lane: Lane, s: float) -> Waypoint:
        wp = object.__new__(cls)
        wp._net, wp._lane, wp._s, wp._pose = net, lane, min(max(s, 0.0), lane.road.length), None
        return wp

    def _centre(self):
        if self._pose is None:
            self._pose = self._lane.centre(self._s)
        return self._pose

    @property
    def id(self) -> int:
        lane = self._lane
        return hash((lane.road.id, 0, lane.id, int(round(self._s * 100)))) & 0xFFFFFFFFFFFFFFFF

    @property
    def transform(self) -> Transform:
        x, y, z, yaw, pitch = self._centre()
        return Transform(Location(x, y, z), Rotation(pitch, yaw, 0.0))

    road_id = property(lambda self: self._lane.road.id)
    section_id = property(lambda self: 0)
    lane_id = property(lambda self: self._lane.id)
    s = property(lambda self: self._s)
    is_junction = property(lambda self: self._lane.road.is_junction)
    is_intersection = property(lambda self: self._lane.road.is_junction)
    junction_id = property(lambda self: self._lane.road.junction_id)
    lane_width = property(lambda self: self._lane.width)
    lane_type = property(lambda self: self._lane.type)
    right_lane_marking = property(lambda self: self._lane.right_mark)
    left_lane_marking = property(lambda self: self._lane.left_mark)

    @property
    def lane_change(self):
        lane, value = self._lane, 0
        for side, bit, mark in ((-1, LaneChange.Right, lane.right_mark), (1, LaneChange.Left, lane.left_mark)):
            other = lane.neighbour(side)
            if (
                other is not None
                and other.type == LaneType.Driving
                and other.direction == lane.direction
                and mark.type in _CROSSABLE
            ):
                value |= int(bit)
        return LaneChange(value)

    def _wrap(self, pairs):
        return [Waypoint._make(self._net, lane, s) for lane, s in pairs]

    def next(self, distance) -> list:
        distance = float(distance)
        if distance <= 0.0:
            raise RuntimeError("road/Map.cpp : distance > 0.0")
        return self._wrap(advance(self._lane, self._s, distance))

    def previous(self, distance) -> list:
        distance = float(distance)
        if distance <= 0.0:
            raise RuntimeError("road/Map.cpp : distance > 0.0")
        return self._wrap(_back(self._lane, self._s, distance))

    def next_until_lane_end(self, distance) -> list:
        out, lane, s = [], self._lane, self._s
        while lane.remaining(s) > distance:
            s += lane.direction * distance
            out.append(Waypoint._make(self._net, lane, s))
        out.append(Waypoint._make(self._net, lane, lane.end_s()))
        return out

    def previous_until_lane_start(self, distance) -> list:
        out, lane, s = [], self._lane, self._s
        while abs(s - lane.start_s()) > distance:
            s -= lane.direction * distance
            out.append(Waypoint._make(self._net, lane, s))
        out.append(Waypoint._make(self._net, lane, lane.start_s()))
        return out

    def get_left_lane(self):
        other = self._lane.neighbour(1)
        return None if other is None else Waypoint._make(self._net, other, self._s)

    def get_right_lane(self):
        other = self._lane.neighbour(-1)
        return None if other is None else Waypoint._make(self._net, other, self._s)

    def get_junction(self):
        road = self._lane.road
        return Junction._make(self._net, self._net.junctions[road.junction_id]) if road.is_junction else None

    def get_landmarks(self, distance, stop_at_junction=False) -> list:
        return []

    def get_landmarks_of_type(self, distance, type, stop_at_junction=False) -> list:  # noqa: A002
        return []

    def __str__(self):
        return f"Waypoint({self.transform})"

    __repr__ = __str__


def _back(lane: Lane, s: float, distance: float):
    behind = abs(s - lane.start_s())
    if distance <= behind:
        return [(lane, s - lane.direction * distance)]
    out = []
    for prev in lane.pred:
        out.extend(_back(prev, prev.end_s(), distance - behind))
    return out


class Junction:
    __slots__ = ("_net", "_j")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    @classmethod
    def _make(cls, net, junction) -> Junction:
        obj = object.__new__(cls)
        obj._net, obj._j = net, junction
        return obj

    id = property(lambda self: self._j.id)

    @property
    def bounding_box(self) -> BoundingBox:
        j = self._j
        return BoundingBox(Location(j.cx, j.cy, j.z), Vector3D(j.half, j.half, 5.0))

    def get_waypoints(self, lane_type) -> list:
        mask = int(lane_type)
        return [
            (Waypoint._make(self._net, ln, ln.start_s()), Waypoint._make(self._net, ln, ln.end_s()))
            for ln in self._j.connectors
            if int(ln.type) & mask
        ]


class Map:
    __slots__ = ("_name", "_net")

    def __init__(self, name, xodr_content):
        raise RuntimeError("the CARLA double cannot build a map from OpenDRIVE text")

    @classmethod
    def _make(cls, name: str, net: Network) -> Map:
        obj = object.__new__(cls)
        obj._name, obj._net = name, net
        return obj

    name = property(lambda self: f"Carla/Maps/{self._name}")

    def __str__(self):
        return f"Map(name={self.name})"

    def get_spawn_points(self) -> list:
        out = []
        for lane, s in self._net.spawn:
            x, y, z, yaw, _ = lane.centre(s)
            out.append(Transform(Location(x, y, z + 0.5), Rotation(0.0, normalize_yaw(yaw), 0.0)))
        return out

    def get_waypoint(self, location, project_to_road=True, lane_type=LaneType.Driving):
        if not isinstance(location, Vector3D):
            raise argument_error("Map.get_waypoint", self, location)
        found = self._net.project(location.x, location.y, location.z, int(lane_type))
        if found is None:
            return None
        lane, s, outside = found
        if not project_to_road and outside > 1e-6:
            return None
        return Waypoint._make(self._net, lane, s)

    def get_waypoint_xodr(self, road_id, lane_id, s):
        lane = self._net.lane(int(road_id), int(lane_id))
        if lane is None or not 0.0 <= float(s) <= lane.road.length:
            return None
        return Waypoint._make(self._net, lane, float(s))

    def _driving(self):
        for road in self._net.roads.values():
            for lane in road.lanes.values():
                if lane.type == LaneType.Driving:
                    yield lane

    def generate_waypoints(self, distance) -> list:
        distance, out = float(distance), []
        for lane in self._driving():
            d = 0.0
            while d < lane.length:
                out.append(Waypoint._make(self._net, lane, lane.start_s() + lane.direction * d))
                d += distance
        return out

    def get_topology(self) -> list:
        return [
            (Waypoint._make(self._net, ln, ln.start_s()), Waypoint._make(self._net, ln, ln.end_s()))
            for ln in self._driving()
        ]

    def get_all_landmarks(self) -> list:
        return []

    def get_crosswalks(self) -> list:
        return []
