"""The built-in simulator as a collector backend: simulate -> label -> render -> pack -> write one shard.

Episodes run in this process, or in ``workers`` spawned processes (the same on Linux and Windows).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...episodes.shards import ShardWriter
from ...workers import run_jobs
from ..backend_api import Done, EpisodeResult, EpisodeSpec
from ..frames import camera_attrs, pack_frames
from ..labels import compute_labels
from ..scenarios import get_scenario
from .blas import one_blas_thread
from .render.renderer import Renderer
from .simulation import DrivingWorld

SIMULATOR_NAME = "builtin"
SIMULATOR_VERSION = "2.1"  # bump when the simulator's output for a given seed changes
# (2.0: a human-like expert; 2.1: device-like cameras, varied pavement, paint and verges)
NOISE_STREAM = 0x5E45  # the sensor-noise random stream of an episode, apart from the simulation's
WRITE_BLOCK_FRAMES = 40


def noise_rng(seed: int, episode_index: int) -> np.random.Generator:
    """The episode's sensor-noise stream (apart from the simulation's, so rendering never changes the driving)."""
    return np.random.default_rng([seed, episode_index, NOISE_STREAM])


def world_renderer(world: DrivingWorld) -> Renderer:
    """The renderer of a world's episode, with its camera mount (residual calibration, wide camera rotation)."""
    m = world.mount
    return Renderer(world.world, world.lighting, device_from_calib_rpy=m.calib_rpy,
                    wide_from_device_rpy=m.wide_from_device_rpy, mount_rpy=m.mount_rpy)


def episode_attrs(world, spec: EpisodeSpec) -> dict:
    """The shard attributes of one built-in episode: simulator, scenario, seed, camera mount, traffic convention."""
    return {"simulator": SIMULATOR_NAME, "simulator_version": SIMULATOR_VERSION, "scenario": spec.scenario,
            "seed": spec.seed, "episode_index": spec.episode_index, "dt_s": world.dt_s,
            "cameras": camera_attrs(height_m=world.mount.height_m, mount_rpy=world.mount.mount_rpy,
                                    calib_rpy=world.mount.calib_rpy,
                                    wide_from_device_rpy=world.mount.wide_from_device_rpy),
            "traffic_convention": world.scenario.traffic_convention, "label_tail_s": float(spec.label_tail_s)}


def run_episode(spec: EpisodeSpec) -> EpisodeResult:
    """The expert drives one episode through the stepped world; each recorded frame is rendered as it happens, and
    the world runs on through the label tail unrendered."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    start = clock
    world = DrivingWorld(get_scenario(spec.scenario), spec.seed, spec.episode_index, spec.simulated_s)
    renderer = world_renderer(world)
    rng = noise_rng(spec.seed, spec.episode_index)
    T = spec.n_recorded
    attrs = episode_attrs(world, spec)
    lap("simulate")
    with ShardWriter(spec.output_dir, spec.name, T, attrs) as writer:
        for block_start in range(0, T, WRITE_BLOCK_FRAMES):
            n = min(WRITE_BLOCK_FRAMES, T - block_start)
            road = np.empty((n, 256, 512, 3), np.uint8)
            wide = np.empty_like(road)
            for j in range(n):
                road[j], wide[j] = renderer.render(world.camera_pose(), world.vehicle_boxes(), rng)
                lap("render")
                world.step(world.expert_command())
                lap("simulate")
            packed = pack_frames(road, wide)
            lap("pack")
            writer.write_frames(block_start, packed)
            lap("write")
        while not world.done:  # the label tail
            world.step(world.expert_command())
        lap("simulate")
        labels = compute_labels(world.truth(), T)
        lap("label")
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
        for result in run_jobs(run_episode, specs, workers, here=one_blas_thread):
            done(result)


BACKEND = BuiltinBackend()
