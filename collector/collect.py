"""Collect episodes into shards: plan the episodes, skip finished ones, run them (in parallel), summarise.

Episode ``k`` of ``--seed S`` is always the same episode whichever worker runs it: every random stream of
an episode is seeded from (scenario, S, k). Re-running a command skips complete shards and removes
temporaries of dead runs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..contract.constants import DT_S
from ..errors import ConfigError
from ..episodes import shards as S

SIMULATORS = ("builtin", "carla")
DEFAULT_EPISODE_SECONDS = 60.0
MIN_EPISODE_SECONDS = 12.0  # the plan needs 10 s of future: shorter episodes hold no valid frame


@dataclass(frozen=True)
class EpisodeSpec:
    simulator: str
    scenario: str
    seed: int
    episode_index: int
    duration_s: float
    output_dir: str

    @property
    def name(self) -> str:
        return S.shard_name(self.scenario, self.seed, self.episode_index)


@dataclass
class EpisodeResult:
    name: str
    n_frames: int
    seconds: float
    timings_s: dict[str, float] = field(default_factory=dict)  # stage -> seconds (profile of the episode)
    error: str | None = None  # set when the episode failed and was not written


@dataclass
class CollectSummary:
    output_dir: Path
    written: list[EpisodeResult] = field(default_factory=list)
    failed: list[EpisodeResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def frames(self) -> int:
        return sum(r.n_frames for r in self.written)

    def stage_totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for r in self.written:
            for k, v in r.timings_s.items():
                totals[k] = totals.get(k, 0.0) + v
        return totals

    def format(self) -> str:
        size_mb = sum(_dir_size(self.output_dir / r.name) for r in self.written) / 1e6
        minutes = self.frames * DT_S / 60
        fps = self.frames / self.wall_s if self.wall_s > 0 else 0.0
        lines = [
            f"output:   {self.output_dir}",
            f"episodes: {len(self.written)} written, {len(self.skipped)} already complete (skipped)"
            + (f", {len(self.cleaned)} stale temporaries removed" if self.cleaned else ""),
            f"frames:   {self.frames} ({minutes:.1f} min of driving) in {self.wall_s:.1f} s = {fps:.1f} frames/s",
        ]
        if self.written:
            lines.append(f"size:     {size_mb:.1f} MB ({size_mb / max(minutes, 1e-9):.1f} MB per minute of driving)")
            totals = self.stage_totals()
            busy = sum(totals.values()) or 1.0
            lines.append("time:     " + ", ".join(f"{k} {100 * v / busy:.0f}%" for k, v in totals.items()))
        for r in self.failed:
            lines.append(f"FAILED:   {r.name}: {r.error}")
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """SimulatorError listing the episodes that were not written (the written ones stay)."""
        if self.failed:
            from ..errors import SimulatorError

            names = ", ".join(r.name for r in self.failed)
            raise SimulatorError(f"{len(self.failed)} episode(s) failed and were not written ({names}): "
                                 f"{self.failed[0].error}; re-run the same command to collect only the missing ones")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_episode(spec: EpisodeSpec) -> EpisodeResult:
    """Run one episode with its backend and write its shard (in the calling process)."""
    if spec.simulator == "builtin":
        from .builtin.builtin_backend import run_episode as run_builtin

        return run_builtin(spec)
    raise ConfigError(f"unknown simulator {spec.simulator!r}; expected one of {list(SIMULATORS)}")


def expected_attrs(spec: EpisodeSpec) -> dict[str, object]:
    """Attributes a complete shard of ``spec`` must carry to be reused instead of collected again."""
    from .builtin.builtin_backend import SIMULATOR_VERSION
    from .carla_backend.carla_backend import BACKEND_VERSION

    versions = {"builtin": SIMULATOR_VERSION, "carla": BACKEND_VERSION}
    return {"simulator": spec.simulator, "simulator_version": versions[spec.simulator],
            "schema_version": S.SCHEMA_VERSION, "label_definitions_version": S.LABEL_DEFINITIONS_VERSION,
            "n_frames": int(round(spec.duration_s / DT_S))}


def check_existing(spec: EpisodeSpec, path: Path) -> None:
    """A complete shard is reused only if it is what this command would write; ShardFormatError otherwise."""
    import json

    from ..errors import ShardFormatError

    attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    differ = {k: (attrs.get(k), v) for k, v in expected_attrs(spec).items() if attrs.get(k) != v}
    if differ:
        found = ", ".join(f"{k}={f!r} (expected {e!r})" for k, (f, e) in differ.items())
        raise ShardFormatError(f"{path} exists but was written differently: {found}; delete it (or the folder) to "
                               f"collect it again, or choose another --output")


def plan_episodes(simulator: str, scenario: str, episodes: int, output_dir: str | os.PathLike, seed: int,
                  duration_s: float) -> list[EpisodeSpec]:
    from .scenarios import get_scenario

    get_scenario(scenario)  # ConfigError listing the names
    if simulator not in SIMULATORS:
        raise ConfigError(f"--simulator {simulator!r}; expected one of {list(SIMULATORS)}")
    if episodes < 1:
        raise ConfigError(f"--episodes {episodes}; expected at least 1")
    if duration_s < MIN_EPISODE_SECONDS:
        raise ConfigError(f"--episode-seconds {duration_s}; expected at least {MIN_EPISODE_SECONDS} (the plan "
                          f"label needs 10 s of future driving)")
    return [EpisodeSpec(simulator, scenario, int(seed), k, float(duration_s), str(output_dir))
            for k in range(episodes)]


def collect(specs: list[EpisodeSpec], workers: int = 1, progress: bool = True, carla=None) -> CollectSummary:
    """Run the planned episodes whose shards are not complete yet; returns the summary.

    ``carla`` (a ``CarlaOptions``) is required for the CARLA simulator: there ``workers`` servers are used.
    """
    from tqdm import tqdm

    if workers < 1:
        raise ConfigError(f"--workers {workers}; expected at least 1")
    output_dir = Path(specs[0].output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = CollectSummary(output_dir=output_dir)
    summary.cleaned = [p.name for p in S.clean_stale_temporaries(output_dir)]
    todo = []
    for spec in specs:
        complete = S.is_complete(output_dir / spec.name)
        if complete:
            check_existing(spec, output_dir / spec.name)
        (summary.skipped if complete else todo).append(spec)
    summary.skipped = [s.name for s in summary.skipped]
    if specs[0].simulator == "carla" and todo:
        from .carla_backend.carla_backend import check_servers

        if carla is None:
            raise ConfigError("the CARLA simulator needs its server options (host, ports)")
        check_servers(carla)  # no server, or an unsupported one: an error before anything runs
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="episode", desc="collect", disable=not progress or not todo)
    frames = 0

    def done(result: EpisodeResult) -> None:
        nonlocal frames
        if result.error is not None:
            summary.failed.append(result)
            bar.update(1)
            return
        summary.written.append(result)
        frames += result.n_frames
        bar.update(1)
        bar.set_postfix_str(f"{frames / (time.perf_counter() - start):.0f} frames/s")

    if specs[0].simulator == "carla":
        from .carla_backend.carla_backend import run_carla

        run_carla(todo, carla, done)
    elif workers == 1 or len(todo) <= 1:
        for spec in todo:
            done(run_episode(spec))
    else:
        ctx = mp.get_context("spawn")  # same behaviour on Linux and Windows
        with ctx.Pool(processes=min(workers, len(todo))) as pool:
            for result in pool.imap_unordered(run_episode, todo):
                done(result)
    bar.close()
    summary.wall_s = time.perf_counter() - start
    summary.written.sort(key=lambda r: r.name)
    return summary


# --- command line (shared by `sptrain collect` and `python collector/collect_data.py`) -------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--simulator", default="builtin", choices=SIMULATORS, help="simulator backend")
    from .scenarios import scenario_names

    parser.add_argument("--scenario", required=True, help=f"scenario: {', '.join(scenario_names())}")
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (one shard each)")
    parser.add_argument("--output", required=True, help="directory for the shards")
    parser.add_argument("--seed", type=int, default=0, help="base seed; episode k of seed S is reproducible")
    parser.add_argument("--episode-seconds", type=float, default=DEFAULT_EPISODE_SECONDS,
                        help=f"length of each episode in seconds (default {DEFAULT_EPISODE_SECONDS:g}; the last "
                             f"10 s of each hold no plan label)")
    parser.add_argument("--workers", type=int, default=1,
                        help="parallel processes (default 1); with CARLA, one server per worker")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_carla_arguments(parser)


def add_carla_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The CARLA server options: --host, --port, ... (``prefix`` 'carla-': --carla-host, ... for the pipeline);
    the timeout is --carla-timeout either way."""
    from .carla_backend.client import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_S, DEFAULT_TM_PORT, PORT_STRIDE

    group = parser.add_argument_group("CARLA server (with --simulator carla)")
    group.add_argument(f"--{prefix}host", default=DEFAULT_HOST, help=f"CARLA host (default {DEFAULT_HOST})")
    group.add_argument(f"--{prefix}port", type=int, default=DEFAULT_PORT,
                       help=f"CARLA RPC port (default {DEFAULT_PORT})")
    group.add_argument(f"--{prefix}tm-port", type=int, default=DEFAULT_TM_PORT,
                       help=f"Traffic Manager port (default {DEFAULT_TM_PORT}); worker i uses this + i")
    group.add_argument(f"--{prefix}base-port", type=int, default=None,
                       help=f"with --workers N: the servers listen on this, +{PORT_STRIDE}, +{2 * PORT_STRIDE}, "
                            f"... (default: the port)")
    group.add_argument("--carla-timeout", type=float, default=DEFAULT_TIMEOUT_S,
                       help=f"seconds to wait for the server's answers (default {DEFAULT_TIMEOUT_S:g})")
    group.add_argument(f"--{prefix}retries", type=int, default=2,
                       help="times a failed episode is run again after a lost connection (default 2)")


def carla_options(args: argparse.Namespace, workers: int, prefix: str = ""):
    """CarlaOptions from the parsed flags of :func:`add_carla_arguments` (same ``prefix``)."""
    from .carla_backend.carla_backend import CarlaOptions

    def flag(name: str):
        return getattr(args, (prefix + name).replace("-", "_"))

    base, retries = flag("base-port"), flag("retries")
    if retries < 0:
        raise ConfigError(f"--{prefix}retries {retries}; expected 0 or more")
    return CarlaOptions(host=flag("host"), base_port=flag("port") if base is None else base, tm_port=flag("tm-port"),
                        workers=workers, timeout_s=args.carla_timeout, retries=retries)


def run(args: argparse.Namespace) -> int:
    specs = plan_episodes(args.simulator, args.scenario, args.episodes, args.output, args.seed,
                          args.episode_seconds)
    carla = carla_options(args, args.workers) if args.simulator == "carla" else None
    summary = collect(specs, workers=args.workers, progress=not args.no_progress, carla=carla)
    print(summary.format())
    summary.raise_for_failures()
    return 0


def build_parser(prog: str = "collect_data.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Collect simulated driving episodes into Zarr shards.")
    add_arguments(parser)
    return parser
