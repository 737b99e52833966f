"""Closed-loop step cost: render both cameras, pack, vision + policy (onnxruntime), controls, simulator step.

Usage: python bench/bench_drive.py EXPORT_DIR [--steps 400] [--threads 1]

Runs one lane_keep road test frame by frame with the model driver and reports milliseconds per stage and steps per
second. onnxruntime runs on one thread; --threads sets OMP_NUM_THREADS for numpy.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before numpy / onnxruntime load their pools

    from sunnypilot_training.collector.builtin.builtin_backend import noise_rng, world_renderer
    from sunnypilot_training.collector.builtin.simulation import DrivingWorld
    from sunnypilot_training.collector.frames import pack_frames
    from sunnypilot_training.driving.drivers import Inputs, ModelDriver
    from sunnypilot_training.driving.suites import road_tests

    test = road_tests("lane_keep", 1, duration_s=args.steps * 0.05 + 1)[0]
    world = DrivingWorld(test.scenario, 0, test.index, test.duration_s)
    driver = ModelDriver(args.export_dir)  # onnxruntime sessions on one thread each
    driver.start(world)
    renderer, rng = world_renderer(world), noise_rng(0, 0)
    totals = {"render": 0.0, "pack": 0.0, "models+controls": 0.0, "simulate": 0.0}
    for _ in range(args.steps):
        t0 = time.perf_counter()
        road, wide = renderer.render(world.camera_pose(), world.vehicle_boxes(), rng)
        t1 = time.perf_counter()
        packed = pack_frames(road[None], wide[None])
        t2 = time.perf_counter()
        out = driver.drive(world, Inputs(packed["img"][0], packed["big_img"][0], 0, False, False))
        t3 = time.perf_counter()
        world.step(out.command)
        t4 = time.perf_counter()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += dt
        if world.done:
            break
    total = sum(totals.values())
    print("| stage | ms per step |\n|---|---|")
    for key, value in totals.items():
        print(f"| {key} | {1000 * value / args.steps:.1f} |")
    print(f"| **total** | **{1000 * total / args.steps:.1f}** ({args.steps / total:.1f} steps/s) |")


if __name__ == "__main__":
    main()
