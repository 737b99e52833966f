"""Collect episodes into shards: schedule the episodes, skip finished ones, run them with their backend, summarise.

Episode ``k`` of seed ``S`` is always the same episode whichever worker runs it: every random stream of an episode
is seeded from (scenario, S, k). Re-running a command skips complete shards and removes temporaries of dead runs.
The simulators are backends (``backend_api.SimulatorBackend``) registered in ``BACKENDS``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..contract.constants import DT_S
from ..episodes.schema import LABEL_DEFINITIONS_VERSION, SCHEMA_VERSION
from ..episodes.shards import clean_stale_temporaries, is_complete
from ..errors import ConfigError, ShardFormatError, SimulatorError
from .backend_api import EpisodeResult, EpisodeSpec, SimulatorBackend
from .builtin import builtin_backend
from .carla_backend import carla_backend
from .scenarios import get_scenario

# progress bars share a thread lock: tqdm's default process lock leaks a semaphore when worker processes are spawned
tqdm.set_lock(threading.RLock())

BACKENDS: dict[str, SimulatorBackend] = {b.name: b for b in (builtin_backend.BACKEND, carla_backend.BACKEND)}
SIMULATORS = tuple(BACKENDS)
DEFAULT_EPISODE_SECONDS = 60.0
MIN_EPISODE_SECONDS = 12.0  # the plan needs 10 s of future: shorter episodes hold no valid frame


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
            names = ", ".join(r.name for r in self.failed)
            raise SimulatorError(f"{len(self.failed)} episode(s) failed and were not written ({names}): "
                                 f"{self.failed[0].error}; re-run the same command to collect only the missing ones")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def backend_of(simulator: str) -> SimulatorBackend:
    try:
        return BACKENDS[simulator]
    except KeyError:
        raise ConfigError(f"unknown simulator {simulator!r}; expected one of {list(BACKENDS)}") from None


def expected_attrs(spec: EpisodeSpec) -> dict[str, object]:
    """Attributes a complete shard of ``spec`` must carry to be reused instead of collected again."""
    return {"simulator": spec.simulator, "simulator_version": backend_of(spec.simulator).version,
            "schema_version": SCHEMA_VERSION, "label_definitions_version": LABEL_DEFINITIONS_VERSION,
            "n_frames": spec.n_recorded, "label_tail_s": float(spec.label_tail_s)}


ABSENT_ATTRS = {"label_tail_s": 0.0}  # what a shard written before the attribute existed means by its absence


def check_existing(spec: EpisodeSpec, path: Path, extra: dict[str, object] | None = None) -> None:
    """A complete shard is reused only if it is what this command would write; ShardFormatError otherwise."""
    attrs = json.loads((path / "zarr.json").read_text(encoding="utf-8")).get("attributes", {})
    expected = {**expected_attrs(spec), "driver": None, **(extra or {})}  # expert shards carry no driver
    found = {k: attrs.get(k, ABSENT_ATTRS.get(k)) for k in expected}
    differ = {k: (found[k], v) for k, v in expected.items() if found[k] != v}
    if differ:
        listed = ", ".join(f"{k}={f!r} (expected {e!r})" for k, (f, e) in differ.items())
        raise ShardFormatError(f"{path} exists but was written differently: {listed}; delete it (or the folder) to "
                               f"collect it again, or choose another --output")


def schedule_episodes(simulator: str, scenario: str, episodes: int, output_dir: str | os.PathLike, seed: int,
                      duration_s: float, label_tail_s: float = 0.0) -> list[EpisodeSpec]:
    """The episodes 0 .. episodes-1 of ``seed`` (validated: scenario, simulator, count and length), each recording
    ``duration_s`` and simulating ``label_tail_s`` more for the labels of its last frames."""
    get_scenario(scenario)  # ConfigError listing the names
    backend_of(simulator)
    if episodes < 1:
        raise ConfigError(f"--episodes {episodes}; expected at least 1")
    if label_tail_s < 0:
        raise ConfigError(f"--label-tail-seconds {label_tail_s:g}; expected 0 or more")
    if duration_s < 1.0:
        raise ConfigError(f"--episode-seconds {duration_s:g}; expected at least 1")
    if duration_s + label_tail_s < MIN_EPISODE_SECONDS:
        raise ConfigError(f"--episode-seconds {duration_s:g} with --label-tail-seconds {label_tail_s:g}; expected at "
                          f"least {MIN_EPISODE_SECONDS:g} s together (the plan label needs 10 s of future driving: "
                          f"e.g. --label-tail-seconds 10)")
    return [EpisodeSpec(simulator, scenario, int(seed), k, float(duration_s), str(output_dir), float(label_tail_s))
            for k in range(episodes)]


def collect(specs: list[EpisodeSpec], workers: int = 1, progress: bool = True, options: Any = None,
            backend: SimulatorBackend | None = None) -> CollectSummary:
    """Run the scheduled episodes whose shards are not complete yet; returns the summary.

    ``options`` are the backend's (a ``CarlaOptions`` for CARLA, nothing for the built-in simulator). ``backend``
    replaces the simulator's registered one (the driving layer's on-policy episodes); its ``extra_attrs``, if any,
    must match for a complete shard to be reused.
    """
    if workers < 1:
        raise ConfigError(f"--workers {workers}; expected at least 1")
    backend = backend or backend_of(specs[0].simulator)
    output_dir = Path(specs[0].output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = CollectSummary(output_dir=output_dir)
    summary.cleaned = [p.name for p in clean_stale_temporaries(output_dir)]
    todo = []
    for spec in specs:
        complete = is_complete(output_dir / spec.name)
        if complete:
            check_existing(spec, output_dir / spec.name, getattr(backend, "extra_attrs", None))
            summary.skipped.append(spec.name)
        else:
            todo.append(spec)
    if todo:
        backend.check(options)  # no server, or an unsupported one: an error before anything runs
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="episode", desc="collect", disable=not progress or not todo)

    def done(result: EpisodeResult) -> None:
        (summary.failed if result.error is not None else summary.written).append(result)
        bar.update(1)
        bar.set_postfix_str(f"{summary.frames / (time.perf_counter() - start):.0f} frames/s")

    backend.run(todo, workers, options, done)
    bar.close()
    summary.wall_s = time.perf_counter() - start
    summary.written.sort(key=lambda r: r.name)
    return summary
