"""Client-side actor handles: ``Actor``, ``Vehicle``, ``Sensor`` / ``ServerSideSensor`` and ``ActorList``.

As in the real client, getters (transform, velocities, control, light state) read the state received with the
last tick and need no RPC, while commands (destroy, set_*, apply_control, set_autopilot, listen) are RPCs that
fail with the time-out error when the server is gone. Handles compare by identity (two handles of one actor
are different objects). Using a handle after its actor was destroyed raises RuntimeError.
"""

from __future__ import annotations

import fnmatch
import sys

from . import images
from .enums import ActorState as _ActorStateEnum
from .enums import TrafficLightState, VehicleLightState
from .errors import DESTROYED_ACTOR, argument_error
from .geom import BoundingBox, Location, Rotation, Transform, Vector3D
from .state import SensorStream
from .values import VehicleControl

_NO_INIT = "This class cannot be instantiated from Python"


class Actor:
    __slots__ = ("_client", "_server", "_id", "_type_id", "__weakref__")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    @staticmethod
    def _make(client, server, state) -> Actor:
        cls = {"vehicle": Vehicle, "sensor": ServerSideSensor}.get(state.kind, Actor)
        obj = object.__new__(cls)
        obj._client, obj._server, obj._id, obj._type_id = client, server, state.id, state.type_id
        return obj

    def _state(self):
        a = self._server.actors.get(self._id)
        if a is None or not a.alive or not self._server.running:
            raise RuntimeError(DESTROYED_ACTOR)
        return a

    def _rpc(self):
        server = self._client._server()
        if server is not self._server:
            raise RuntimeError(DESTROYED_ACTOR)
        return self._state()

    id = property(lambda self: self._id)
    type_id = property(lambda self: self._type_id)

    @property
    def attributes(self) -> dict:
        a = self._server.actors.get(self._id)
        return dict(a.attributes) if a is not None else {}

    @property
    def is_alive(self) -> bool:
        a = self._server.actors.get(self._id)
        return bool(a is not None and a.alive and self._server.running)

    is_active = is_alive

    @property
    def is_dormant(self) -> bool:
        return False

    @property
    def actor_state(self):
        return _ActorStateEnum.Active if self.is_alive else _ActorStateEnum.Invalid

    @property
    def semantic_tags(self) -> list:
        return [14] if self._type_id.startswith("vehicle.") else []

    @property
    def parent(self):
        a = self._state()
        parent = self._server.actors.get(a.parent_id) if a.parent_id else None
        return Actor._make(self._client, self._server, parent) if parent is not None else None

    @property
    def bounding_box(self) -> BoundingBox:
        a = self._state()
        return BoundingBox(Location(0.0, 0.0, a.box_z), Vector3D(*a.extent))

    def get_world(self):
        from .client import World

        return World._make(self._client, self._server.episode_id)

    def destroy(self) -> bool:
        a = self._server.actors.get(self._id)
        if a is None or not a.alive:
            print(f"WARNING: attempting to destroy an actor that is already dead: {self}", file=sys.stderr)
            return False
        self._rpc()
        return self._server.destroy(self._id)

    def get_transform(self) -> Transform:
        return self._state().transform(self._server.actors)

    def get_location(self) -> Location:
        return self.get_transform().location

    def get_velocity(self) -> Vector3D:
        return self._state().velocity(self._server.actors)

    def get_acceleration(self) -> Vector3D:
        return Vector3D(*self._state().acc)

    def get_angular_velocity(self) -> Vector3D:
        return Vector3D(*self._state().angvel)

    def set_transform(self, transform) -> None:
        if not isinstance(transform, Transform):
            raise argument_error(f"{type(self).__name__}.set_transform", self, transform)
        a = self._rpc()
        with self._server.lock:
            a.place(transform) if not a.parent_id else setattr(
                a, "rel", Transform(transform.location, transform.rotation)
            )
            a.drive.lane, a.z_off, a.vz_fall = None, 0.0, 0.0

    def set_location(self, location) -> None:
        t = self.get_transform()
        self.set_transform(Transform(Location(location), t.rotation))

    def set_simulate_physics(self, enabled=True) -> None:
        self._rpc().physics = bool(enabled)

    def set_enable_gravity(self, enabled=True) -> None:
        self._rpc()

    def set_collisions(self, enabled=True) -> None:
        self._rpc()

    def set_target_velocity(self, velocity) -> None:
        a = self._rpc()
        a.vel = (velocity.x, velocity.y, velocity.z)

    def __str__(self):
        return f"{type(self).__name__}(id={self._id}, type={self._type_id})"

    __repr__ = __str__


class Vehicle(Actor):
    __slots__ = ()

    def apply_control(self, control) -> None:
        if not isinstance(control, VehicleControl):
            raise argument_error("Vehicle.apply_control", self, control)
        a = self._rpc()
        a.control = VehicleControl(
            control.throttle,
            control.steer,
            control.brake,
            control.hand_brake,
            control.reverse,
            control.manual_gear_shift,
            control.gear,
        )

    def get_control(self) -> VehicleControl:
        c = self._state().control
        return VehicleControl(c.throttle, c.steer, c.brake, c.hand_brake, c.reverse, c.manual_gear_shift, c.gear)

    def set_autopilot(self, enabled=True, tm_port=8000) -> None:
        a = self._rpc()
        if enabled:
            tm = self._server.traffic_manager(int(tm_port))
            tm.params(a.id)
            a.autopilot_port = int(tm_port)
        else:
            a.autopilot_port = None
        a.drive.lane = None

    def set_light_state(self, light_state) -> None:
        if not isinstance(light_state, VehicleLightState):
            raise argument_error("Vehicle.set_light_state", self, light_state)
        self._rpc().light_state = int(light_state)

    def get_light_state(self):
        return VehicleLightState(self._state().light_state)

    def get_speed_limit(self) -> float:
        a = self._state()
        lane = a.drive.lane
        if lane is None:
            found = self._server.network.project(a.x, a.y, a.z, -2)
            lane = found[0] if found is not None else None
        return float(lane.road.speed_limit) if lane is not None else 30.0

    def is_at_traffic_light(self) -> bool:
        self._state()
        return False

    def get_traffic_light(self):
        self._state()
        return None

    def get_traffic_light_state(self):
        self._state()
        return TrafficLightState.Green


class Sensor(Actor):
    __slots__ = ()

    def listen(self, callback) -> None:
        a = self._rpc()
        if not callable(callback):
            raise argument_error("Sensor.listen", self, callback)
        if a.stream is not None:
            a.stream.stop()
        a.stream = SensorStream(a, callback, self._data_maker(), self._server)

    def _data_maker(self):
        client, server = self._client, self._server

        def make(item):
            if item[0] == "image":
                cap = item[1]
                x, y, z, p, yaw, r = cap["pose"]
                t = Transform(Location(x, y, z), Rotation(p, yaw, r))
                return images.Image._make(cap["frame"], cap["elapsed"], t, cap["fov"], images.render(cap))
            _, frame, elapsed, pose, parent_id, other_id, impulse = item
            t = Transform(Location(*pose[:3]), Rotation(*pose[3:]))
            actor = Actor._make(client, server, server.actors[parent_id])
            other = Actor._make(client, server, server.actors[other_id])
            return images.CollisionEvent._make(frame, elapsed, t, actor, other, Vector3D(*impulse))

        return make

    def stop(self) -> None:
        a = self._server.actors.get(self._id)
        if a is not None and a.stream is not None:
            a.stream.stop()
            a.stream = None

    def is_listening(self) -> bool:
        a = self._server.actors.get(self._id)
        return bool(a is not None and a.alive and a.stream is not None and a.stream.listening)


class ServerSideSensor(Sensor):
    __slots__ = ()


class ActorList:
    __slots__ = ("_actors",)

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    @classmethod
    def _make(cls, actors: list) -> ActorList:
        obj = object.__new__(cls)
        obj._actors = list(actors)
        return obj

    def filter(self, wildcard_pattern) -> ActorList:
        return ActorList._make([a for a in self._actors if fnmatch.fnmatchcase(a.type_id, wildcard_pattern)])

    def find(self, id):
        return next((a for a in self._actors if a.id == int(id)), None)

    def __getitem__(self, pos):
        return self._actors[pos]

    def __len__(self):
        return len(self._actors)

    def __iter__(self):
        return iter(list(self._actors))

    def __str__(self):
        return "[" + ", ".join(str(a) for a in self._actors) + "]"
