"""The built-in simulator as one world that advances 50 ms at a time from the ego's commands.

:class:`DrivingWorld` holds an episode (drawn by ``episode_setup.setup_episode``): the static roads, the ego car
(:class:`~.vehicle.Vehicle`), the traffic and the junction gate. Each :meth:`DrivingWorld.step` takes one
:class:`~.vehicle.DriveCommand` - from the expert when collecting data, from any driver in a closed-loop road
test - records the frame, and moves the ego and the traffic on; traffic, leads and the junction gate react to the
ego as it really drives. Everything the renderer needs for the current frame (:meth:`DrivingWorld.camera_pose`,
:meth:`DrivingWorld.vehicle_boxes`) depends only on the state now, never on what comes after.
:func:`simulate_episode` is the expert driving a whole episode; its :class:`SimulatedEpisode` carries the truth
the labeller needs.

Truth conventions (world NED, z down; see ``collector/episode_truth.py``):

* ``lines_ned[t]``: boundaries at lateral offsets ``(j-1, j, j+1, j+2) * lane_width`` of the route, where
  boundary ``j`` is the left line of the forward lane under the camera (from the camera's actual lateral
  offset, so the lines switch the frame the camera crosses a boundary). Each is sampled along the route at
  arc lengths ``s_camera + LINE_OFFSETS_M`` (10 m behind to 230 m ahead, 1 m steps), through a junction's
  connector too. Boundaries that are not painted (beyond the road, or inside the junction) are still given
  at their geometric offset. They coincide with the world's ``Marking`` offsets.
* ``lines_exist[t, i]``: a marking is painted at that offset over at least half of the 30 m of route ahead
  of the camera (``LINE_EXIST_AHEAD_M`` = 30 m, 1 m samples). ``edges_ned``: the route's pavement edges, same samples.
* ``ego_pose_ned``: the camera, the episode's mounting height above the route's road surface, roll = the body's
  roll (roads have no bank), pitch = the road's grade plus the body's pitch (nose up positive), yaw = the car's
  heading. The mount (height, body dynamics, the model frames' residual calibration error and the wide camera's
  rotation) is drawn per episode from the scenario's ``CameraProfile`` (``vehicle.CameraMount``). Others: the centre
  of the box's bottom face on the road, yaw along the lane (plus the lane-change slip), pitch = grade in its
  direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...contract.constants import DT_S
from ..episode_truth import EpisodeTruth
from ..scenarios import Scenario, get_scenario
from .agents import Agents
from .episode_setup import START_S_M, EpisodeSetup, setup_episode
from .expert import ExpertDriver
from .roads import RoadNetwork
from .traffic import Traffic
from .vehicle import (
    BRAKE_PRESSED_MPS2,
    GAS_PRESSED_MPS2,
    DriveCommand,
    RouteFrame,
    Vehicle,
    VehicleParams,
    draw_mount,
)
from .world import Lighting, RoadSurface, VehicleBox, World

LINE_OFFSETS_M = np.arange(-10.0, 231.0, 1.0)  # (K,) sample offsets along the route from the camera
LINE_EXIST_AHEAD_M = 30.0  # a line exists when its marking is painted over at least half of the next 30 m
BRAKE_LIGHT_MPS2 = -1.0
CAMERA_STREAM = 0xCA3E  # the camera mount's random stream of an episode, apart from the simulation's
EGO_LOG_KEYS = ("pose", "v", "a", "desire", "left", "right", "gas", "brake", "engaged", "gas_dis", "brake_dis",
                "steer_ovr", "s_cam", "d_cam")


class DrivingWorld:
    """One episode's world, stepped at 20 Hz from the ego's commands (see the module docstring)."""

    def __init__(self, scenario: Scenario | str, seed: int, episode_index: int, duration_s: float,
                 lane_change_requests: list[tuple[float, int]] | None = None,
                 vehicle: VehicleParams | None = None, start_lane: int | None = None):
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.seed, self.episode_index, self.duration_s = int(seed), int(episode_index), float(duration_s)
        setup: EpisodeSetup = setup_episode(self.scenario, seed, episode_index, duration_s, start_lane)
        self.setup, self.network, self.rng = setup, setup.network, setup.rng
        self.n_frames, self.dt_s = setup.n_frames, DT_S
        net = setup.network
        span = None if net.junction is None else (net.junction.s_in_m, net.junction.s_out_m)
        self.traffic = Traffic(setup.specs, setup.paths, setup.n_frames, DT_S, setup.rng, setup.lead_index,
                               setup.lead_script, net.layout.side, span)
        self.gate = setup.gate
        camera_rng = np.random.default_rng([self.seed, self.episode_index, CAMERA_STREAM, self.scenario.stable_id])
        self.mount = draw_mount(self.scenario.camera, camera_rng)
        self.car = Vehicle(RouteFrame(net), START_S_M, float(net.layout.forward_centre_m(setup.lane)), setup.v_ego_mps,
                           DT_S, vehicle or VehicleParams(), self.mount)
        self.expert = ExpertDriver(self.scenario, net, setup.rng, duration_s, self.car, setup.lane,
                                   setup.v_cruise_mps, lane_change_requests)
        self.others_rgb = np.array([s.rgb for s in setup.specs], dtype=np.uint8).reshape(-1, 3)
        self.frame = 0
        self.log: dict[str, list] = {k: [] for k in EGO_LOG_KEYS}
        self._d_target = self.car.d_cam
        self._prepare()

    # --- the state now -----------------------------------------------------------------------------------------
    @property
    def t_s(self) -> float:
        return self.frame * self.dt_s

    @property
    def done(self) -> bool:
        return self.frame >= self.n_frames

    @property
    def world(self) -> World:
        return self.network.world

    @property
    def lighting(self) -> Lighting:
        return self.setup.lighting

    @property
    def ego_index(self) -> int:
        """The ego's row in :attr:`agents` (it comes after every traffic vehicle)."""
        return self.traffic.n

    def ego_agent(self) -> dict:
        car = self.car
        return {"p": car.s_cam + car.params.centre_ahead_of_camera_m, "d": car.d_cam, "d_target": self._d_target,
                "v": car.v, "a": car.a, "length": car.params.length_m, "width": car.params.width_m}

    def _prepare(self) -> None:
        """Everything every driver may look at before deciding the current frame's command."""
        self.agents: Agents = self.traffic.agents(self.ego_agent())
        if self.gate is not None:
            self.gate.update(self.t_s, self.agents)

    def camera_pose(self) -> np.ndarray:
        """(6,) the device's pose now (see the module docstring)."""
        return np.array(self.car.camera_pose())

    def vehicle_boxes(self) -> list[VehicleBox]:
        """The other vehicles present now, as the renderer draws them (brake lights: the last step's deceleration)."""
        t = self.traffic
        poses = t.poses(self.t_s)
        out = []
        for i in np.flatnonzero(t.present):
            braking = t.a[i] < BRAKE_LIGHT_MPS2 or t.v[i] < 0.1
            length, width, height = (float(x) for x in t.size_m[i])
            out.append(VehicleBox(pose_ned=poses[i], length_m=length, width_m=width, height_m=height,
                                  rgb=tuple(int(c) for c in self.others_rgb[i]), brake_lights=bool(braking)))
        return out

    def expert_command(self) -> DriveCommand:
        """What the expert would do now (it also advances the expert's own plans: call once per frame)."""
        return self.expert.command(self.t_s, self.agents, self.ego_index, self.gate)

    # --- one step ------------------------------------------------------------------------------------------------
    def step(self, command: DriveCommand) -> None:
        """Record the current frame with ``command`` and advance the ego and the traffic by one step."""
        if self.done:
            raise RuntimeError(f"the episode has {self.n_frames} frames; step() was called after the last one")
        car = self.car
        v_new = car.actuate(command)
        self._record(command)
        car.move(v_new)
        self._d_target = car.d_cam if command.d_target_m is None else command.d_target_m
        self.traffic.step(self.frame, self.t_s, self.agents, self.gate)
        self.frame += 1
        self._prepare()

    def _record(self, command: DriveCommand) -> None:
        car, sig, log = self.car, command.signals, self.log
        log["pose"].append(car.camera_pose())
        log["v"].append(car.v)
        log["a"].append(car.a)
        log["desire"].append(int(sig.desire))
        log["left"].append(sig.left_blinker)
        log["right"].append(sig.right_blinker)
        log["gas"].append(car.accel_command > GAS_PRESSED_MPS2)
        log["brake"].append(car.accel_command < BRAKE_PRESSED_MPS2)
        log["engaged"].append(sig.engaged)
        log["gas_dis"].append(sig.gas_disengage)
        log["brake_dis"].append(sig.brake_disengage)
        log["steer_ovr"].append(sig.steer_override)
        log["s_cam"].append(car.s_cam)
        log["d_cam"].append(car.d_cam)

    # --- after the episode ---------------------------------------------------------------------------------------
    def truth(self) -> EpisodeTruth:
        """The ground truth of the frames stepped so far (labels come from it)."""
        ego = {k: np.asarray(v) for k, v in self.log.items()}
        T = len(ego["v"])
        geometry = lane_geometry(self.network, ego["s_cam"], ego["d_cam"])
        h = self.traffic.hist
        truth = EpisodeTruth(
            dt_s=DT_S, ego_pose_ned=ego["pose"], ego_speed_mps=ego["v"], ego_accel_mps2=ego["a"],
            camera_height_m=self.mount.height_m, desire=ego["desire"].astype(np.int64), left_blinker=ego["left"],
            right_blinker=ego["right"], gas_pressed=ego["gas"], brake_pressed=ego["brake"], engaged=ego["engaged"],
            gas_disengage=ego["gas_dis"], brake_disengage=ego["brake_dis"], steer_override=ego["steer_ovr"],
            **geometry, others_pose_ned=h["pose"][:T], others_speed_mps=h["v"][:T], others_accel_mps2=h["a"][:T],
            others_size_m=self.traffic.size_m, others_present=h["present"][:T],
            traffic_convention=self.scenario.traffic_convention, wide_from_device_rpy=self.mount.wide_from_device_rpy)
        truth.validate()
        return truth


@dataclass
class SimulatedEpisode:
    world: World
    truth: EpisodeTruth
    lighting: Lighting
    others_rgb: np.ndarray  # (M, 3) uint8
    scenario_name: str
    seed: int
    episode_index: int
    network: RoadNetwork  # the route and junction plan behind the world (for debugging and tests)

    def vehicle_boxes(self, frame: int) -> list[VehicleBox]:
        """The vehicles present at ``frame`` as :meth:`DrivingWorld.vehicle_boxes` drew them then."""
        t = self.truth
        accel = t.others_accel_mps2[frame - 1] if frame > 0 else np.zeros(t.others_size_m.shape[0])
        out = []
        for i in np.flatnonzero(t.others_present[frame]):
            braking = accel[i] < BRAKE_LIGHT_MPS2 or t.others_speed_mps[frame, i] < 0.1
            length, width, height = (float(x) for x in t.others_size_m[i])
            out.append(VehicleBox(pose_ned=t.others_pose_ned[frame, i].copy(), length_m=length, width_m=width,
                                  height_m=height, rgb=tuple(int(c) for c in self.others_rgb[i]),
                                  brake_lights=bool(braking)))
        return out


def simulate_episode(scenario: Scenario | str, seed: int, episode_index: int, duration_s: float) -> SimulatedEpisode:
    """The expert drives one episode of ``scenario`` (a Scenario or a registered name) for ``duration_s``."""
    world = DrivingWorld(scenario, seed, episode_index, duration_s)
    while not world.done:
        world.step(world.expert_command())
    return SimulatedEpisode(world.world, world.truth(), world.lighting, world.others_rgb, world.scenario.name,
                            world.seed, world.episode_index, world.network)


def _painted(route: RoadSurface, offset_m: float, s_m: np.ndarray) -> np.ndarray:
    """(...) bool: a marking of the route is painted at ``offset_m`` at arc lengths ``s_m``."""
    out = np.zeros(s_m.shape, bool)
    for m in route.markings:
        if abs(m.offset_m - offset_m) < 1e-6:
            out |= (s_m >= m.s_start_m) & (s_m < m.s_end_m)
    return out


def lane_geometry(net: RoadNetwork, s_cam_m: np.ndarray, d_cam_m: np.ndarray) -> dict[str, np.ndarray]:
    """lines_ned (T, 4, K, 3), lines_exist (T, 4) and edges_ned (T, 2, K, 3) around the camera's lane."""
    layout, route = net.layout, net.route
    w = layout.lane_width_m
    lo, hi = layout.forward_bounds
    j_left = np.clip(np.floor(d_cam_m / w).astype(np.int64), lo, hi - 1)  # (T,) left line of the current lane
    js = j_left[:, None] + np.arange(-1, 3)[None, :]  # (T, 4)
    s = s_cam_m[:, None] + LINE_OFFSETS_M[None, :]  # (T, K)
    lines = route.point_at(s[:, None, :], (js * w)[:, :, None])  # (T, 4, K, 3)
    edges = route.point_at(s[:, None, :], np.array([route.left_edge_m, route.right_edge_m])[None, :, None])
    ahead = s_cam_m[:, None] + np.arange(0.0, LINE_EXIST_AHEAD_M, 1.0)[None, :]  # (T, 30)
    exist = np.zeros(js.shape, bool)
    for j in np.unique(js):
        cover = _painted(route, float(j * w), ahead).mean(axis=1)  # (T,)
        exist |= (js == j) & (cover[:, None] >= 0.5)
    return {"lines_ned": lines, "lines_exist": exist, "edges_ned": edges}
