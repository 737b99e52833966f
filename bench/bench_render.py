"""Time the built-in renderer on one core: both model frames (img + big_img) per simulated frame.

Two scenes:

* ``--scenario NAME`` (a real episode, e.g. highway_follow): simulates ``--seconds`` of it (not timed), then
  times the ground-raster build, the Renderer's construction and the rendering of every frame, and prints
  ms/frame with the raster build amortised over the episode (what the collector pays) and without it.
* default (synthetic): a 2 km three-lane road on a 500 m radius curve with rolling hills (grade up to ~4 %),
  dashed lane lines, a double yellow and a solid white edge line, a stop line, and six vehicles around an ego
  that drives along the middle lane. Prints the raster build time and ms/frame (median and best of batches).

Examples (one core)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_render.py --scenario highway_follow
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_render.py --frames 200 [--vehicles 0]

Not a test: numbers depend on the machine and its load (run it on an idle machine; the process CPU time it
also prints is less sensitive to other load).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sunnypilot_training.collector.builtin.render.raster import GroundRaster
from sunnypilot_training.collector.builtin.render.renderer import Renderer
from sunnypilot_training.collector.builtin.simulation import simulate_episode
from sunnypilot_training.collector.builtin.world import (
    Lighting,
    Marking,
    MarkingColor,
    MarkingStyle,
    RoadSurface,
    StopLine,
    VehicleBox,
    World,
)

CAMERA_HEIGHT_M = 1.22
VEHICLE_SLOTS = [(20.0, 0.0), (35.0, 3.6), (60.0, -3.6), (90.0, 0.0), (8.0, -3.6), (130.0, 3.6)]  # (ahead, d)
VEHICLE_RGB = [(200, 40, 40), (40, 60, 200), (230, 230, 230), (30, 30, 30), (150, 150, 160), (60, 140, 60)]


def curved_hilly_road(length_m: float = 2000.0, radius_m: float = 500.0, hill_m: float = 2.4) -> RoadSurface:
    """Three 3.6 m lanes around a right-hand curve, with hills of +-hill_m every 600 m."""
    s = np.arange(0.0, length_m + 0.25, 0.5)
    heading = s / radius_m
    x, y = radius_m * np.sin(heading), radius_m * (1.0 - np.cos(heading))
    z = -hill_m * (1.0 - np.cos(2.0 * np.pi * s / 600.0))  # z down: negative is up
    grade = np.arctan(-np.gradient(z, s))
    markings = [
        Marking(-5.4, MarkingStyle.DOUBLE_SOLID, MarkingColor.YELLOW, width_m=0.12),
        Marking(-1.8),
        Marking(1.8),
        Marking(5.4, MarkingStyle.SOLID),
    ]
    centre = np.stack([x, y, z], axis=1)
    return RoadSurface("main", centre, s, heading, grade, -5.9, 5.9, markings, (-3.6, 0.0, 3.6))


def pose_on(road: RoadSurface, s_m: float, d_m: float, up_m: float = 0.0) -> np.ndarray:
    """A body pose standing on the road at (s, d), ``up_m`` above the surface."""
    p = road.point_at(s_m, d_m)
    heading = float(np.interp(s_m, road.s_m, road.heading_rad))
    grade = float(np.interp(s_m, road.s_m, road.grade_rad))
    return np.array([p[0], p[1], p[2] - up_m, 0.0, grade, heading])


def bench_episode(scenario: str, seconds: float) -> None:
    """Raster build + Renderer + every frame of one real episode (seed 1, episode 0), like the collector."""
    sim = simulate_episode(scenario, 1, 0, seconds)
    frames = sim.truth.n_frames
    boxes = [sim.vehicle_boxes(t) for t in range(frames)]  # built before timing: only the renderer is timed
    rng = np.random.default_rng(0)
    t0, c0 = time.perf_counter(), time.process_time()
    renderer = Renderer(sim.world, sim.lighting)
    t1, c1 = time.perf_counter(), time.process_time()
    for t in range(frames):
        renderer.render(sim.truth.ego_pose_ned[t], boxes[t], rng)
    t2, c2 = time.perf_counter(), time.process_time()
    vehicles = np.array([len(b) for b in boxes])
    print(f"{scenario}: {frames} frames ({seconds:.0f} s), vehicles per frame: mean {vehicles.mean():.1f}, "
          f"max {vehicles.max()}; raster + renderer construction {t1 - t0:.2f} s")
    print(f"render incl. construction amortised: {1e3 * (t2 - t0) / frames:.2f} ms/frame "
          f"(process CPU {1e3 * (c2 - c0) / frames:.2f}); render only: {1e3 * (t2 - t1) / frames:.2f} ms/frame "
          f"(process CPU {1e3 * (c2 - c1) / frames:.2f})")


def bench_synthetic(frames: int, batch: int, route: str, n_vehicles: int) -> None:
    """The synthetic curved, hilly road (see the module docstring)."""
    road = curved_hilly_road()
    world = World([road], [StopLine("main", 600.0, -5.4, 5.4)])
    t0 = time.perf_counter()
    raster = GroundRaster(world)
    build_s = time.perf_counter() - t0
    renderer = Renderer(world, Lighting(), raster=raster)
    render = renderer.render if route == "direct" else renderer.render_via_camera
    rng = np.random.default_rng(0)

    def scene(k: int) -> tuple[np.ndarray, list[VehicleBox]]:
        s = 150.0 + 0.5 * k  # 10 m/s at 20 Hz
        vehicles = [
            VehicleBox(pose_on(road, s + ahead + 0.3 * k, d), rgb=VEHICLE_RGB[i], brake_lights=(k // 20 + i) % 2 == 0)
            for i, (ahead, d) in enumerate(VEHICLE_SLOTS[:n_vehicles])
        ]
        return pose_on(road, s, 0.0, CAMERA_HEIGHT_M), vehicles

    scenes = [scene(k) for k in range(frames)]  # built before timing: only the renderer is timed
    render(*scenes[0], rng)  # warm-up (per-camera constants)
    batch_ms, batch_cpu_ms = [], []
    for start in range(0, frames, batch):
        t, t_cpu = time.perf_counter(), time.process_time()
        for k in range(start, start + batch):
            render(*scenes[k], rng)
        batch_ms.append((time.perf_counter() - t) / batch * 1e3)
        batch_cpu_ms.append((time.process_time() - t_cpu) / batch * 1e3)
    median, best = statistics.median(batch_ms), min(batch_ms)
    texels_m = raster.materials.data.size / 1e6
    print(f"raster build: {build_s:.2f} s ({world.roads[0].length_m:.0f} m of road, {texels_m:.1f} M texels)")
    print(f"route={route}: {median:.2f} ms/frame median, {best:.2f} ms/frame best batch "
          f"(img + big_img, {n_vehicles} vehicles) -> {1e3 / median:.0f} frames/s")
    print(f"process CPU time: {statistics.median(batch_cpu_ms):.2f} ms/frame median, {min(batch_cpu_ms):.2f} best "
          "(less sensitive to other load on the machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", help="time a real episode of this scenario instead of the synthetic scene")
    parser.add_argument("--seconds", type=float, default=60.0, help="episode length with --scenario (default 60)")
    parser.add_argument("--frames", type=int, default=200, help="synthetic frames to time (default 200)")
    parser.add_argument("--batch", type=int, default=20, help="synthetic frames per timing batch (default 20)")
    parser.add_argument("--route", choices=["direct", "camera"], default="direct")
    parser.add_argument("--vehicles", type=int, default=len(VEHICLE_SLOTS), help="other vehicles, 0..6 (default 6)")
    args = parser.parse_args()
    if args.scenario:
        bench_episode(args.scenario, args.seconds)
    else:
        bench_synthetic(args.frames, args.batch, args.route, args.vehicles)


if __name__ == "__main__":
    main()
