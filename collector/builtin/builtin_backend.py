"""The built-in simulator as a collector backend: simulate -> label -> render -> pack -> write one shard.

Episodes run in this process, or in ``workers`` spawned processes (the same on Linux and Windows).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

import numpy as np

from ...episodes.shards import ShardWriter
from ..backend_api import Done, EpisodeResult, EpisodeSpec
from ..frames import camera_attrs, pack_frames
from ..labels import compute_labels
from ..scenarios import get_scenario
from .render.renderer import Renderer
from .simulation import simulate_episode

SIMULATOR_NAME = "builtin"
SIMULATOR_VERSION = "1.1"  # bump when the simulator's output for a given seed changes
NOISE_STREAM = 0x5E45  # the sensor-noise random stream of an episode, apart from the simulation's
WRITE_BLOCK_FRAMES = 40


def run_episode(spec: EpisodeSpec) -> EpisodeResult:
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    start = clock
    scenario = get_scenario(spec.scenario)
    sim = simulate_episode(scenario, spec.seed, spec.episode_index, spec.duration_s)
    lap("simulate")
    labels = compute_labels(sim.truth)
    lap("label")
    renderer = Renderer(sim.world, sim.lighting)
    lap("render")
    rng = np.random.default_rng([spec.seed, spec.episode_index, NOISE_STREAM])
    T = sim.truth.n_frames
    attrs = {"simulator": SIMULATOR_NAME, "simulator_version": SIMULATOR_VERSION, "scenario": spec.scenario,
             "seed": spec.seed, "episode_index": spec.episode_index, "dt_s": sim.truth.dt_s,
             "cameras": camera_attrs(), "traffic_convention": sim.truth.traffic_convention}
    with ShardWriter(spec.output_dir, spec.name, T, attrs) as writer:
        for block_start in range(0, T, WRITE_BLOCK_FRAMES):
            block = range(block_start, min(block_start + WRITE_BLOCK_FRAMES, T))
            road = np.empty((len(block), 256, 512, 3), np.uint8)
            wide = np.empty_like(road)
            for j, t in enumerate(block):
                road[j], wide[j] = renderer.render(sim.truth.ego_pose_ned[t], sim.vehicle_boxes(t), rng)
            lap("render")
            packed = pack_frames(road, wide)
            lap("pack")
            writer.write_frames(block_start, packed)
            lap("write")
        writer.write_labels(labels)
        writer.commit()
        lap("write")
    return EpisodeResult(name=spec.name, n_frames=T, seconds=time.perf_counter() - start, timings_s=timings)


class BuiltinBackend:
    """The collector's view of the built-in simulator (needs no server and no options)."""

    name = SIMULATOR_NAME
    version = SIMULATOR_VERSION

    def check(self, options: Any) -> None:
        return None

    def run(self, specs: list[EpisodeSpec], workers: int, options: Any, done: Done) -> None:
        if workers == 1 or len(specs) <= 1:
            for spec in specs:
                done(run_episode(spec))
            return
        ctx = mp.get_context("spawn")  # same behaviour on Linux and Windows
        with ctx.Pool(processes=min(workers, len(specs))) as pool:
            for result in pool.imap_unordered(run_episode, specs):
                done(result)


BACKEND = BuiltinBackend()
