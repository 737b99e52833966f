"""The in-process fake CARLA server, and the registry that maps host:port to servers.

``serve(host, port, version, maps, faults)`` starts one; ``CARLA_DOUBLE_SERVERS`` (read when the package is
imported, so ``multiprocessing`` spawn workers get their own copies) lists servers to start automatically::

    CARLA_DOUBLE_SERVERS="localhost:2000=0.9.16;localhost:2003=0.10.0|maps=Town10HD_Opt|disconnect_after_ticks=50"

(optional ``|key=value`` fields: ``maps`` (bare names joined by '+'), ``disconnect_after_ticks``,
``drop_sensor_frames`` (ids joined by '+'), ``slow_sensor_s``, ``spawn_failures``, ``occupied_spawn_points``).
``127.0.0.1`` and ``localhost`` are the same host.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time

from . import blueprints, dynamics, sensors, towns
from .errors import SPAWN_COLLISION, timeout_message
from .state import ActorState, Faults, boxes_overlap
from .values import ActorSnapshot, Timestamp, WeatherParameters, WorldSettings, WorldSnapshot, _copy_weather

ASYNC_DELTA_S = 0.05
_TIMEOUT_WAIT_CAP = [0.0]
_REGISTRY: dict = {}
_LOCK = threading.Lock()


def set_timeout_wait_cap(seconds: float) -> None:
    """How long an RPC to a missing or disconnected server blocks before its time-out error (at most the
    client's timeout; the real client waits the whole timeout). Default 0: raise at once."""
    _TIMEOUT_WAIT_CAP[0] = float(seconds)


def _host(host: str) -> str:
    host = str(host).strip().lower()
    return "localhost" if host in ("127.0.0.1", "localhost", "::1") else host


def lookup(host: str, port: int):
    with _LOCK:
        return _REGISTRY.get((_host(host), int(port)))


def raise_timeout(timeout_s: float, host: str, port: int, wait_s: float = 0.0):
    wait = min(timeout_s, max(wait_s, _TIMEOUT_WAIT_CAP[0]))
    if wait > 0:
        time.sleep(wait)
    raise RuntimeError(timeout_message(timeout_s, host, port))


class Server:
    """A fake CARLA server. Attributes tests can assert on:

    ``host``, ``port``, ``version``, ``maps`` (full paths offered), ``map_name`` (bare name loaded), ``loads``
    (names passed to load_world, in order), ``episode_id``, ``settings`` (current WorldSettings), ``weather``,
    ``frame``, ``elapsed_seconds``, ``ticks`` (frames stepped), ``tick_log`` ([(frame, client id, reason)],
    reason 'tick', 'apply_settings' or 'wait_for_tick'), ``tick_callers`` (set of client ids that called
    World.tick; see ``client_id``), ``actors`` ({id: ActorState}, also destroyed ones), ``alive_actors()``,
    ``vehicles()``, ``sensors()``, ``traffic_managers`` ({port: TMState with .synchronous, .seed, .hybrid,
    .global_speed_pct, .global_distance, .vehicles (per-vehicle parameters)}), ``tm_synchronous(port=8000)``,
    ``log`` (warnings the real server or client would print), ``faults``, ``connected``, ``reconnect()``,
    ``stop()``.
    """

    def __init__(self, host="localhost", port=2000, version="0.9.16", maps=None, faults=None):
        self.host, self.port, self.version = _host(host), int(port), str(version)
        ue5 = self.version.startswith("0.10")
        names = list(towns.UE5_MAPS) if ue5 else [n for b in towns.UE4_MAPS for n in (b, b + "_Opt")]
        if maps is not None:
            wanted = {
                towns.base_name(str(m).rsplit("/", 1)[-1]) if not ue5 else str(m).rsplit("/", 1)[-1] for m in maps
            }
            names = [n for n in names if n in wanted or towns.base_name(n) in wanted]
        self.maps = sorted(f"/Game/Carla/Maps/{n}" for n in names)
        self.faults = faults if faults is not None else Faults()
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.running = True
        self._rng = random.Random(self.port)
        self.frame, self.ticks, self.tick_log, self.log, self.loads = self._rng.randrange(1000, 5000), 0, [], [], []
        self.actors: dict[int, ActorState] = {}
        self.traffic_managers: dict[int, dynamics.TMState] = {}
        self._next_id, self._on_tick, self._next_cb = 1, {}, 1
        default = (
            "Town10HD_Opt"
            if any(m.endswith("/Town10HD_Opt") for m in self.maps)
            else (self.maps[0].rsplit("/", 1)[-1] if self.maps else "Town10HD_Opt")
        )
        self._start_episode(default, True)

    # --- state --------------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        n = self.faults.disconnect_after_ticks
        return self.running and (n is None or self.ticks < n)

    def reconnect(self) -> None:
        self.faults.disconnect_after_ticks = None

    def stop(self) -> None:
        self.running = False
        with _LOCK:
            if _REGISTRY.get((self.host, self.port)) is self:
                del _REGISTRY[(self.host, self.port)]
        for a in self.actors.values():
            if a.stream is not None:
                a.stream.stop()

    def alive_actors(self) -> list:
        return [a for a in self.actors.values() if a.alive]

    def vehicles(self) -> list:
        return [a for a in self.alive_actors() if a.kind == "vehicle"]

    def sensors(self) -> list:
        return [a for a in self.alive_actors() if a.kind == "sensor"]

    @property
    def tick_callers(self) -> set:
        return {c for _, c, reason in self.tick_log if reason == "tick"}

    def tm_synchronous(self, port: int = 8000) -> bool:
        tm = self.traffic_managers.get(int(port))
        return bool(tm and tm.synchronous)

    @property
    def elapsed_seconds(self) -> float:
        return self.elapsed

    def gate(self, timeout_s: float, host: str, port: int) -> None:
        """Every RPC passes here: a stopped or disconnected server answers with the time-out error."""
        if not self.connected:
            raise_timeout(timeout_s, host, port, self.faults.timeout_wait_s)

    # --- episodes -----------------------------------------------------------------------------------------------
    def _start_episode(self, name: str, reset_settings: bool) -> None:
        for a in self.alive_actors():
            self._destroy(a.id)
        self.map_name, self.network, self.junction_claims = name, towns.build(name), {}
        self.episode_id = self._rng.getrandbits(62)
        self.elapsed, self.delta = 0.0, 0.0
        if reset_settings or not hasattr(self, "settings"):
            self.settings = WorldSettings()
        self.weather = _copy_weather(WeatherParameters.ClearNoon)
        self.blueprints = blueprints.library_for(self.version)
        spectator = self._new_actor("spectator", {}, "spectator")
        spectator.z = 50.0

    def load(self, map_name: str, reset_settings: bool) -> None:
        name = str(map_name)
        if name.startswith("/Game/"):
            path = name[:-5] if name.endswith(".umap") else name
            found = path in self.maps
        else:
            path = next((m for m in self.maps if m.rsplit("/", 1)[-1] == name), None)
            found = path is not None and "/" not in name
        if not found:
            raise RuntimeError("std::exception" if self.version.startswith("0.10") else "map not found")
        with self.lock:
            self.loads.append(name)
            self._start_episode(path.rsplit("/", 1)[-1], reset_settings)

    def _new_actor(self, type_id: str, attributes: dict, kind: str) -> ActorState:
        a = ActorState(self._next_id, type_id, attributes, kind)
        self._next_id += 1
        self.actors[a.id] = a
        return a

    # --- actors -------------------------------------------------------------------------------------------------
    def spawn(self, bp, transform, parent_id: int = 0, attachment_type: int = 0) -> ActorState:
        with self.lock:
            kind = bp.id.split(".")[0]
            parent = self.actors.get(parent_id) if parent_id else None
            if parent_id and (parent is None or not parent.alive):
                raise RuntimeError(f"Spawn failed because parent actor {parent_id} was not found")
            a = ActorState(self._next_id, bp.id, bp._values(), kind)
            if kind == "vehicle":
                a.place(transform)
                a.extent = blueprints.vehicle_box(self.version, bp.id)
                a.box_z = a.extent[2]
                found = self.network.project(a.x, a.y, a.z, -2)
                if found is not None and found[2] < 1.0:
                    ground = found[0].road.pose(found[1])[2]
                    a.z_off = max(0.0, a.z - ground)
                    a.z = ground + a.z_off
                if self._collides(a):
                    raise RuntimeError(SPAWN_COLLISION)
            elif kind == "sensor":
                a.parent_id, a.rel, a.attachment_type = parent_id, transform, int(attachment_type)
                if not parent_id:
                    a.place(transform)
                a.sensor_tick = float(a.attributes.get("sensor_tick", "0") or 0)
            else:
                raise RuntimeError(f"the CARLA double cannot spawn {bp.id!r}")
            self._next_id += 1
            self.actors[a.id] = a
            return a

    def _collides(self, a: ActorState) -> bool:
        if self.faults.spawn_failures > 0:
            self.faults.spawn_failures -= 1
            return True
        points = self.network.spawn
        for i in self.faults.occupied_spawn_points:
            if 0 <= i < len(points):
                x, y, _, _, _ = points[i][0].centre(points[i][1])
                if (x - a.x) ** 2 + (y - a.y) ** 2 < 4.0:
                    return True
        return any(boxes_overlap(a, b) for b in self.vehicles())

    def _destroy(self, actor_id: int) -> bool:
        a = self.actors.get(int(actor_id))
        if a is None or not a.alive:
            return False
        a.alive = False
        if a.stream is not None:
            a.stream.stop()
            a.stream = None
        for tm in self.traffic_managers.values():
            tm.vehicles.pop(a.id, None)
        return True

    def destroy(self, actor_id: int) -> bool:
        with self.lock:
            return self._destroy(actor_id)

    def traffic_manager(self, port: int) -> dynamics.TMState:
        with self.lock:
            tm = self.traffic_managers.get(int(port))
            if tm is None or not tm.alive:
                tm = self.traffic_managers[int(port)] = dynamics.TMState(int(port))
            return tm

    # --- time ---------------------------------------------------------------------------------------------------
    def tick(self, client_id: int, reason: str = "tick") -> int:
        with self.lock:
            dt = self.settings.fixed_delta_seconds or ASYNC_DELTA_S
            self.frame += 1
            self.elapsed += dt
            self.delta = dt
            self.ticks += 1
            self.tick_log.append((self.frame, client_id, reason))
            movers = sorted(self.vehicles(), key=lambda v: v.id)
            for a in movers:
                if not a.physics:
                    a.vel = a.acc = a.angvel = (0.0, 0.0, 0.0)
                    continue
                tm = self.traffic_managers.get(a.autopilot_port) if a.autopilot_port is not None else None
                if tm is not None and tm.alive:
                    dynamics.autopilot_step(self, tm, a, dt, movers)
                else:
                    a.drive.lane = None
                    dynamics.manual_step(self, a, dt)
            sensors.capture(self, dt)
            snapshot = self.snapshot()
            for cb in list(self._on_tick.values()):
                sensors.call_later(cb, snapshot)
            self.cond.notify_all()
            return self.frame

    def snapshot(self) -> WorldSnapshot:
        with self.lock:
            actors = {}
            for a in self.alive_actors():
                t = a.transform(self.actors)
                actors[a.id] = ActorSnapshot._make(
                    a.id, t, a.velocity(self.actors), sensors.vec(a.angvel), sensors.vec(a.acc)
                )
            ts = Timestamp(self.frame, self.elapsed, self.delta, time.monotonic())
            return WorldSnapshot._make(self.episode_id, ts, actors)

    def wait_for_tick(self, seconds: float, host: str, port: int) -> WorldSnapshot:
        with self.lock:
            if not self.settings.synchronous_mode:
                self.tick(0, "wait_for_tick")  # the free-running server steps on its own
                return self.snapshot()
            frame = self.frame
            if not self.cond.wait_for(lambda: self.frame != frame or not self.connected, timeout=seconds):
                raise RuntimeError(timeout_message(seconds, host, port))
            return self.snapshot()

    def apply_settings(self, settings: WorldSettings) -> int:
        with self.lock:
            s = settings._copy()
            if s.synchronous_mode and s.fixed_delta_seconds is None:
                msg = (
                    "WARNING: synchronous mode enabled with variable delta seconds. It is highly recommended "
                    "to set 'fixed_delta_seconds' when running on synchronous mode."
                )
                self.log.append(msg)
                print(msg, file=sys.stderr)
            fds = s.fixed_delta_seconds
            if s.substepping and fds is not None and fds > s.max_substep_delta_time * s.max_substeps + 1e-9:
                self.log.append(
                    f"substepping: fixed_delta_seconds {fds:g} > max_substep_delta_time * max_substeps "
                    f"({s.max_substep_delta_time:g} * {s.max_substeps}); physics steps get longer "
                    f"than max_substep_delta_time"
                )
            self.settings = s
            return self.frame

    def on_tick(self, callback) -> int:
        with self.lock:
            cb_id = self._next_cb
            self._next_cb += 1
            self._on_tick[cb_id] = callback
            return cb_id

    def remove_on_tick(self, cb_id: int) -> None:
        with self.lock:
            self._on_tick.pop(int(cb_id), None)


def serve(host: str = "localhost", port: int = 2000, version: str = "0.9.16", maps=None, faults=None) -> Server:
    """Starts a fake server at host:port (replacing one already there) and returns it."""
    server = Server(host, port, version, maps, faults)
    with _LOCK:
        old = _REGISTRY.get((server.host, server.port))
        _REGISTRY[(server.host, server.port)] = server
    if old is not None:
        old.running = False
    return server


def stop_all() -> None:
    with _LOCK:
        servers = list(_REGISTRY.values())
    for s in servers:
        s.stop()


def serve_from_env(text: str | None = None) -> list:
    """Starts the servers listed in CARLA_DOUBLE_SERVERS (or ``text``)."""
    text = os.environ.get("CARLA_DOUBLE_SERVERS", "") if text is None else text
    started = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        head, *fields = entry.split("|")
        address, _, version = head.partition("=")
        host, _, port = address.rpartition(":")
        opts = dict(f.split("=", 1) for f in fields if "=" in f)
        faults = Faults()
        if "disconnect_after_ticks" in opts:
            faults.disconnect_after_ticks = int(opts["disconnect_after_ticks"])
        if "drop_sensor_frames" in opts:
            faults.drop_sensor_frames = {int(v) for v in opts["drop_sensor_frames"].split("+") if v}
        if "occupied_spawn_points" in opts:
            faults.occupied_spawn_points = {int(v) for v in opts["occupied_spawn_points"].split("+") if v}
        faults.slow_sensor_s = float(opts.get("slow_sensor_s", 0.0))
        faults.spawn_failures = int(opts.get("spawn_failures", 0))
        maps = opts["maps"].split("+") if opts.get("maps") else None
        started.append(serve(host or "localhost", int(port), version or "0.9.16", maps, faults))
    return started
