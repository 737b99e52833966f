"""One closed-loop road test: the world steps at 20 Hz, the driver sees what the car sees and commands the car.

Per frame: render the two camera frames of the world as it is now (only for drivers that look at images, or when
recording a video) and pack them as the device would; the driver decides (a model through modeld's input
building, its plan through openpilot-style controls); the desire helper updates the lane-change state from the
driver's blinker and the model's ``desire_state``; the world advances. :class:`RunTracker` measures the run and
ends it when the car leaves the road, collides, gets stuck or - outside a requested lane change - leaves its lane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..collector.builtin.builtin_backend import noise_rng, world_renderer
from ..collector.builtin.simulation import DrivingWorld, lane_geometry
from ..collector.frames import pack_frames
from ..contract.constants import DT_S
from .desire import FINISHING, DesireHelper
from .drivers import DriverOutput, Inputs
from .suites import (
    LANE_CHANGE_WITHIN_S,
    MIN_TIME_GAP_S,
    SETTLED_FOR_S,
    SETTLED_M,
    WHEEL_OVER_LINE_M,
    RoadTest,
)

STUCK_MPS, STUCK_FOR_S, STUCK_CLEAR_M = 0.5, 15.0, 15.0
TIME_GAP_MIN_SPEED_MPS = 2.0


@dataclass
class Frame:
    """What a recorded frame shows (for videos)."""

    road_rgb: np.ndarray  # (256, 512, 3) uint8
    output: DriverOutput
    lane_lines_car: np.ndarray  # (4, K, 2) the true lane lines around the car: x forward, y right (m)
    t_s: float


def lane_lines_in_car_frame(world: DrivingWorld) -> np.ndarray:
    """(4, K, 2) the true lane lines around the camera, in its horizontal frame (x forward, y right)."""
    car = world.car
    geometry = lane_geometry(world.network, np.array([car.s_cam]), np.array([car.d_cam]))
    cx, cy = car.camera_xy()
    pts = geometry["lines_ned"][0][:, :, :2] - np.array([cx, cy])  # (4, K, 2)
    c, s = math.cos(car.yaw), math.sin(car.yaw)
    return np.stack([c * pts[..., 0] + s * pts[..., 1], -s * pts[..., 0] + c * pts[..., 1]], axis=-1)


def _corners(x: float, y: float, yaw: float, front_m: float, back_m: float, half_w: float) -> np.ndarray:
    """(4, 2) corners of a box in the world's x, y (NED: yaw from north, +y east)."""
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[front_m, -half_w], [front_m, half_w], [-back_m, half_w], [-back_m, -half_w]])
    return np.stack([x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1]], axis=1)


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex quadrilaterals (4, 2)."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


@dataclass
class RunTracker:
    """Measures one run; :meth:`update` after every step returns why the run ends, or None."""

    test: RoadTest
    world: DrivingWorld
    offsets_m: list[float] = field(default_factory=list)
    outside_s: float = 0.0
    lat_accel: list[float] = field(default_factory=list)
    time_gaps_s: list[float] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)
    slow_s: float = 0.0
    crossed_at_s: float | None = None
    moved_to_side: int = 0  # the first lane the car entered after a lane change request: -1 left, +1 right
    settled_s: float = 0.0
    lane_change_done: bool = False
    collision: bool = False
    path: list[tuple[float, float]] = field(default_factory=list)  # (s, d) of the camera, for plots

    def __post_init__(self) -> None:
        layout, car = self.world.network.layout, self.world.car
        self.start_lane = layout.forward_lane(car.d_cam)
        self.target_lane = self.start_lane + self.test.lane_change
        self.half_lane = 0.5 * layout.lane_width_m
        self.outside_limit = 0.5 * (layout.lane_width_m - car.params.width_m) + WHEEL_OVER_LINE_M

    def _lane_offset(self) -> tuple[int, float]:
        layout, d = self.world.network.layout, self.world.car.d_cam
        lane = layout.forward_lane(d)
        return lane, d - float(layout.forward_centre_m(lane))

    def _collided(self) -> bool:
        world, car = self.world, self.world.car
        p = car.params
        ego = _corners(car.x, car.y, car.yaw, p.front_ahead_of_rear_axle_m, p.rear_behind_rear_axle_m,
                       p.width_m / 2)
        traffic = world.traffic
        poses = traffic.poses(world.t_s)
        near = np.flatnonzero(traffic.present & (np.hypot(poses[:, 0] - car.x, poses[:, 1] - car.y) < 20.0))
        for i in near:
            length, width = traffic.size_m[i, 0], traffic.size_m[i, 1]
            other = _corners(poses[i, 0], poses[i, 1], poses[i, 5], length / 2, length / 2, width / 2)
            if boxes_overlap(ego, other):
                return True
        return False

    def update(self) -> str | None:
        world, car, dt = self.world, self.world.car, DT_S
        lane, offset = self._lane_offset()
        t = world.t_s
        self.path.append((car.s_cam, car.d_cam))
        self.speeds.append(car.v)
        self.lat_accel.append(car.v ** 2 * car.curvature_inv_m)
        in_change = self.test.lane_change != 0 and t >= self.test.lane_change_at_s and not self.lane_change_done
        if not in_change:
            self.offsets_m.append(abs(offset))
            if abs(offset) > self.outside_limit:
                self.outside_s += dt
        lead, gap = (x[world.ego_index] for x in world.agents.all_leaders())
        if lead >= 0 and car.v > TIME_GAP_MIN_SPEED_MPS:
            self.time_gaps_s.append(float(gap) / car.v)
        self._lane_change_progress(lane, offset, t)
        route = world.network.route
        if not route.left_edge_m <= car.d_cam <= route.right_edge_m:
            return "left_road"
        if self._collided():
            self.collision = True
            return "collision"
        clear = lead < 0 or gap > STUCK_CLEAR_M
        self.slow_s = self.slow_s + dt if car.v < STUCK_MPS and clear else 0.0
        if self.slow_s > STUCK_FOR_S:
            return "stuck"
        if lane != (self.target_lane if self.crossed_at_s is not None else self.start_lane) and not in_change:
            return "left_lane"
        return None

    def _lane_change_progress(self, lane: int, offset: float, t: float) -> None:
        if self.test.lane_change == 0 or self.lane_change_done:
            return
        if self.moved_to_side == 0 and lane != self.start_lane and t >= self.test.lane_change_at_s:
            self.moved_to_side = 1 if lane > self.start_lane else -1
        if self.crossed_at_s is None and lane == self.target_lane:
            self.crossed_at_s = t
        if self.crossed_at_s is not None:
            self.settled_s = self.settled_s + DT_S if lane == self.target_lane and abs(offset) < SETTLED_M else 0.0
            if self.settled_s >= SETTLED_FOR_S:
                self.lane_change_done = True
        elif t > self.test.lane_change_at_s + LANE_CHANGE_WITHIN_S:
            self.lane_change_done = True  # it never crossed: the change failed; lane keeping resumes

    def result(self, ended_by: str | None) -> dict[str, Any]:
        world, test = self.world, self.test
        lat = np.asarray(self.lat_accel)
        jerk = np.diff(lat) / DT_S if len(lat) > 1 else np.zeros(1)
        completed = ended_by is None
        out = {"suite": test.suite, "group": test.group, "name": test.name, "seed": world.seed,
               "index": test.index, "scenario": test.scenario.name,
               "lane_width_m": world.network.layout.lane_width_m, "completed": completed,
               "ended_by": "completed" if completed else ended_by, "driven_s": round(world.t_s, 2),
               "mean_abs_offset_m": float(np.mean(self.offsets_m)) if self.offsets_m else 0.0,
               "max_abs_offset_m": float(np.max(self.offsets_m)) if self.offsets_m else 0.0,
               "time_outside_lane_s": round(self.outside_s, 3),
               "max_lat_accel_mps2": float(np.abs(lat).max()) if len(lat) else 0.0,
               "rms_lat_jerk_mps3": float(np.sqrt(np.mean(jerk ** 2))),
               "max_lat_jerk_mps3": float(np.abs(jerk).max()),
               "mean_speed_mps": float(np.mean(self.speeds)) if self.speeds else 0.0,
               "min_time_gap_s": float(np.min(self.time_gaps_s)) if self.time_gaps_s else None,
               "collision": self.collision}
        if test.lane_change:
            success = self.crossed_at_s is not None and self.settled_s >= SETTLED_FOR_S and \
                self.crossed_at_s <= test.lane_change_at_s + LANE_CHANGE_WITHIN_S
            out.update({"lane_change": "left" if test.lane_change < 0 else "right", "lane_change_success": success,
                        "moved_to_side": self.moved_to_side,
                        "time_to_cross_s": None if self.crossed_at_s is None else
                        round(self.crossed_at_s - test.lane_change_at_s, 2)})
        out["passed"] = passed(test, out)
        return out


def passed(test: RoadTest, result: dict[str, Any]) -> bool:
    """The suite's pass rule (suites.py) for one run's result."""
    if not result["completed"]:
        return False
    if test.suite == "lane_keep":
        return result["time_outside_lane_s"] == 0.0
    if test.suite == "lane_change":
        return bool(result["lane_change_success"])
    gap = result["min_time_gap_s"]
    return not result["collision"] and (gap is None or gap >= MIN_TIME_GAP_S)


def drive_run(test: RoadTest, driver, seed: int, record: bool = False) -> tuple[dict[str, Any], list[Frame]]:
    """Drive one road test with ``driver``; returns its result (and the recorded frames when ``record``)."""
    requests = [(test.lane_change_at_s, test.lane_change)] if test.lane_change else []
    world = DrivingWorld(test.scenario, seed, test.index, test.duration_s, lane_change_requests=requests,
                         start_lane=test.start_lane)
    driver.start(world)
    renderer = world_renderer(world) if driver.needs_images or record else None
    rng = noise_rng(seed, test.index)
    helper, tracker, frames = DesireHelper(), RunTracker(test, world), []
    blinker_done, ended_by = False, None
    while not world.done:
        road = wide = None
        if renderer is not None:
            road_rgb, wide_rgb = renderer.render(world.camera_pose(), world.vehicle_boxes(), rng)
            packed = pack_frames(road_rgb[None], wide_rgb[None])
            road, wide = packed["img"][0], packed["big_img"][0]
        asked = test.lane_change != 0 and world.t_s >= test.lane_change_at_s and not blinker_done
        left, right = asked and test.lane_change < 0, asked and test.lane_change > 0
        output = driver.drive(world, Inputs(road, wide, helper.desire, left, right))
        if driver.uses_desire_helper:
            helper.update(left, right, world.car.v, output.lane_change_prob)
            blinker_done = blinker_done or helper.state == FINISHING or \
                world.t_s > test.lane_change_at_s + LANE_CHANGE_WITHIN_S
        if record:
            frames.append(Frame(road_rgb, output, lane_lines_in_car_frame(world), world.t_s))
        world.step(output.command)
        ended_by = tracker.update()
        if ended_by is not None:
            break
    result = tracker.result(ended_by)
    result["path_s_d"] = tracker.path
    return result, frames
