"""On-policy episodes (DAgger-style): a model drives the built-in simulator and the expert says what it should do.

A model trained only on the expert's driving never sees its own mistakes. Here the exported model drives (as
modeld runs it, through openpilot-style controls), and every frame is labelled as an expert episode would be,
except the plan: the plan label is what the expert would drive *from where the car really is*
(:func:`~.drivers.oracle_plan`: back to the lane centre, or into the lane the expert is changing to, at the
expert's acceleration), not what the model then did. When the car strays more than ``TAKEOVER_M`` from that lane's
centre, that plan drives (through the same controls) until the car has been centred for ``HANDBACK_S``; the
expert's own controller recovers from small errors only. The shards are ordinary
training shards (attribute ``driver``: ``model:<export folder>``); ``sptrain collect --driver model:DIR`` writes
them and training takes them like any other episodes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..collector.backend_api import Done, EpisodeResult, EpisodeSpec
from ..collector.builtin.blas import one_blas_thread
from ..collector.builtin.builtin_backend import (
    SIMULATOR_NAME,
    SIMULATOR_VERSION,
    episode_attrs,
    noise_rng,
    world_renderer,
)
from ..collector.builtin.simulation import DrivingWorld
from ..collector.frames import pack_frames
from ..collector.labels import compute_labels
from ..collector.scenarios import get_scenario
from ..contract.constants import IDX_N, PLAN_WIDTH
from ..episodes.shards import ShardWriter
from ..errors import ConfigError
from ..workers import run_jobs
from .drivers import Inputs, ModelDriver, OracleDriver

TAKEOVER_M = 0.9  # the expert takes the wheel this far from the lane centre (a wheel near the line) ...
HANDBACK_M, HANDBACK_S = 0.3, 1.0  # ... and gives it back once the car has been this close for this long
WRITE_BLOCK_FRAMES = 40
DRIVER_PREFIX = "model:"


def _lane_offset(world: DrivingWorld, lane: int) -> float:
    """The car's offset (m) from the centre of forward lane ``lane`` (the lane the expert means to be in)."""
    return float(world.car.d_cam - world.network.layout.forward_centre_m(lane))


def run_on_policy_episode(spec: EpisodeSpec, export_dir: str, runtime: str = "onnxruntime") -> EpisodeResult:
    """One episode driven by the model in ``export_dir``, labelled by the expert (see the module docstring)."""
    if spec.label_tail_s:  # the model needs every frame to drive: there is nothing to leave unrendered
        raise ConfigError(f"{spec.name}: on-policy episodes record every frame they simulate; got a label tail of "
                          f"{spec.label_tail_s:g} s (drop --label-tail-seconds, give --episode-seconds the length)")
    start = time.perf_counter()
    world = DrivingWorld(get_scenario(spec.scenario), spec.seed, spec.episode_index, spec.duration_s)
    model, oracle = ModelDriver(export_dir, runtime), OracleDriver()
    model.start(world)
    oracle.start(world)
    renderer, rng = world_renderer(world), noise_rng(spec.seed, spec.episode_index)
    T = world.n_frames
    plans = np.zeros((T, IDX_N, PLAN_WIDTH), np.float32)
    expert_frames, centred_s, takeover = 0, 0.0, False
    attrs = {**episode_attrs(world, spec), "driver": DRIVER_PREFIX + Path(export_dir).name}
    with ShardWriter(spec.output_dir, spec.name, T, attrs) as writer:
        for block_start in range(0, T, WRITE_BLOCK_FRAMES):
            n = min(WRITE_BLOCK_FRAMES, T - block_start)
            road = np.empty((n, 256, 512, 3), np.uint8)
            wide = np.empty_like(road)
            for j in range(n):
                road[j], wide[j] = renderer.render(world.camera_pose(), world.vehicle_boxes(), rng)
                packed = pack_frames(road[j][None], wide[j][None])
                expert = world.expert_command()  # what the expert decides now (its lane changes, its pedals)
                s = expert.signals  # the expert's desire (as openpilot's desire helper sets it) and blinkers
                inputs = Inputs(packed["img"][0], packed["big_img"][0], int(s.desire), s.left_blinker, s.right_blinker)
                fallback = oracle.drive(world, inputs)  # the expert's plan from here, through the controls
                plans[block_start + j] = fallback.plan
                offset = abs(_lane_offset(world, oracle.target_lane))
                if takeover:
                    centred_s = centred_s + world.dt_s if offset < HANDBACK_M else 0.0
                    takeover = centred_s < HANDBACK_S
                else:
                    takeover, centred_s = offset > TAKEOVER_M, 0.0
                command = model.drive(world, inputs).command
                if takeover:
                    expert_frames += 1
                    command = fallback.command
                world.step(replace(command, signals=s))
            writer.write_frames(block_start, pack_frames(road, wide))
        labels = compute_labels(world.truth())
        labels["plan"] = plans  # what the expert would drive from each frame, not what the model did
        writer.write_labels(labels)
        writer.update_attrs({"expert_share": expert_frames / max(T, 1)})  # frames the expert had the wheel
        writer.commit()
    return EpisodeResult(name=spec.name, n_frames=T, seconds=time.perf_counter() - start)


def _run(job: tuple[EpisodeSpec, str, str]) -> EpisodeResult:
    spec, export_dir, runtime = job
    try:
        return run_on_policy_episode(spec, export_dir, runtime)
    except Exception as exc:  # reported per episode: the collect summary lists the failures
        return EpisodeResult(name=spec.name, n_frames=0, seconds=0.0, error=f"{type(exc).__name__}: {exc}")


class OnPolicyBackend:
    """The collector's view of on-policy episodes: the built-in simulator, driven by an exported model."""

    name, version = SIMULATOR_NAME, SIMULATOR_VERSION

    def __init__(self, export_dir: str, runtime: str = "onnxruntime"):
        self.export_dir, self.runtime = str(export_dir), runtime
        self.extra_attrs = {"driver": DRIVER_PREFIX + Path(export_dir).name}

    def check(self, options: Any) -> None:
        ModelDriver(self.export_dir, self.runtime)  # ConfigError now if the folder holds no exported models

    def run(self, specs: list[EpisodeSpec], workers: int, options: Any, done: Done) -> None:
        jobs = [(spec, self.export_dir, self.runtime) for spec in specs]
        for result in run_jobs(_run, jobs, workers, here=one_blas_thread):
            done(result)


def on_policy_backend(driver: str) -> OnPolicyBackend | None:
    """The backend for ``--driver``: None for ``expert``, an :class:`OnPolicyBackend` for ``model:EXPORT_DIR``."""
    if driver == "expert":
        return None
    if not driver.startswith(DRIVER_PREFIX) or not driver[len(DRIVER_PREFIX):]:
        raise ConfigError(f"--driver {driver!r}: use 'expert' or 'model:EXPORT_DIR' (a folder written by sptrain "
                          f"export)")
    return OnPolicyBackend(driver[len(DRIVER_PREFIX):])
