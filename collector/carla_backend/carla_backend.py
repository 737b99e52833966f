"""The CARLA backend of ``sptrain collect``: episodes on one or several servers, with retries and cleanup.

Episode k of ``--seed S`` draws every decision from (scenario, S, k), whichever server runs it; with
``--workers N`` worker i runs the i-th, (i+N)-th, ... pending episodes against server i (RPC port
base + 3 i, Traffic Manager port tm + i). A lost connection is retried (the episode runs again from its
start once the server answers); an episode that still fails is not written, and the command ends with an
error listing it after the other episodes are done. Re-running the command collects only what is missing.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from ...contract.camera import CAMERA_HEIGHT_M
from ...contract.constants import DT_S, TrafficConvention
from ...episodes.shards import ShardWriter
from ...errors import ConfigError, SimulatorError
from ...workers import spawn_context
from ..backend_api import Done, EpisodeResult, EpisodeSpec
from ..frames import camera_attrs
from ..labels import compute_labels
from ..scenarios import get_scenario
from .actors import CAMERA_MOUNT_X_M, choose_spawns
from .carla_episode import drive
from .carla_truth import episode_truth
from .client import (
    DEFAULT_TIMEOUT_S,
    ServerAddress,
    ServerUnreachable,
    connect,
    is_connection_error,
    parse_version,
    server_addresses,
    wait_for_server,
)
from .schedule import episode_rng, schedule_episode
from .sensors import SensorFrameError
from .versions import carla_scenario, choose_map, family_of
from .world_session import CarlaSession

SIMULATOR_NAME = "carla"
BACKEND_VERSION = "carla-1"  # bump when the backend's output for a given server, seed and episode changes
STOP_GRACE_S = 60.0  # on Ctrl+C workers get this long to clean their server up


@dataclass(frozen=True)
class CarlaOptions:
    host: str
    base_port: int
    tm_port: int
    workers: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = 2

    def addresses(self) -> list[ServerAddress]:
        return server_addresses(self.host, self.base_port, self.tm_port, self.workers)


def run_episode_on(client, version: tuple[int, int, int], address: ServerAddress, spec: EpisodeSpec,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> EpisodeResult:
    """Collect one episode on a connected server and write its shard."""
    start = time.perf_counter()
    scenario = get_scenario(spec.scenario)
    family = family_of(version)
    mapping = carla_scenario(family, spec.scenario)
    map_name = choose_map(family, spec.scenario, list(client.get_available_maps()))
    rng = episode_rng(scenario, spec.seed, spec.episode_index)
    schedule = schedule_episode(scenario, mapping, rng, spec.simulated_s, DT_S)
    n_frames = spec.n_recorded  # the world runs on through the label tail
    with CarlaSession(client, address, map_name, seed=int(rng.integers(2**31 - 1)), timeout_s=timeout_s) as session:
        spawns, rule = choose_spawns(session.world.get_map(), mapping.rule, rng)
        attrs = {"simulator": SIMULATOR_NAME, "simulator_version": BACKEND_VERSION,
                 "carla_server_version": ".".join(map(str, version)), "carla_engine": family.engine,
                 "carla_port": address.port,
                 "map": map_name, "spawn_rule": rule.__dict__, "scenario": spec.scenario, "seed": spec.seed,
                 "episode_index": spec.episode_index, "dt_s": DT_S, "weather": schedule.weather,
                 "lead_behaviour": schedule.lead,
                 "cameras": camera_attrs(mount_m={"x": CAMERA_MOUNT_X_M, "z": CAMERA_HEIGHT_M}),
                 "traffic_convention": TrafficConvention.RIGHT_HAND.value, "label_tail_s": float(spec.label_tail_s)}
        timings = {}
        with ShardWriter(spec.output_dir, spec.name, n_frames, attrs) as writer:
            rec = drive(session, schedule, spawns, rng, spec.n_simulated, writer, mapping.traffic_radius_m,
                        n_recorded=n_frames)
            timings["drive"] = time.perf_counter() - start
            truth, signals = episode_truth(rec, session.world.get_map(), session.carla,
                                           TrafficConvention.RIGHT_HAND.value)
            writer.write_labels(compute_labels(truth, n_frames))
            writer.update_attrs({"lead_behaviour": schedule.lead if rec.lead_spawned else "none",
                                 "lead_planned": schedule.lead, "lane_changes": signals.lane_changes_done,
                                 "lane_changes_refused": signals.lane_changes_refused, "turns": signals.turns,
                                 "vehicles": int(rec.n_others), "camera_height_m": truth.camera_height_m})
            writer.commit()
            timings["label+write"] = time.perf_counter() - start - timings["drive"]
    return EpisodeResult(name=spec.name, n_frames=n_frames, seconds=time.perf_counter() - start, timings_s=timings)


def _retryable(exc: BaseException) -> bool:
    """A lost connection or a lost sensor frame: worth running the episode again."""
    return isinstance(exc, (SensorFrameError, ServerUnreachable)) or is_connection_error(exc)


class CarlaWorker:
    """Runs episodes against one server, reconnecting and retrying when the connection is lost."""

    def __init__(self, address: ServerAddress, options: CarlaOptions):
        self.address, self.options = address, options
        self.client, self.version = None, None

    def run(self, spec: EpisodeSpec) -> EpisodeResult:
        """The episode's result; a failed result when it still fails after the retries (nothing written).

        Raises SimulatorError for what no retry can fix (an unsupported server, missing towns) and lets bugs
        through.
        """
        last: BaseException | None = None
        for attempt in range(self.options.retries + 1):
            try:
                if self.client is None:
                    self.client, self.version = connect(self.address, self.options.timeout_s)
                    CarlaSession.destroy_leftovers(self.client, self.address)
                return run_episode_on(self.client, self.version, self.address, spec, self.options.timeout_s)
            except (RuntimeError, SimulatorError) as exc:
                if not _retryable(exc):
                    if isinstance(exc, SimulatorError):
                        raise
                    # a server-side refusal (e.g. every spawn point occupied): this episode fails, others go on
                    return EpisodeResult(name=spec.name, n_frames=0, seconds=0.0, error=f"{self.address}: {exc}")
                last, self.client = exc, None
                if attempt < self.options.retries:
                    print(f"warning: {spec.name} on {self.address} failed ({exc}); retrying "
                          f"({attempt + 1}/{self.options.retries})", file=sys.stderr)
                    wait_for_server(self.address, self.options.timeout_s, poll_s=min(2.0, self.options.timeout_s))
        return EpisodeResult(name=spec.name, n_frames=0, seconds=0.0,
                             error=f"{self.address}: {last} (after {self.options.retries + 1} attempts)")


def check_servers(options: CarlaOptions) -> list[tuple[ServerAddress, tuple[int, int, int]]]:
    """Every server answers and runs a supported version that the installed client speaks; SimulatorError
    before anything is collected."""
    found = []
    for address in options.addresses():
        client, version = connect(address, options.timeout_s)
        server_family = family_of(version)
        client_text = client.get_client_version()
        if family_of(parse_version(client_text)) is not server_family:
            raise SimulatorError(
                f"the CARLA Python client is {client_text} but the server at {address} runs "
                f"{'.'.join(map(str, version))} ({server_family.engine}); install the client that matches the "
                f"server: the wheel in CARLA_ROOT/PythonAPI/carla/dist (pip install --force-reinstall <wheel>)")
        found.append((address, version))
    return found


def _interrupt_on_sigterm() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _run_share(worker: CarlaWorker, specs: list[EpisodeSpec], emit: Done) -> None:
    """Run a worker's episodes in order; a fatal error fails the rest of them (reported) and is raised."""
    for k, spec in enumerate(specs):
        try:
            emit(worker.run(spec))
        except Exception as exc:
            for rest in specs[k:]:
                emit(EpisodeResult(name=rest.name, n_frames=0, seconds=0.0, error=f"{worker.address}: {exc}"))
            raise


def _worker_main(address: ServerAddress, options: CarlaOptions, specs: list[EpisodeSpec], results) -> None:
    _interrupt_on_sigterm()  # a terminate() runs the sessions' cleanup
    try:
        _run_share(CarlaWorker(address, options), specs, results.put)
    except Exception as exc:  # already reported as failed episodes; the parent raises for them
        print(f"worker for {address} stopped: {exc}", file=sys.stderr)


def run_carla(todo: list[EpisodeSpec], options: CarlaOptions, done: Done) -> None:
    """Collect the pending episodes; ``done`` receives each result (written or failed) as it comes."""
    if not todo:
        return
    servers = check_servers(options)
    if len(servers) == 1 or len(todo) == 1:
        try:
            _run_share(CarlaWorker(servers[0][0], options), todo, done)
        except SimulatorError:
            pass  # reported as failed episodes: the summary lists them and the command fails
        return
    ctx = spawn_context()
    results = ctx.Queue()
    procs = []
    for i, (address, _) in enumerate(servers):
        share = todo[i:: len(servers)]
        if share:
            procs.append((ctx.Process(target=_worker_main, args=(address, options, share, results), daemon=False),
                          {s.name for s in share}))
    for proc, _ in procs:
        proc.start()
    pending = set().union(*(names for _, names in procs))
    try:
        while pending:
            try:
                result = results.get(timeout=5.0)
            except Exception:
                for proc, names in procs:
                    lost = names & pending
                    if not proc.is_alive() and lost and results.empty():
                        for name in sorted(lost):
                            done(EpisodeResult(name=name, n_frames=0, seconds=0.0,
                                               error=f"worker exited with code {proc.exitcode}"))
                        pending -= lost
                continue
            pending.discard(result.name)
            done(result)
    finally:
        _stop_workers([p for p, _ in procs])


def _stop_workers(procs: list) -> None:
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(10.0)


class CarlaBackend:
    """The collector's view of CARLA: ``options`` is a :class:`CarlaOptions` (one server per worker)."""

    name = SIMULATOR_NAME
    version = BACKEND_VERSION

    def check(self, options: Any) -> None:
        if not isinstance(options, CarlaOptions):
            raise ConfigError("the CARLA simulator needs its server options (host, ports)")
        check_servers(options)  # no server, or an unsupported one: an error before anything runs

    def run(self, specs: list[EpisodeSpec], workers: int, options: Any, done: Done) -> None:
        run_carla(specs, options, done)


BACKEND = CarlaBackend()
