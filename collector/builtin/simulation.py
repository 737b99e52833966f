"""One episode of the built-in simulator: world, traffic and expert ego at 20 Hz -> :class:`SimulatedEpisode`.

All randomness comes from ``np.random.default_rng([seed, episode_index, scenario.stable_id])`` drawn in a
fixed order, so a (scenario, seed, episode) is bit-identical across runs and processes.

Truth conventions (world NED, z down; see ``collector/truth.py``):

* ``lines_ned[t]``: boundaries at lateral offsets ``(j-1, j, j+1, j+2) * lane_width`` of the route, where
  boundary ``j`` is the left line of the forward lane under the camera (from the camera's actual lateral
  offset, so the lines switch the frame the camera crosses a boundary). Each is sampled along the route at
  arc lengths ``s_camera + LINE_OFFSETS_M`` (10 m behind to 230 m ahead, 1 m steps), through a junction's
  connector too. Boundaries that are not painted (beyond the road, or inside the junction) are still given
  at their geometric offset. They coincide with the world's ``Marking`` offsets.
* ``lines_exist[t, i]``: a marking is painted at that offset over at least half of the 50 m of route ahead
  of the camera (``LINE_EXIST_AHEAD_M``, 1 m samples). ``edges_ned``: the route's pavement edges, same samples.
* ``ego_pose_ned``: the camera, ``CAMERA_HEIGHT_M`` above the route's road surface, roll 0 (roads have no
  bank), pitch = the road's grade (nose up positive), yaw = the car's heading. Others: the centre of the box's
  bottom face on the road, yaw along the lane (plus the lane-change slip), pitch = grade in its direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...contract.camera import CAMERA_HEIGHT_M
from ...contract.constants import DT_S
from ..episode_truth import EpisodeTruth
from ..scenarios import LEAD_BEHAVIOURS, LightingProfile, Scenario, TrafficProfile, get_scenario, sample_range
from .expert import ExpertDriver
from .roads import CROSS_HALF_M, RoadNetwork, build_network
from .traffic import Approach, Behaviour, JunctionGate, LeadScript, Traffic, TrafficPath, VehicleSpec
from .world import Lighting, RoadSurface, VehicleBox, World

START_S_M = 100.0  # the camera's route arc length at frame 0
LINE_OFFSETS_M = np.arange(-10.0, 231.0, 1.0)  # (K,) sample offsets along the route from the camera
LINE_EXIST_AHEAD_M = 50.0
ROUTE_MARGIN_M = 350.0  # route beyond the ego's furthest reach (lines need 230 m, traffic more)
BRAKE_LIGHT_MPS2 = -1.0

VEHICLE_KINDS = {  # length, width, height ranges (m)
    "car": ((4.2, 4.9), (1.75, 1.9), (1.4, 1.55)),
    "suv": ((4.5, 5.0), (1.85, 2.0), (1.65, 1.85)),
    "van": ((5.0, 5.6), (1.95, 2.1), (1.95, 2.4)),
    "truck": ((8.0, 12.0), (2.45, 2.55), (3.2, 3.8)),
}
PALETTE_RGB = ((235, 235, 235), (25, 25, 28), (160, 162, 168), (95, 98, 104), (150, 25, 30), (30, 55, 120),
               (40, 70, 50), (200, 190, 165), (170, 120, 40), (90, 20, 25), (60, 110, 160), (220, 200, 40))


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
        """The vehicles present at ``frame`` as the renderer draws them."""
        t = self.truth
        out = []
        for i in np.flatnonzero(t.others_present[frame]):
            braking = t.others_accel_mps2[frame, i] < BRAKE_LIGHT_MPS2 or t.others_speed_mps[frame, i] < 0.1
            length, width, height = (float(x) for x in t.others_size_m[i])
            out.append(VehicleBox(pose_ned=t.others_pose_ned[frame, i].copy(), length_m=length, width_m=width,
                                  height_m=height, rgb=tuple(int(c) for c in self.others_rgb[i]),
                                  brake_lights=bool(braking)))
        return out


def episode_rng(scenario: Scenario, seed: int, episode_index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(episode_index), scenario.stable_id])


def sample_lighting(profile: LightingProfile, rng: np.random.Generator) -> Lighting:
    overcast = rng.random() < profile.overcast_prob
    elevation = sample_range(rng, profile.sun_elevation_rad)
    azimuth = sample_range(rng, (0.0, 2.0 * math.pi))
    ambient = sample_range(rng, profile.ambient)
    exposure, noise = sample_range(rng, profile.exposure), sample_range(rng, profile.noise_std)
    grey = int(rng.integers(70, 111))
    if overcast:
        sky = (170, 175, 182)
        ambient = min(0.95, ambient + 0.3)
    else:  # warmer and paler towards the horizon at low sun
        u = min(elevation / 0.8, 1.0)
        sky = tuple(int(round(lo + (hi - lo) * u)) for lo, hi in zip((205, 175, 150), (130, 170, 225)))
    return Lighting(sun_elevation_rad=elevation, sun_azimuth_rad=azimuth, ambient=ambient, exposure=exposure,
                    sky_rgb=sky, noise_std=noise, asphalt_rgb=(grey, grey, grey + 2))


def _junction_setup(net: RoadNetwork) -> tuple[list[TrafficPath], JunctionGate | None]:
    """Traffic paths (route, crossing road or queue arms) and the junction's gate."""
    paths = [TrafficPath(net.route, net.route_curvature(net.route.s_m))]
    j = net.junction
    if j is None:
        return paths, None
    approaches = {(0, 1): Approach(j.stop_s_m, j.stop_s_m, j.oncoming_stop_s_m, j.kind == "all_way_stop"),
                  (0, -1): Approach(-j.oncoming_stop_s_m, -j.oncoming_stop_s_m, -j.stop_s_m,
                                       j.kind == "all_way_stop")}
    if net.cross is not None:
        paths.append(TrafficPath(net.cross, np.zeros_like(net.cross.s_m)))
        lo, hi = CROSS_HALF_M - j.half_size_m, CROSS_HALF_M + j.half_size_m
        approaches[(1, 1)] = Approach(lo, lo, hi, True)
        approaches[(1, -1)] = Approach(-hi, -hi, -lo, True)
    paths += [TrafficPath(road, np.zeros_like(road.s_m)) for road, _, _ in net.arms]
    return paths, JunctionGate(approaches, j.kind)


def sample_vehicle(rng: np.random.Generator, profile: TrafficProfile, v_ref_mps: float, path: int,
                   direction: int, s_m: float, d_m: float, lanes_m: tuple[float, ...] = ()) -> VehicleSpec:
    """A random car / SUV / van / truck with IDM parameters drawn from the traffic profile."""
    u = rng.random()
    kind = "truck" if u < profile.truck_fraction else "van" if u < profile.truck_fraction + profile.van_fraction \
        else ("suv" if rng.random() < 0.35 else "car")
    size = tuple(round(sample_range(rng, r), 3) for r in VEHICLE_KINDS[kind])
    rgb = PALETTE_RGB[int(rng.integers(len(PALETTE_RGB)))]
    slow = 0.85 if kind == "truck" else 1.0
    v0 = max(2.0, v_ref_mps * sample_range(rng, profile.speed_factor) * slow)
    return VehicleSpec(path, direction, s_m, d_m, v0, size, rgb, v0,
                       headway_s=sample_range(rng, profile.time_headway_s),
                       min_gap_m=sample_range(rng, profile.min_gap_m),
                       max_accel_mps2=sample_range(rng, profile.max_accel_mps2) * slow,
                       comfort_decel_mps2=sample_range(rng, profile.comfort_decel_mps2),
                       politeness=sample_range(rng, profile.politeness),
                       lc_threshold_mps2=sample_range(rng, profile.lane_change_threshold_mps2),
                       lanes_m=lanes_m)


def _fill_lane(rng, profile, v_ref, path, direction, d_m, span, density_per_km, skip, lanes) -> list:
    """Vehicles along one lane over ``span`` (s range) at random spacing, avoiding the ``skip`` s ranges."""
    out = []
    if density_per_km <= 0:
        return out
    mean_m = 1000.0 / density_per_km
    s = span[0] + rng.uniform(0.0, mean_m)
    while s < span[1]:
        spec = sample_vehicle(rng, profile, v_ref, path, direction, s, d_m, lanes)
        spec.speed_mps = spec.v0_mps * sample_range(rng, (0.85, 1.0))
        if not any(lo <= s <= hi for lo, hi in skip):
            out.append(spec)
        s += max(spec.size_m[0] + 8.0 + spec.speed_mps * 1.2, rng.exponential(mean_m))
    return out


def _spawn(scenario: Scenario, net: RoadNetwork, rng: np.random.Generator, v_cruise: float, lane: int,
           lead_behaviour: str, v_ego: float) -> tuple[list[VehicleSpec], int, LeadScript | None]:
    """Traffic in every lane around the ego, the scripted lead, crossing traffic and queued cars."""
    layout, prof, j = net.layout, scenario.traffic, net.junction
    fwd_lanes = tuple(float(x) for x in layout.forward_centre_m(np.arange(layout.n_forward)))
    onc_lanes = tuple(float(x) for x in layout.oncoming_centre_m(np.arange(layout.n_oncoming)))
    route_len = net.route.length_m
    lead_gap_m = v_ego * sample_range(rng, scenario.lead.gap_s) + 3.0
    ego_zone = (START_S_M - 25.0, START_S_M + (lead_gap_m + 30.0 if lead_behaviour != "none" else 60.0))
    specs, lead_index, script = [], -1, None
    if lead_behaviour != "none":
        v_lead = v_cruise * sample_range(rng, scenario.lead.speed_factor)
        spec = sample_vehicle(rng, prof, v_lead, 0, 1, 0.0, fwd_lanes[lane])
        spec.s_m = START_S_M + 2.0 + lead_gap_m + 0.5 * spec.size_m[0]
        spec.v0_mps, spec.speed_mps, spec.behaviour = v_lead, min(v_lead, v_ego), Behaviour.LEAD
        script = LeadScript(lead_behaviour, scenario.lead, v_lead, rng)
        specs, lead_index = [spec], 0
    fwd_skip = [] if j is None else [(j.stop_s_m - 60.0, j.s_out_m + 10.0)]
    onc_skip = [] if j is None else [(j.s_in_m - 10.0, j.oncoming_stop_s_m + 60.0)]
    for k, d in enumerate(fwd_lanes):
        skip = fwd_skip + ([ego_zone] if k == lane else [(START_S_M - 8.0, START_S_M + 8.0)])
        density = sample_range(rng, prof.density_per_km_lane)
        specs += _fill_lane(rng, prof, v_cruise, 0, 1, d, (START_S_M - 95.0, min(START_S_M + 700.0, route_len - 20.0)),
                            density, skip, fwd_lanes)
    for d in onc_lanes:
        density = sample_range(rng, prof.oncoming_density_per_km_lane)
        specs += _fill_lane(rng, prof, v_cruise, 0, -1, d, (START_S_M - 50.0, route_len - 20.0), density,
                            onc_skip, onc_lanes)
    if j is not None and net.cross is not None:
        box = (CROSS_HALF_M - j.half_size_m - 40.0, CROSS_HALF_M + j.half_size_m + 40.0)
        for direction, lanes in ((1, fwd_lanes), (-1, onc_lanes)):
            for d in lanes:
                density = sample_range(rng, prof.cross_density_per_km_lane)
                specs += _fill_lane(rng, prof, v_cruise, 1, direction, d, (5.0, 2 * CROSS_HALF_M - 5.0), density,
                                    [box], ())
    for q, (_, direction, stop_s) in enumerate(net.arms):
        d_m = fwd_lanes[-1] if direction > 0 else onc_lanes[0]
        p_front = direction * stop_s - 0.8
        for _ in range(int(rng.integers(0, 3))):
            spec = sample_vehicle(rng, prof, v_cruise, 1 + q, direction, 0.0, d_m)
            spec.s_m = direction * (p_front - 0.5 * spec.size_m[0])
            spec.speed_mps, spec.behaviour = 0.0, Behaviour.HOLD
            p_front -= spec.size_m[0] + 2.5
            specs.append(spec)
    return specs, lead_index, script


def _ego_lane(net: RoadNetwork, rng: np.random.Generator) -> int:
    """The forward lane the ego starts in: the one its junction turn leaves from, else a random one."""
    n = net.layout.n_forward
    turn = net.junction.turn if net.junction is not None else "straight"
    lane = int(rng.integers(n))
    return {"left": 0, "right": n - 1}.get(turn, lane)


def simulate_episode(scenario: Scenario | str, seed: int, episode_index: int, duration_s: float) -> SimulatedEpisode:
    """Simulate one episode of ``scenario`` (a Scenario or a registered name) for ``duration_s`` at 20 Hz."""
    scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
    rng = episode_rng(scenario, seed, episode_index)
    n_frames = int(round(duration_s / DT_S))
    v_cruise = sample_range(rng, scenario.driver.speed_mps)
    length_m = START_S_M + (v_cruise + 3.0) * duration_s + ROUTE_MARGIN_M
    junction_s = None
    if scenario.road.intersection != "none":
        frac = sample_range(rng, scenario.road.junction_time_fraction)
        junction_s = START_S_M + max(v_cruise * duration_s * frac, 60.0)
    net = build_network(scenario, rng, length_m, junction_s)
    lighting = sample_lighting(scenario.lighting, rng)
    lane = _ego_lane(net, rng)
    weights = np.asarray(scenario.lead.weights, dtype=np.float64)
    lead_behaviour = scenario.lead.behaviours[int(rng.choice(len(weights), p=weights / weights.sum()))]
    assert lead_behaviour in LEAD_BEHAVIOURS
    v_ego = v_cruise * sample_range(rng, (0.85, 1.0))
    specs, lead_index, script = _spawn(scenario, net, rng, v_cruise, lane, lead_behaviour, v_ego)
    if lead_index >= 0:
        v_ego = min(v_ego, specs[lead_index].speed_mps + 1.0)
    paths, gate = _junction_setup(net)
    span = None if net.junction is None else (net.junction.s_in_m, net.junction.s_out_m)
    traffic = Traffic(specs, paths, n_frames, DT_S, rng, lead_index, script, net.layout.side, span)
    ego = ExpertDriver(scenario, net, rng, duration_s, DT_S, START_S_M, lane, v_ego, v_cruise)
    for k in range(n_frames):
        t_s = k * DT_S
        agents = traffic.agents(ego.agent())
        if gate is not None:
            gate.update(t_s, agents)
        ego.step(t_s, agents, traffic.n, gate)
        traffic.step(k, t_s, agents, gate)
    truth = _truth(scenario, net, ego.arrays(), traffic)
    rgb = np.array([s.rgb for s in specs], dtype=np.uint8).reshape(-1, 3)
    return SimulatedEpisode(net.world, truth, lighting, rgb, scenario.name, int(seed), int(episode_index), net)


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
    ahead = s_cam_m[:, None] + np.arange(0.0, LINE_EXIST_AHEAD_M, 1.0)[None, :]  # (T, 50)
    exist = np.zeros(js.shape, bool)
    for j in np.unique(js):
        cover = _painted(route, float(j * w), ahead).mean(axis=1)  # (T,)
        exist |= (js == j) & (cover[:, None] >= 0.5)
    return {"lines_ned": lines, "lines_exist": exist, "edges_ned": edges}


def _others_poses(paths: list[TrafficPath], traffic: Traffic) -> np.ndarray:
    """(T, M, 6) box-bottom-centre poses from the recorded (s, d) of every vehicle."""
    h = traffic.hist
    T, M = h["s"].shape
    pose = np.zeros((T, M, 6))
    d_rate = np.gradient(h["d"], DT_S, axis=0) if T > 1 else np.zeros((T, M))
    for q, path in enumerate(paths):
        rows = np.flatnonzero(traffic.path == q)
        if len(rows) == 0:
            continue
        road = path.surface
        s, d = h["s"][:, rows], h["d"][:, rows]
        direction = traffic.direction[rows][None, :]
        pose[:, rows, :3] = road.point_at(s, d)
        heading = np.interp(s, road.s_m, np.unwrap(road.heading_rad))
        slip = np.arctan2(d_rate[:, rows], np.maximum(h["v"][:, rows], 0.5))
        yaw = heading + np.where(direction < 0, math.pi, 0.0) + direction * slip
        pose[:, rows, 4] = direction * np.interp(s, road.s_m, road.grade_rad)
        pose[:, rows, 5] = np.remainder(yaw + math.pi, 2 * math.pi) - math.pi
    return pose


def _truth(scenario: Scenario, net: RoadNetwork, ego: dict[str, np.ndarray], traffic: Traffic) -> EpisodeTruth:
    geometry = lane_geometry(net, ego["s_cam"], ego["d_cam"])
    h = traffic.hist
    truth = EpisodeTruth(
        dt_s=DT_S, ego_pose_ned=ego["pose"], ego_speed_mps=ego["v"], ego_accel_mps2=ego["a"],
        camera_height_m=CAMERA_HEIGHT_M, desire=ego["desire"].astype(np.int64), left_blinker=ego["left"],
        right_blinker=ego["right"], gas_pressed=ego["gas"], brake_pressed=ego["brake"], engaged=ego["engaged"],
        gas_disengage=ego["gas_dis"], brake_disengage=ego["brake_dis"], steer_override=ego["steer_ovr"],
        **geometry, others_pose_ned=_others_poses(traffic.paths, traffic), others_speed_mps=h["v"],
        others_accel_mps2=h["a"], others_size_m=traffic.size_m, others_present=h["present"],
        traffic_convention=scenario.traffic_convention)
    truth.validate()
    return truth

