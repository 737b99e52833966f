"""Setting up one episode of the built-in simulator: its road network, lighting, traffic and the ego's start.

All randomness comes from ``np.random.default_rng([seed, episode_index, scenario.stable_id])`` drawn in a fixed
order (:func:`setup_episode`), so a (scenario, seed, episode) is bit-identical across runs and processes. The same
generator then drives the episode's decisions (the expert's and traffic's), step by step. The look of the episode
(:func:`sample_lighting`) has a stream of its own (:func:`appearance_rng`), so a scenario drawn with another look
(``scenarios.with_unseen_look``) drives exactly the same episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...contract.constants import DT_S
from ..scenarios import LEAD_BEHAVIOURS, VERGE_RGB, LightingProfile, Scenario, TrafficProfile, sample_range
from .junction import Approach, JunctionGate
from .roads import CROSS_HALF_M, RoadNetwork, build_network
from .traffic import Behaviour, LeadScript, TrafficPath, VehicleSpec
from .world import Lighting

START_S_M = 100.0  # the camera's route arc length at frame 0
ROUTE_MARGIN_M = 350.0  # route beyond the ego's furthest reach (lines need 230 m, traffic more)
APPEARANCE_STREAM = 0xA99E  # the random stream of an episode's look, apart from the simulation's
START_SPEED_STREAM = 0x57A7  # the stream of a slow start, apart from the rest of the episode's draws

VEHICLE_KINDS = {  # length, width, height ranges (m)
    "car": ((4.2, 4.9), (1.75, 1.9), (1.4, 1.55)),
    "suv": ((4.5, 5.0), (1.85, 2.0), (1.65, 1.85)),
    "van": ((5.0, 5.6), (1.95, 2.1), (1.95, 2.4)),
    "truck": ((8.0, 12.0), (2.45, 2.55), (3.2, 3.8)),
}
PALETTE_RGB = ((235, 235, 235), (25, 25, 28), (160, 162, 168), (95, 98, 104), (150, 25, 30), (30, 55, 120),
               (40, 70, 50), (200, 190, 165), (170, 120, 40), (90, 20, 25), (60, 110, 160), (220, 200, 40))


@dataclass
class EpisodeSetup:
    """Everything drawn before the first step, in the order it is drawn."""

    rng: np.random.Generator
    n_frames: int
    v_cruise_mps: float
    network: RoadNetwork
    lighting: Lighting
    lane: int  # forward lane the ego starts in
    lead_behaviour: str
    v_ego_mps: float  # the ego's speed at frame 0
    specs: list[VehicleSpec]
    lead_index: int
    lead_script: LeadScript | None
    paths: list[TrafficPath]
    gate: JunctionGate | None


def episode_rng(scenario: Scenario, seed: int, episode_index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(episode_index), scenario.stable_id])


def appearance_rng(scenario: Scenario, seed: int, episode_index: int) -> np.random.Generator:
    """The episode's appearance stream, apart from the simulation's: a look changes nothing of the driving."""
    return np.random.default_rng([int(seed), int(episode_index), APPEARANCE_STREAM, scenario.stable_id])


def slow_start_mps(scenario: Scenario, seed: int, episode_index: int, v_cruise_mps: float) -> float:
    """The ego's speed at frame 0 in an episode that starts slow (a share ``slow_start_share`` of them, at
    ``slow_start_factor`` times the cruise speed: the driver then speeds up, so the data holds what to do below the
    road's speed with nothing ahead - a model that drifts slow in closed loop otherwise never saw it), else inf. A
    stream of its own: the rest of the episode's draws stay as they are."""
    drv = scenario.driver
    rng = np.random.default_rng([int(seed), int(episode_index), START_SPEED_STREAM, scenario.stable_id])
    if drv.slow_start_share <= 0.0 or rng.random() >= drv.slow_start_share:
        return math.inf
    return v_cruise_mps * sample_range(rng, drv.slow_start_factor)


def sample_lighting(profile: LightingProfile, rng: np.random.Generator) -> Lighting:
    overcast = rng.random() < profile.overcast_prob
    elevation = sample_range(rng, profile.sun_elevation_rad)
    azimuth = sample_range(rng, (0.0, 2.0 * math.pi))
    ambient = sample_range(rng, profile.ambient)
    exposure, noise = sample_range(rng, profile.exposure), sample_range(rng, profile.noise_std)
    grey = sample_range(rng, profile.asphalt_grey)
    tint = sample_range(rng, (-3.0, 3.0))  # a bluish or brownish cast
    asphalt = (grey - tint, grey, grey + tint)
    verge = np.asarray(VERGE_RGB[profile.verges[int(rng.integers(len(profile.verges)))]], dtype=np.float64)
    verge = verge * sample_range(rng, (0.85, 1.15))  # lighter or darker
    wear, contrast = sample_range(rng, profile.paint_wear), sample_range(rng, profile.texture_contrast)
    if overcast:
        sky = (170, 175, 182)
        ambient = min(0.95, ambient + 0.3)
    else:  # warmer and paler towards the horizon at low sun
        u = min(elevation / 0.8, 1.0)
        sky = tuple(int(round(lo + (hi - lo) * u)) for lo, hi in zip((205, 175, 150), (130, 170, 225)))
    return Lighting(sun_elevation_rad=elevation, sun_azimuth_rad=azimuth, ambient=ambient, exposure=exposure,
                    sky_rgb=sky, noise_std=noise, asphalt_rgb=_rgb(asphalt), grass_rgb=_rgb(verge), paint_wear=wear,
                    asphalt_contrast=contrast)


def _rgb(colour) -> tuple[int, int, int]:
    r, g, b = (int(round(min(max(float(c), 0.0), 255.0))) for c in colour)
    return r, g, b


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
        beside = (START_S_M - prof.clear_beside_m, START_S_M + prof.clear_beside_m)
        skip = fwd_skip + ([ego_zone] if k == lane else [beside])
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


def setup_episode(scenario: Scenario, seed: int, episode_index: int, duration_s: float,
                  start_lane: int | None = None) -> EpisodeSetup:
    """Draw an episode's world and starting state (:class:`EpisodeSetup`); ``start_lane`` (forward lane index,
    clamped to the road) replaces the drawn lane, the draws staying the same."""
    rng = episode_rng(scenario, seed, episode_index)
    n_frames = int(round(duration_s / DT_S))
    v_cruise = sample_range(rng, scenario.driver.speed_mps)
    length_m = START_S_M + (v_cruise + 3.0) * duration_s + ROUTE_MARGIN_M
    junction_s = None
    if scenario.road.intersection != "none":
        frac = sample_range(rng, scenario.road.junction_time_fraction)
        junction_s = START_S_M + max(v_cruise * duration_s * frac, 60.0)
    net = build_network(scenario, rng, length_m, junction_s)
    lighting = sample_lighting(scenario.lighting, appearance_rng(scenario, seed, episode_index))
    lane = _ego_lane(net, rng)
    if start_lane is not None:
        lane = min(max(int(start_lane), 0), net.layout.n_forward - 1)
    weights = np.asarray(scenario.lead.weights, dtype=np.float64)
    lead_behaviour = scenario.lead.behaviours[int(rng.choice(len(weights), p=weights / weights.sum()))]
    assert lead_behaviour in LEAD_BEHAVIOURS
    v_ego = v_cruise * sample_range(rng, (0.85, 1.0))
    specs, lead_index, script = _spawn(scenario, net, rng, v_cruise, lane, lead_behaviour, v_ego)
    if lead_index >= 0:
        v_ego = min(v_ego, specs[lead_index].speed_mps + 1.0)
    v_ego = min(v_ego, slow_start_mps(scenario, seed, episode_index, v_cruise))
    paths, gate = _junction_setup(net)
    return EpisodeSetup(rng, n_frames, v_cruise, net, lighting, lane, lead_behaviour, v_ego, specs, lead_index,
                        script, paths, gate)
