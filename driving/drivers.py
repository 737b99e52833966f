"""Who drives a road test: the model under test, and reference drivers that give every number a scale.

* :class:`ModelDriver` - an export folder run exactly as modeld runs it (``evaluation.model_runner``): camera
  frames in, a parsed plan and ``desire_state`` out, then openpilot-style controls (``controls.py``).
* :class:`ExpertDriver` - the privileged expert that wrote the training data (the upper bound; it must pass every
  suite, which proves the harness).
* :class:`StraightDriver` (wheel straight) and :class:`ConstantCurvatureDriver` (the road's curvature where the
  run starts, held) - lower bounds; both hold their starting speed.
* :class:`OracleDriver` - a privileged *plan*: the lane centre (or the requested lane) ahead and the expert's
  speed choice, as the plan a perfect model would output, through the same controls as the model. With the
  :class:`MirroredPlan` and :class:`DelayedPlan` wrappers it shows that the harness catches a sign error and a
  delay bug.

Every driver returns a :class:`DriverOutput` per 50 ms frame: the drive command and, for plan drivers, the plan
(for pictures) and the lane-change probability the desire helper needs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..collector.builtin.simulation import DrivingWorld
from ..collector.builtin.traffic import smoothstep5
from ..collector.builtin.vehicle import DriveCommand, DriverSignals
from ..contract.constants import DESIRE_LEN, DT_S, IDX_N, PLAN_WIDTH, T_IDXS, Desire, Plan, encode_traffic_convention
from ..contract.constants import TrafficConvention as Convention
from ..evaluation.model_runner import ExportedModels, ModeldState
from .controls import ControlParams, Controls

REFERENCE_DRIVERS = ("expert", "straight", "constant-curvature")
CRUISE_GAIN_PER_S = 0.5  # reference drivers: accel = gain * (start speed - speed)
ORACLE_CENTRED_M = 0.3  # the oracle reports its lane change done within this of the new lane's centre
ROLLOUT_DT_S = 0.1
LANE_CHANGE_BLEND_S = 4.0  # the oracle's lane change: over this many seconds of driving


@dataclass
class DriverOutput:
    command: DriveCommand
    plan: np.ndarray | None = None  # (33, 15) parsed plan (plan drivers)
    lane_change_prob: float = 0.0  # laneChangeLeft + laneChangeRight of desire_state
    vision: dict | None = None  # parsed vision outputs (the model)


@dataclass(frozen=True)
class Inputs:
    """What a driver is given each frame besides the world: camera frames and the desire helper's state."""

    road_6ch: np.ndarray | None  # (6, 128, 256) uint8, when the driver needs images
    wide_6ch: np.ndarray | None
    desire: int  # what the desire helper feeds the model now
    left_blinker: bool
    right_blinker: bool


class ExpertDriver:
    """The world's own expert (lane changes come from the run's requests, given to the world)."""

    name, needs_images, uses_desire_helper = "expert", False, False

    def start(self, world: DrivingWorld) -> None:
        return None

    def drive(self, world: DrivingWorld, inputs: Inputs) -> DriverOutput:
        return DriverOutput(world.expert_command())


class StraightDriver:
    """Keeps the wheel straight and the starting speed."""

    name, needs_images, uses_desire_helper = "straight", False, False

    def start(self, world: DrivingWorld) -> None:
        self.v0 = world.car.v
        self.curvature = 0.0

    def drive(self, world: DrivingWorld, inputs: Inputs) -> DriverOutput:
        accel = CRUISE_GAIN_PER_S * (self.v0 - world.car.v)
        return DriverOutput(DriveCommand(self.curvature, accel, DriverSignals()))


class ConstantCurvatureDriver(StraightDriver):
    """Holds the road's curvature where the run starts (and the starting speed)."""

    name = "constant-curvature"

    def start(self, world: DrivingWorld) -> None:
        super().start(world)
        self.curvature = float(world.car.route.kappa(world.car.s_cam))


class PlanDriver(ABC):
    """A plan source (33, 15) + desire_state through openpilot-style controls."""

    uses_desire_helper = True

    def __init__(self, controls: ControlParams | None = None):
        self.control_params = controls or ControlParams()

    def start(self, world: DrivingWorld) -> None:
        self.controls = Controls(self.control_params)
        self.own_curvature: float | None = None  # a model's desired_curvature output (op-0.10.0), set by plan()

    @abstractmethod
    def plan(self, world: DrivingWorld, inputs: Inputs) -> tuple[np.ndarray, np.ndarray, dict | None]:
        """(plan (33, 15), desire_state (8,), parsed vision or None)."""

    def drive(self, world: DrivingWorld, inputs: Inputs) -> DriverOutput:
        plan, desire_state, vision = self.plan(world, inputs)
        action = self.controls.update(plan, world.car.v, self.own_curvature)
        signals = DriverSignals(desire=inputs.desire, left_blinker=inputs.left_blinker,
                                right_blinker=inputs.right_blinker)
        prob = float(desire_state[Desire.LANE_CHANGE_LEFT] + desire_state[Desire.LANE_CHANGE_RIGHT])
        return DriverOutput(DriveCommand(action.curvature_inv_m, action.accel_mps2, signals), plan, prob, vision)


class ModelDriver(PlanDriver):
    """An export folder run as modeld runs it (onnxruntime or the tinygrad pickles)."""

    name, needs_images = "model", True

    def __init__(self, export_dir: str, runtime: str = "onnxruntime", controls: ControlParams | None = None):
        super().__init__(controls)
        self.models = ExportedModels.load(export_dir, runtime)
        self.fed: list[dict[str, np.ndarray]] = []  # the policy inputs of every frame (kept when recording)
        self.keep_inputs = False

    def start(self, world: DrivingWorld) -> None:
        super().start(world)
        convention = encode_traffic_convention(Convention(world.scenario.traffic_convention))
        self.state = ModeldState(self.models, convention)
        self.fed = []

    def plan(self, world: DrivingWorld, inputs: Inputs) -> tuple[np.ndarray, np.ndarray, dict | None]:
        step = self.state.step(inputs.road_6ch, inputs.wide_6ch, inputs.desire, world.car.v)
        if self.keep_inputs:
            self.fed.append({**step.vision_inputs, **step.policy_inputs})
        if "desired_curvature" in step.policy:  # op-0.10.0: modeld of those releases steers by the model's own
            self.own_curvature = float(step.policy["desired_curvature"][0, 0])
        return step.policy["plan"][0], step.policy["desire_state"][0], step.vision


class OracleDriver(PlanDriver):
    """The plan a perfect model would output, from the world's truth (see the module docstring)."""

    name, needs_images = "oracle", False

    def start(self, world: DrivingWorld) -> None:
        super().start(world)
        layout, car = world.network.layout, world.car
        self.target_lane = layout.forward_lane(car.d_cam)
        d = float(layout.forward_centre_m(self.target_lane))
        self.lateral_path = (car.s_cam, car.s_cam + 1.0, d, d)  # s0, s1, d0, d1 (a quintic blend, as the expert's)
        self.changing = False

    def plan(self, world: DrivingWorld, inputs: Inputs) -> tuple[np.ndarray, np.ndarray, dict | None]:
        car, layout = world.car, world.network.layout
        lane_now = layout.forward_lane(car.d_cam)
        change = {Desire.LANE_CHANGE_LEFT: -1, Desire.LANE_CHANGE_RIGHT: 1}.get(Desire(inputs.desire), 0)
        if change and not self.changing and 0 <= lane_now + change < layout.n_forward:
            self.target_lane, self.changing = lane_now + change, True
            length = max(car.v, 5.0) * LANE_CHANGE_BLEND_S
            self.lateral_path = (car.s_cam, car.s_cam + length, self.lateral_path[3],
                                 float(layout.forward_centre_m(self.target_lane)))
        if self.changing and car.s_cam > self.lateral_path[1] and abs(car.d_cam - self.lateral_path[3]) < \
                ORACLE_CENTRED_M:
            self.changing = False
        accel = world.expert.desired_accel(world.agents, world.ego_index, world.gate)
        desire_state = np.zeros(DESIRE_LEN, np.float32)
        desire_state[Desire(inputs.desire) if self.changing else Desire.NONE] = 1.0
        return oracle_plan(world, self.lateral_path, accel), desire_state, None


def oracle_plan(world: DrivingWorld, lateral_path: tuple[float, float, float, float],
                accel_mps2: float) -> np.ndarray:
    """(33, 15) plan in the device frame at t = 0: the path the car drives if it steers by pure pursuit along
    ``lateral_path`` (s0, s1, d0, d1: offset d0 before s0, d1 after s1, a quintic blend between) at a constant
    ``accel_mps2`` (speed never below 0), rolled out from the car's actual position, heading and speed."""
    car, route = world.car, world.car.route
    x, y, yaw, v = (*car.camera_xy(), car.yaw, car.v)
    s = car.s_cam
    s0, s1, d0, d1 = lateral_path
    times = np.arange(0.0, T_IDXS[-1] + 1e-9, ROLLOUT_DT_S)
    track = np.zeros((len(times), 4))  # x, y, yaw, v
    travelled = 0.0
    for n in range(len(times)):
        track[n] = (x, y, yaw, v)
        look = min(max(0.6 * v + 2.5, 4.0), 25.0)
        s_t = s + travelled + look
        d_t = d0 + (d1 - d0) * float(smoothstep5((s_t - s0) / max(s1 - s0, 1e-3)))
        tx, ty = route.point(s_t, d_t)
        ex, ey = tx - x, ty - y
        kappa = 2.0 * (-ex * math.sin(yaw) + ey * math.cos(yaw)) / max(ex * ex + ey * ey, 1.0)
        v_next = max(v + accel_mps2 * ROLLOUT_DT_S, 0.0)
        ds = 0.5 * (v + v_next) * ROLLOUT_DT_S
        x, y = x + ds * math.cos(yaw + 0.5 * ds * kappa), y + ds * math.sin(yaw + 0.5 * ds * kappa)
        yaw, v, travelled = yaw + ds * kappa, v_next, travelled + ds
    at = np.stack([np.interp(T_IDXS, times, track[:, k]) for k in range(4)], axis=1)  # (33, 4)
    dx, dy = at[:, 0] - at[0, 0], at[:, 1] - at[0, 1]
    c, s_ = math.cos(car.yaw), math.sin(car.yaw)
    yaw_rel = at[:, 2] - car.yaw
    plan = np.zeros((IDX_N, PLAN_WIDTH), np.float32)
    plan[:, Plan.POSITION.start] = c * dx + s_ * dy
    plan[:, Plan.POSITION.start + 1] = -s_ * dx + c * dy
    plan[:, Plan.VELOCITY.start] = at[:, 3]
    plan[:, Plan.ACCELERATION.start] = np.where(at[:, 3] > 0, accel_mps2, 0.0)
    plan[:, Plan.T_FROM_CURRENT_EULER.start + 2] = yaw_rel
    plan[:, Plan.ORIENTATION_RATE.start + 2] = np.gradient(yaw_rel, T_IDXS)
    plan[0, Plan.ORIENTATION_RATE.start + 2] = car.v * car.curvature_inv_m  # the yaw rate now
    return plan


class MirroredPlan(PlanDriver):
    """A plan driver whose plan is mirrored left <-> right (a sign bug in y)."""

    def __init__(self, inner: PlanDriver):
        super().__init__(inner.control_params)
        self.inner, self.name, self.needs_images = inner, f"mirrored-{inner.name}", inner.needs_images

    def start(self, world: DrivingWorld) -> None:
        super().start(world)
        self.inner.start(world)

    def plan(self, world: DrivingWorld, inputs: Inputs) -> tuple[np.ndarray, np.ndarray, dict | None]:
        plan, desire_state, vision = self.inner.plan(world, inputs)
        mirrored = plan.copy()
        for block in (Plan.POSITION, Plan.VELOCITY, Plan.ACCELERATION):
            mirrored[:, block.start + 1] *= -1.0  # y
        for block in (Plan.T_FROM_CURRENT_EULER, Plan.ORIENTATION_RATE):
            mirrored[:, block.start] *= -1.0  # roll
            mirrored[:, block.start + 2] *= -1.0  # yaw
        return mirrored, desire_state, vision


class DelayedPlan(PlanDriver):
    """A plan driver that acts on the plan of ``delay_s`` ago (a delay bug)."""

    def __init__(self, inner: PlanDriver, delay_s: float = 2.0):
        super().__init__(inner.control_params)
        self.inner, self.name, self.needs_images = inner, f"delayed-{inner.name}", inner.needs_images
        self.delay_frames = int(round(delay_s / DT_S))

    def start(self, world: DrivingWorld) -> None:
        super().start(world)
        self.inner.start(world)
        self.queue: deque = deque(maxlen=self.delay_frames + 1)

    def plan(self, world: DrivingWorld, inputs: Inputs) -> tuple[np.ndarray, np.ndarray, dict | None]:
        self.queue.append(self.inner.plan(world, inputs))
        return self.queue[0]


def reference_driver(name: str):
    """A reference driver by its command-line name."""
    return {"expert": ExpertDriver, "straight": StraightDriver, "constant-curvature": ConstantCurvatureDriver,
            "oracle": OracleDriver}[name]()
