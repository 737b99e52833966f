"""Server-side records: actors, injected faults, and the sensor streams that deliver data from their own threads."""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from .dynamics import Drive
from .geom import Location, Rotation, Transform, Vector3D, rotation_columns
from .values import VehicleControl


@dataclass
class Faults:
    """Failures a test can inject into a served double (``serve(..., faults=Faults(...))`` or ``server.faults``).

    * ``disconnect_after_ticks=N``: the server steps N frames (every tick counts, also the ones
      ``World.apply_settings`` makes), then stops answering: the next tick and every later RPC raise the real
      time-out RuntimeError and sensors deliver nothing, until ``server.reconnect()`` or ``faults.clear()``;
    * ``drop_sensor_frames``: frame ids no sensor delivers (a set), or ``{role_name or actor id: set}`` for
      particular sensors; the frame is silently missing;
    * ``slow_sensor_s``: seconds each delivery is held back (a float, or ``{role_name or actor id: seconds}``);
    * ``occupied_spawn_points``: indices into ``Map.get_spawn_points()`` where a spawn collides;
    * ``spawn_failures``: the next N spawns fail with the collision error, wherever they are;
    * ``timeout_wait_s``: how long a timed-out RPC blocks before raising (capped by the client's timeout; the
      real client waits the whole timeout, the default 0 raises at once).
    """

    disconnect_after_ticks: int | None = None
    drop_sensor_frames: set | dict = field(default_factory=set)
    slow_sensor_s: float | dict = 0.0
    occupied_spawn_points: set = field(default_factory=set)
    spawn_failures: int = 0
    timeout_wait_s: float = 0.0

    def clear(self) -> None:
        self.disconnect_after_ticks, self.drop_sensor_frames, self.slow_sensor_s = None, set(), 0.0
        self.occupied_spawn_points, self.spawn_failures, self.timeout_wait_s = set(), 0, 0.0

    def _for(self, value, actor) -> object:
        if isinstance(value, dict):
            for key in (actor.id, actor.attributes.get("role_name")):
                if key in value:
                    return value[key]
            return None
        return value

    def drops(self, actor, frame: int) -> bool:
        frames = self._for(self.drop_sensor_frames, actor)
        return bool(frames) and frame in frames

    def delay(self, actor) -> float:
        return float(self._for(self.slow_sensor_s, actor) or 0.0)


class ActorState:
    """One actor as the server holds it (kinematics in CARLA's frame, velocities in m/s, angular in deg/s)."""

    def __init__(self, actor_id: int, type_id: str, attributes: dict, kind: str):
        self.id, self.type_id, self.attributes, self.kind = actor_id, type_id, attributes, kind
        self.alive, self.parent_id, self.rel, self.attachment_type = True, 0, Transform(), 0
        self.x = self.y = self.z = self.pitch = self.yaw = self.roll = 0.0
        self.vel = self.acc = self.angvel = (0.0, 0.0, 0.0)
        self.extent, self.box_z = (0.1, 0.1, 0.1), 0.0
        self.control, self.light_state, self.physics, self.autopilot_port = VehicleControl(), 0, True, None
        self.drive, self.z_off, self.vz_fall, self.odometer = Drive(), 0.0, 0.0, 0.0
        self.stream: SensorStream | None = None
        self.sensor_tick, self.last_capture = 0.0, None

    @property
    def role_name(self) -> str:
        return self.attributes.get("role_name", "")

    def place(self, transform: Transform) -> None:
        loc, rot = transform.location, transform.rotation
        self.x, self.y, self.z = loc.x, loc.y, loc.z
        self.pitch, self.yaw, self.roll = rot.pitch, rot.yaw, rot.roll

    def world(self, actors: dict) -> tuple:
        """(x, y, z, pitch, yaw, roll) in the world; attached actors follow their parent rigidly."""
        parent = actors.get(self.parent_id) if self.parent_id else None
        if parent is None:
            return self.x, self.y, self.z, self.pitch, self.yaw, self.roll
        px, py, pz, pp, pyaw, pr = parent.world(actors)
        f, r, u = rotation_columns(pp, pyaw, pr)
        loc = self.rel.location
        x = px + loc.x * f[0] + loc.y * r[0] + loc.z * u[0]
        y = py + loc.x * f[1] + loc.y * r[1] + loc.z * u[1]
        z = pz + loc.x * f[2] + loc.y * r[2] + loc.z * u[2]
        rot = self.rel.rotation
        if abs(pp) < 1e-9 and abs(pr) < 1e-9:
            return x, y, z, rot.pitch, pyaw + rot.yaw, rot.roll
        return x, y, z, pp + rot.pitch, pyaw + rot.yaw, pr + rot.roll  # small-angle composition

    def transform(self, actors: dict) -> Transform:
        x, y, z, p, yaw, r = self.world(actors)
        return Transform(Location(x, y, z), Rotation(p, yaw, r))

    def velocity(self, actors: dict) -> Vector3D:
        parent = actors.get(self.parent_id) if self.parent_id else None
        return Vector3D(*(parent.vel if parent is not None else self.vel))


def boxes_overlap(a: ActorState, b: ActorState, margin: float = 0.0) -> bool:
    """2-D oriented rectangle overlap (separating axes) plus a vertical overlap test."""
    if abs((a.z + a.box_z) - (b.z + b.box_z)) > a.extent[2] + b.extent[2]:
        return False
    dx, dy = b.x - a.x, b.y - a.y
    if math.hypot(dx, dy) > math.hypot(*a.extent[:2]) + math.hypot(*b.extent[:2]) + margin:
        return False
    axes = []
    for s in (a, b):
        c, n = math.cos(math.radians(s.yaw)), math.sin(math.radians(s.yaw))
        axes += [(c, n), (-n, c)]

    def radius(s, ax):
        c, n = math.cos(math.radians(s.yaw)), math.sin(math.radians(s.yaw))
        return abs(ax[0] * c + ax[1] * n) * (s.extent[0] + margin / 2) + abs(-ax[0] * n + ax[1] * c) * (
            s.extent[1] + margin / 2
        )

    return all(abs(dx * ax[0] + dy * ax[1]) <= radius(a, ax) + radius(b, ax) for ax in axes)


class SensorStream:
    """Delivers one sensor's data to its ``listen`` callback from a thread of its own, in frame order, after the
    tick that produced it (as the real client's streaming threads do)."""

    def __init__(self, actor: ActorState, callback, make_data, server):
        self.actor, self.callback, self.make_data, self.server = actor, callback, make_data, server
        self.queue: queue.Queue = queue.Queue()
        self.listening = True
        self.delivered = 0
        self.thread = threading.Thread(target=self._run, name=f"carla-double-sensor-{actor.id}", daemon=True)
        self.thread.start()

    def put(self, item) -> None:
        if self.listening:
            self.queue.put(item)

    def stop(self) -> None:
        self.listening = False
        self.queue.put(None)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None or not self.listening:
                return
            try:
                data = self.make_data(item)
                delay = self.server.faults.delay(self.actor)
                if delay > 0:
                    time.sleep(delay)
                if self.listening:
                    self.callback(data)
                    self.delivered += 1
            except Exception:  # the real client prints callback errors and carries on
                print(f"carla_double: error in sensor {self.actor.id} callback:", file=sys.stderr)
                traceback.print_exc()
