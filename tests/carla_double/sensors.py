"""What the server's sensors record at a tick (turned into data objects on the sensors' delivery threads)."""

from __future__ import annotations

import math
import queue
import sys
import threading
import traceback

from .enums import LaneMarkingType, LaneType
from .geom import Vector3D
from .state import boxes_overlap

_CALLS: queue.Queue = queue.Queue()
_MARKS = {LaneMarkingType.NONE: 0, LaneMarkingType.Broken: 1, LaneMarkingType.BrokenBroken: 1}


def vec(t) -> Vector3D:
    return Vector3D(*t)


def _caller() -> None:
    while True:
        cb, arg = _CALLS.get()
        try:
            cb(arg)
        except Exception:
            print("carla_double: error in on_tick callback:", file=sys.stderr)
            traceback.print_exc()


threading.Thread(target=_caller, name="carla-double-on-tick", daemon=True).start()


def call_later(callback, arg) -> None:
    """Runs ``callback(arg)`` on the double's callback thread (World.on_tick callbacks)."""
    _CALLS.put((callback, arg))


def _due(server, a) -> bool:
    if a.last_capture is not None and a.sensor_tick > 0 and server.elapsed - a.last_capture < a.sensor_tick - 1e-9:
        return False
    a.last_capture = server.elapsed
    return True


def camera_record(server, a) -> dict:
    """Everything the renderer needs about a camera at this frame: pose, the lane under it, the weather."""
    x, y, z, pitch, yaw, roll = a.world(server.actors)
    attrs, w = a.attributes, server.weather
    cap = dict(
        frame=server.frame,
        elapsed=server.elapsed,
        width=int(float(attrs.get("image_size_x", 800))),
        height=int(float(attrs.get("image_size_y", 600))),
        fov=float(attrs.get("fov", 90.0)),
        pitch=pitch,
        yaw=yaw,
        roll=roll,
        pose=(x, y, z, pitch, yaw, roll),
        sun_alt=w.sun_altitude_angle,
        cloud=max(w.cloudiness, 0.0),
        wet=max(w.wetness, w.precipitation_deposits, 0.0),
        cam_height=None,
    )
    found = server.network.project(x, y, z, int(LaneType.Driving))
    if found is not None:
        lane, s, outside = found
        cx, cy, cz, lyaw, _ = lane.centre(s)
        r = math.radians(lyaw)
        cap.update(
            cam_height=z - cz,
            lane_width=lane.width,
            yaw_rel=(yaw - lyaw + 180.0) % 360.0 - 180.0,
            lateral=-(x - cx) * math.sin(r) + (y - cy) * math.cos(r),
            marks=(_MARKS.get(lane.left_mark.type, 2), _MARKS.get(lane.right_mark.type, 2)),
        )
    parent = server.actors.get(a.parent_id)
    cap["phase"] = parent.odometer if parent is not None else 0.0
    return cap


def capture(server, dt: float) -> None:
    """Queues each listening sensor's data of the current frame (honouring sensor_tick and dropped frames)."""
    if not server.connected:
        return
    for a in server.sensors():
        stream = a.stream
        if stream is None or not stream.listening:
            continue
        if a.type_id == "sensor.camera.rgb":
            if _due(server, a) and not server.faults.drops(a, server.frame):
                stream.put(("image", camera_record(server, a)))
        elif a.type_id == "sensor.other.collision":
            parent = server.actors.get(a.parent_id)
            if parent is None or server.faults.drops(a, server.frame):
                continue
            for other in server.vehicles():
                if other is not parent and boxes_overlap(parent, other):
                    rel = (parent.vel[0] - other.vel[0], parent.vel[1] - other.vel[1], 0.0)
                    impulse = tuple(-1500.0 * c for c in rel)
                    stream.put(
                        (
                            "collision",
                            server.frame,
                            server.elapsed,
                            a.world(server.actors),
                            parent.id,
                            other.id,
                            impulse,
                        )
                    )
