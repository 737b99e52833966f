"""One episode's hold on a CARLA server: synchronous settings, the Traffic Manager, and full cleanup.

On leaving the ``with`` block, by success, error or Ctrl+C, the sensors stop, every actor this session
spawned is destroyed, the Traffic Manager leaves synchronous mode and the world gets back the settings it had.
"""

from __future__ import annotations

import sys

from ...contract.constants import DT_S
from ...errors import SimulatorError
from .client import DEFAULT_TIMEOUT_S, ServerAddress, carla_module, is_connection_error
from .versions import map_basename

# actors of sessions whose cleanup could not reach the server, per "host:port": (episode id of the world, actor
# ids), destroyed after reconnecting if the server still runs that episode (a restarted server reuses ids)
LEFTOVER_ACTORS: dict[str, tuple[int, list[int]]] = {}
# the settings such a session found (and could not put back): the next session restores these, not ours
LEFTOVER_SETTINGS: dict[str, object] = {}
MAX_SUBSTEP_S = 0.01  # physics sub-steps: fixed_delta <= max_substep_delta_time * max_substeps
MAX_SUBSTEPS = 10


class CarlaSession:
    def __init__(self, client, address: ServerAddress, map_name: str, seed: int,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        self.client, self.address, self.map_name, self.seed = client, address, map_name, int(seed)
        self.timeout_s = float(timeout_s)  # for a tick, and for a sensor's data of a frame
        self.carla = carla_module()
        self.world = None
        self.tm = None
        self.actors: list = []  # spawned by us, destroyed in reverse order
        self.sensors: list = []
        self._original = None
        self.cleanup_errors: list[str] = []

    # --- entering -----------------------------------------------------------------------------------
    def __enter__(self) -> CarlaSession:
        try:
            self._enter()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _enter(self) -> None:
        world = self.client.get_world()
        self._original = LEFTOVER_SETTINGS.pop(str(self.address), None) or world.get_settings()
        if map_basename(world.get_map().name) != self.map_name:
            world = self.client.load_world(self.map_name)
        self.world = world
        settings = world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = DT_S
        settings.substepping = True
        settings.max_substep_delta_time = MAX_SUBSTEP_S
        settings.max_substeps = MAX_SUBSTEPS
        world.apply_settings(settings)
        self.tm = self.client.get_trafficmanager(self.address.tm_port)
        self.tm.set_synchronous_mode(True)
        self.tm.set_random_device_seed(self.seed)
        self.tm.set_hybrid_physics_mode(False)

    # --- spawning and ticking -----------------------------------------------------------------------
    def spawn(self, blueprint, transform, attach_to=None):
        """Spawn an actor (None if the place is occupied); it is destroyed when the session ends."""
        if attach_to is None:
            actor = self.world.try_spawn_actor(blueprint, transform)
        else:
            actor = self.world.try_spawn_actor(blueprint, transform, attach_to=attach_to)
        if actor is not None:
            self.actors.append(actor)
            if hasattr(actor, "listen"):
                self.sensors.append(actor)
        return actor

    def tick(self) -> int:
        """Advance the world by one fixed step; the new frame number."""
        return int(self.world.tick(self.timeout_s))

    # --- leaving ------------------------------------------------------------------------------------
    def __exit__(self, exc_type, exc, tb) -> None:
        server_gone = exc is not None and is_connection_error(exc)
        steps = [("stop sensors", self._stop_sensors), ("destroy actors", self._destroy_actors),
                 ("release the Traffic Manager", self._release_tm), ("restore world settings", self._restore)]
        for what, step in steps:
            try:
                step()
            except Exception as err:  # keep cleaning; the original error (if any) stays the one raised
                self.cleanup_errors.append(f"{what}: {err}")
                if is_connection_error(err):
                    server_gone = True
                    break
        if self.cleanup_errors:
            left = [a.id for a in self.actors]
            if left and self.world is not None:
                episode, ids = LEFTOVER_ACTORS.get(str(self.address), (self.world.id, []))
                LEFTOVER_ACTORS[str(self.address)] = (self.world.id, (ids if episode == self.world.id else []) + left)
            if server_gone and self._original is not None:
                LEFTOVER_SETTINGS.setdefault(str(self.address), self._original)
            if server_gone:
                self._drop_tm()
            note = (f" (the server stopped answering: {len(left)} actors are destroyed once it answers again)"
                    if server_gone else "")
            print(f"warning: CARLA cleanup at {self.address} was incomplete{note}: "
                  + "; ".join(self.cleanup_errors), file=sys.stderr)

    def _drop_tm(self) -> None:
        """Release this process's Traffic Manager of the lost connection: the client keeps one per port for the
        whole process, so a reconnected client would otherwise get the stale one back."""
        try:
            if self.tm is not None:
                self.tm.shut_down()
        except Exception as err:  # the server is gone: releasing may fail as well
            self.cleanup_errors.append(f"release the Traffic Manager: {err}")

    @staticmethod
    def destroy_leftovers(client, address: ServerAddress) -> int:
        """Destroy actors an earlier session could not clean up, if the server still runs the same episode."""
        episode, ids = LEFTOVER_ACTORS.pop(str(address), (None, []))
        if not ids or client.get_world().id != episode:  # restarted or another map: those ids are not ours
            return 0
        destroy = carla_module().command.DestroyActor
        client.apply_batch_sync([destroy(i) for i in ids], False)
        return len(ids)

    def _stop_sensors(self) -> None:
        for sensor in self.sensors:
            if sensor.is_alive:
                sensor.stop()

    def _destroy_actors(self) -> None:
        alive = [a for a in reversed(self.actors) if a.is_alive]
        if alive:
            destroy = self.carla.command.DestroyActor
            responses = self.client.apply_batch_sync([destroy(a.id) for a in alive], False)
            failed = [r.error for r in responses if r.error]
            if failed:
                raise SimulatorError(f"{len(failed)} actors could not be destroyed: {failed[0]}")
        self.actors, self.sensors = [], []

    def _release_tm(self) -> None:
        if self.tm is not None:
            self.tm.set_synchronous_mode(False)

    def _restore(self) -> None:
        if self.world is not None and self._original is not None:
            self.world.apply_settings(self._original)
