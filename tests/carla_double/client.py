"""``Client``, ``World`` and ``TrafficManager``: the RPC side of the double.

Every RPC looks the server up by host:port at call time; with no server there (or a stopped / disconnected
one) it raises ``RuntimeError("time-out of <ms>ms while waiting for the simulator, make sure the simulator is
ready and connected to <host>:<port>")`` like LibCarla's TimeoutException. ``World.tick(seconds=0.0)`` and
``wait_for_tick`` use the client's timeout when ``seconds`` is 0, as LibCarla does; ``apply_settings`` with a
fixed delta steps the world until two snapshots show the new delta (LibCarla's World::ApplySettings loop), so in
synchronous mode it advances the frame (normally by two).
"""

from __future__ import annotations

import itertools
import os
import sys

from . import command as cmd
from .actors import Actor, ActorList
from .blueprints import ActorBlueprint, BlueprintLibrary
from .enums import AttachmentType, MapLayer
from .errors import argument_error
from .geom import Transform
from .mapapi import Map
from .server import lookup, raise_timeout
from .values import WeatherParameters, WorldSettings, _copy_weather

CLIENT_VERSION = os.environ.get("CARLA_DOUBLE_CLIENT_VERSION", "0.9.16")
_IDS = itertools.count(1)
_NO_INIT = "This class cannot be instantiated from Python"


def client_id(client) -> int:
    """The id a server's ``tick_log`` / ``tick_callers`` use for ``client``."""
    return client._id


class Client:
    def __init__(self, host="127.0.0.1", port=2000, worker_threads=0):
        if not isinstance(host, str):
            raise argument_error("Client.__init__", self, host, port)
        self._host, self._port, self._timeout, self._id, self._warned = host, int(port), 5.0, next(_IDS), False

    def _server(self):
        server = lookup(self._host, self._port)
        if server is None or not server.running:
            raise_timeout(self._timeout, self._host, self._port)
        server.gate(self._timeout, self._host, self._port)
        return server

    def set_timeout(self, seconds) -> None:
        self._timeout = float(seconds)

    def get_client_version(self) -> str:
        return CLIENT_VERSION

    def get_server_version(self) -> str:
        return self._server().version

    def get_world(self):
        server = self._server()
        if server.version != CLIENT_VERSION and not self._warned:
            self._warned = True
            msg = (
                f"WARNING: Version mismatch detected: You are trying to connect to a simulator that might be "
                f"incompatible with this API\nWARNING: Client API version     = {CLIENT_VERSION}\nWARNING: "
                f"Simulator API version  = {server.version}"
            )
            server.log.append(msg)
            print(msg, file=sys.stderr)
        return World._make(self, server.episode_id)

    def get_available_maps(self) -> list:
        return list(self._server().maps)

    def load_world(self, map_name, reset_settings=True, map_layers=MapLayer.All):
        self._server().load(map_name, bool(reset_settings))
        return self.get_world()

    def reload_world(self, reset_settings=True):
        server = self._server()
        server.load(server.map_name, bool(reset_settings))
        return self.get_world()

    def get_trafficmanager(self, port=8000):
        self._server().traffic_manager(int(port))
        return TrafficManager._make(self, int(port))

    def apply_batch(self, commands, do_tick=False) -> None:
        self.apply_batch_sync(commands, do_tick)

    def apply_batch_sync(self, commands, do_tick=False) -> list:
        server = self._server()
        out = [self._run(server, c) for c in commands]
        if do_tick:
            server.tick(self._id)
        return out

    def _run(self, server, c, future: int = 0):
        aid = getattr(c, "actor_id", 0) or future
        try:
            if isinstance(c, cmd.SpawnActor):
                state = server.spawn(c._blueprint, c.transform, c.parent_id, int(c.attachment_type))
                for then in c._then:
                    r = self._run(server, then, state.id)
                    if r.has_error():
                        return cmd.Response._make(state.id, r.error)
                return cmd.Response._make(state.id)
            a = server.actors.get(aid)
            if a is None or not a.alive:
                raise RuntimeError(
                    "unable to destroy actor: not found"
                    if isinstance(c, cmd.DestroyActor)
                    else f"unable to find actor {aid}"
                )
            handle = Actor._make(self, server, a)
            if isinstance(c, cmd.DestroyActor):
                server.destroy(aid)
            elif isinstance(c, cmd.SetAutopilot):
                handle.set_autopilot(c.enabled, c.tm_port)
            elif isinstance(c, cmd.SetSimulatePhysics):
                a.physics = c.enabled
            elif isinstance(c, cmd.ApplyTransform):
                handle.set_transform(c.transform)
            elif isinstance(c, cmd.ApplyVehicleControl):
                handle.apply_control(c.control)
            elif isinstance(c, cmd.SetVehicleLightState):
                a.light_state = int(c.light_state)
            return cmd.Response._make(aid)
        except RuntimeError as exc:
            return cmd.Response._make(aid, str(exc))

    def __str__(self):
        return f"<carla_double.Client object to {self._host}:{self._port}>"


class World:
    __slots__ = ("_client", "_episode_id")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    @classmethod
    def _make(cls, client, episode_id) -> World:
        w = object.__new__(cls)
        w._client, w._episode_id = client, episode_id
        return w

    id = property(lambda self: self._episode_id)

    def __str__(self):
        return f"World(id={self._episode_id})"

    def _srv(self):
        return self._client._server()

    def get_settings(self) -> WorldSettings:
        return self._srv().settings._copy()

    def apply_settings(self, settings, seconds=0.0) -> int:
        if not isinstance(settings, WorldSettings):
            raise argument_error("World.apply_settings", self, settings)
        server = self._srv()
        frame = server.apply_settings(settings)
        fixed, correct = settings.fixed_delta_seconds, 0
        if fixed is not None:
            for _ in range(30):
                if abs(fixed - server.delta) < 1.1920929e-07:
                    correct += 1
                if correct >= 2:
                    break
                self._srv().tick(self._client._id, "apply_settings")
        return frame

    def tick(self, seconds=0.0) -> int:
        return self._srv().tick(self._client._id)

    def wait_for_tick(self, seconds=0.0):
        c = self._client
        return self._srv().wait_for_tick(seconds or c._timeout, c._host, c._port)

    def on_tick(self, callback) -> int:
        return self._srv().on_tick(callback)

    def remove_on_tick(self, callback_id) -> None:
        self._srv().remove_on_tick(callback_id)

    def get_snapshot(self):
        server = lookup(self._client._host, self._client._port)
        return server.snapshot() if server is not None else self._srv().snapshot()

    def get_map(self) -> Map:
        server = self._srv()
        return Map._make(server.map_name, server.network)

    def get_blueprint_library(self) -> BlueprintLibrary:
        return BlueprintLibrary._make([bp._copy() for bp in self._srv().blueprints])

    def get_spectator(self):
        server = self._srv()
        state = next(a for a in server.alive_actors() if a.kind == "spectator")
        return Actor._make(self._client, server, state)

    def get_weather(self) -> WeatherParameters:
        return _copy_weather(self._srv().weather)

    def set_weather(self, weather) -> None:
        if not isinstance(weather, WeatherParameters):
            raise argument_error("World.set_weather", self, weather)
        self._srv().weather = _copy_weather(weather)

    def spawn_actor(self, blueprint, transform, attach_to=None, attachment_type=AttachmentType.Rigid, bone=""):
        if not isinstance(blueprint, ActorBlueprint) or not isinstance(transform, Transform):
            raise argument_error("World.spawn_actor", self, blueprint, transform)
        if attach_to is not None and not isinstance(attach_to, Actor):
            raise argument_error("World.spawn_actor", self, blueprint, transform, attach_to)
        server = self._srv()
        parent_id = attach_to.id if attach_to is not None else 0
        state = server.spawn(
            blueprint, Transform(transform.location, transform.rotation), parent_id, int(attachment_type)
        )
        return Actor._make(self._client, server, state)

    def try_spawn_actor(self, blueprint, transform, attach_to=None, attachment_type=AttachmentType.Rigid, bone=""):
        try:
            return self.spawn_actor(blueprint, transform, attach_to, attachment_type, bone)
        except RuntimeError:
            return None

    def get_actors(self, actor_ids=None) -> ActorList:
        server = self._srv()
        states = server.alive_actors()
        if actor_ids is not None:
            wanted = [int(i) for i in actor_ids]
            by_id = {a.id: a for a in states}
            states = [by_id[i] for i in wanted if i in by_id]
        return ActorList._make([Actor._make(self._client, server, a) for a in states])

    def get_actor(self, actor_id):
        server = self._srv()
        a = server.actors.get(int(actor_id))
        return Actor._make(self._client, server, a) if a is not None and a.alive else None


class TrafficManager:
    """Parameters go to the server's TMState of this port; vehicles registered with ``set_autopilot`` follow
    them (see ``dynamics``)."""

    __slots__ = ("_client", "_port")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    @classmethod
    def _make(cls, client, port) -> TrafficManager:
        tm = object.__new__(cls)
        tm._client, tm._port = client, port
        return tm

    def _tm(self):
        server = lookup(self._client._host, self._client._port)
        if server is None:
            self._client._server()
        return server.traffic_manager(self._port)

    def _p(self, actor) -> dict:
        return self._tm().params(actor.id if hasattr(actor, "id") else int(actor))

    def get_port(self) -> int:
        return self._port

    def set_synchronous_mode(self, mode_switch) -> None:
        self._tm().synchronous = bool(mode_switch)

    def set_random_device_seed(self, value) -> None:
        self._tm().set_seed(int(value))

    def set_global_distance_to_leading_vehicle(self, distance) -> None:
        self._tm().global_distance = float(distance)

    def global_percentage_speed_difference(self, percentage) -> None:
        self._tm().global_speed_pct = float(percentage)

    def global_lane_offset(self, offset) -> None:
        self._tm().global_lane_offset = float(offset)

    def set_hybrid_physics_mode(self, enabled) -> None:
        self._tm().hybrid = bool(enabled)

    def set_hybrid_physics_radius(self, r) -> None:
        self._tm().hybrid_radius = float(r)

    def set_osm_mode(self, mode_switch) -> None:
        self._tm().osm = bool(mode_switch)

    def set_respawn_dormant_vehicles(self, mode_switch) -> None:
        self._tm().respawn = bool(mode_switch)

    def vehicle_percentage_speed_difference(self, actor, percentage) -> None:
        self._p(actor)["speed_pct"] = float(percentage)

    def set_desired_speed(self, actor, speed) -> None:
        self._p(actor)["desired_speed"] = float(speed)

    def auto_lane_change(self, actor, enable) -> None:
        self._p(actor)["auto_lane_change"] = bool(enable)

    def force_lane_change(self, actor, direction) -> None:
        self._p(actor)["force_lc"] = bool(direction)

    def random_left_lanechange_percentage(self, actor, percentage) -> None:
        self._p(actor)["random_left"] = float(percentage)

    def random_right_lanechange_percentage(self, actor, percentage) -> None:
        self._p(actor)["random_right"] = float(percentage)

    def keep_slow_lane_rule_percentage(self, actor, perc) -> None:
        self._p(actor)["keep_right"] = float(perc)

    def distance_to_leading_vehicle(self, actor, distance) -> None:
        self._p(actor)["distance"] = float(distance)

    def ignore_lights_percentage(self, actor, perc) -> None:
        self._p(actor)["ignore_lights"] = float(perc)

    def ignore_signs_percentage(self, actor, perc) -> None:
        self._p(actor)["ignore_signs"] = float(perc)

    def ignore_vehicles_percentage(self, actor, perc) -> None:
        self._p(actor)["ignore_vehicles"] = float(perc)

    def ignore_walkers_percentage(self, actor, perc) -> None:
        self._p(actor)["ignore_walkers"] = float(perc)

    def vehicle_lane_offset(self, actor, offset) -> None:
        self._p(actor)["lane_offset"] = float(offset)

    def update_vehicle_lights(self, actor, do_update) -> None:
        self._p(actor)["update_lights"] = bool(do_update)

    def set_route(self, actor, path, empty_buffer=True) -> None:
        self._p(actor)["route"] = [str(p) for p in path if str(p) in ("Left", "Right", "Straight")]

    def set_path(self, actor, path, empty_buffer=True) -> None:
        self._p(actor)["path"] = list(path)

    def shut_down(self) -> None:
        self._tm().alive = False
