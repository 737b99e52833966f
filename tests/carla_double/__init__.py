"""carla_double: an in-process double of the CARLA Python client API (0.9.15 / 0.9.16 UE4, 0.10.0 UE5), for tests.

Import it in place of ``carla`` (the collector reads the module name from ``SPTRAIN_CARLA_MODULE``). It mirrors
the real module's names, argument names, defaults, units (metres, degrees, deg/s for angular velocity), CARLA's
left-handed frame (x forward, y right, z up; positive yaw turns x towards y), LibCarla's rotation and transform
maths, Boost.Python's behaviour where callers can see it (enums are int subclasses with ``names``/``values``;
wrong argument types raise ``ArgumentError``, a TypeError; ``set_light_state`` needs a ``VehicleLightState``,
``set_attribute`` strings), and the real errors (time-out message, spawn collision, blueprint/attribute lookup).

Servers live in this process: ``serve(host, port, version, maps, faults)`` or the ``CARLA_DOUBLE_SERVERS``
environment variable (read at import; see ``server``); a client to a host:port without a server gets the real
time-out RuntimeError. A server offers the towns of its version (UE4: Town01-07 and Town10HD, each with an
``_Opt`` twin; 0.10.0: Town10HD_Opt and Mine_01), built procedurally (``towns``): divided multi-lane highway
loops, curvy rural loops with hills, and grid towns with 3- and 4-way junctions, sidewalks and curved corners,
with OpenDRIVE-consistent lanes, marks and waypoints (``roads``, ``mapapi``). Time advances only on ticks (in
synchronous mode by ``fixed_delta_seconds``; in asynchronous mode a tick or ``wait_for_tick`` steps 0.05 s or
the fixed delta). Vehicles on autopilot follow their lanes under the Traffic Manager's parameters
(``dynamics``); sensors deliver from their own threads after the tick (``state``, ``sensors``, ``images``).

What is simplified (the deliberate differences from real CARLA):

* no rendering and no physics engine: images are synthetic (sky, ground, the ego lane and its lines, seen from
  the camera's pose; the frame number coded in the top-left 16 x 16 pixels); vehicles move kinematically;
* no traffic lights, signs, walkers, props or landmarks (``is_at_traffic_light()`` is False, landmark queries
  return []); only ``sensor.camera.rgb`` and ``sensor.other.collision`` can be spawned;
* towns are procedural stand-ins with the real names, not the real geometry; the 0.10.0 catalogue is that
  build's 13 vehicles (no mining truck); speed limits: 30 km/h in towns, 60 rural, 90 on highways, 40 in Mine_01;
* the free-running asynchronous server steps only when a client ticks or waits for a tick;
* values are float64 (CARLA stores float32, so ``Location(0.1).x`` differs in the 8th digit);
* a time-out raises at once unless ``set_timeout_wait_cap(s)`` or ``Faults.timeout_wait_s`` ask for a wait;
* ``Map(name, xodr)``, OpenDRIVE worlds, recording/replaying, light manager, debug drawing are absent;
* TM: no traffic-light / sign logic (the ignore_* percentages are stored), ``keep_slow_lane_rule_percentage``,
  hybrid physics and ``set_path`` are stored but do not change the motion; longitudinal control is IDM, lane
  changes take 3 s, a junction admits one flow at a time (first come, first served);
* no collision response: vehicles driven into each other overlap (a collision sensor reports every tick of it);
  ``get_acceleration`` is the change of velocity over the tick, ``get_angular_velocity`` is (0, pitch rate,
  yaw rate) in deg/s;
* ``str(ActorAttribute)`` is the ``ActorAttribute(id=...,type=...,value=...)`` form (Boost tries the operator<<
  overload first); blueprint ``tags`` are the id's parts in order.

Mirrored on purpose because callers trip over them on a real server: ``Transform.transform(p)``,
``transform_vector`` and ``inverse_transform`` change ``p`` in place; ``as_str()`` of an Int attribute raises
("bad attribute cast"); destroying a vehicle leaves its attached sensors alive; a second ``destroy()`` returns
False; ``apply_settings`` with a fixed delta ticks; lanes with a positive id report pitch ``360 - pitch``.

Double-only names (not in ``carla``): ``serve``, ``stop_all``, ``serve_from_env``, ``get_server``, ``Server``,
``Faults``, ``client_id``, ``set_timeout_wait_cap``, ``frame_of``.
"""

from . import command
from .actors import Actor, ActorList, Sensor, ServerSideSensor, Vehicle
from .blueprints import ActorAttribute, ActorBlueprint, BlueprintLibrary
from .client import Client, TrafficManager, World, client_id
from .enums import (
    ActorAttributeType,
    ActorState,
    AttachmentType,
    ColorConverter,
    LaneChange,
    LaneMarkingColor,
    LaneMarkingType,
    LaneType,
    MapLayer,
    TrafficLightState,
    VehicleLightState,
)
from .geom import BoundingBox, Color, GeoLocation, Location, Rotation, Transform, Vector2D, Vector3D
from .images import CollisionEvent, Image, SensorData, frame_of
from .mapapi import Junction, Map, Waypoint
from .server import Server, serve, serve_from_env, set_timeout_wait_cap, stop_all
from .server import lookup as _lookup
from .state import Faults
from .values import (
    ActorSnapshot,
    LaneMarking,
    Timestamp,
    VehicleControl,
    WeatherParameters,
    WorldSettings,
    WorldSnapshot,
)


def get_server(host: str = "localhost", port: int = 2000):
    """The server served at host:port in this process, or None."""
    return _lookup(host, port)


__all__ = [
    "Actor",
    "ActorAttribute",
    "ActorAttributeType",
    "ActorBlueprint",
    "ActorList",
    "ActorSnapshot",
    "ActorState",
    "AttachmentType",
    "BlueprintLibrary",
    "BoundingBox",
    "Client",
    "CollisionEvent",
    "Color",
    "ColorConverter",
    "GeoLocation",
    "Image",
    "Junction",
    "LaneChange",
    "LaneMarking",
    "LaneMarkingColor",
    "LaneMarkingType",
    "LaneType",
    "Location",
    "Map",
    "MapLayer",
    "Rotation",
    "Sensor",
    "SensorData",
    "ServerSideSensor",
    "Timestamp",
    "TrafficLightState",
    "TrafficManager",
    "Transform",
    "Vector2D",
    "Vector3D",
    "Vehicle",
    "VehicleControl",
    "VehicleLightState",
    "Waypoint",
    "WeatherParameters",
    "World",
    "WorldSettings",
    "WorldSnapshot",
    "command",
    "Faults",
    "Server",
    "client_id",
    "frame_of",
    "get_server",
    "serve",
    "serve_from_env",
    "set_timeout_wait_cap",
    "stop_all",
]

serve_from_env()
