"""The seeded decisions of a CARLA episode, drawn before any server call from (scenario, seed, episode).

Speeds, gaps, the lead's behaviour and its events, lane-change times, the route at junctions, traffic and
weather all come from the scenario's profiles (``collector/scenarios.py``), so a scenario means the same in
both backends as far as CARLA lets it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..scenarios import Scenario, sample_range
from .versions import CarlaScenario

TRAFFIC_KM_LANE = 2.0  # traffic density x this = vehicles spawned around the ego
MAX_TRAFFIC = 40
BLINK_LEAD_S = (1.0, 2.0)  # blinker on this long before a lane change is commanded
WARMUP_S = 3.0  # ticks before recording: vehicles settle on the road and set off ...
WARMUP_SPEED_FRACTION = 0.7  # ... and the ego reaches this fraction of its cruise speed ...
WARMUP_MAX_S = 20.0  # ... or this long has passed


@dataclass
class EpisodeSchedule:
    ego_speed_mps: float
    headway_s: float
    lead: str  # LEAD_BEHAVIOURS
    lead_gap_s: float
    lead_speed_mps: float
    traffic: int
    traffic_speed_diff_pct: list[float]
    route: list[str]
    weather: dict[str, float]
    # (frame, kind, value): "lead_speed" km/h | "blink" side | "lane_change" side; frames count from recording
    events: list[tuple[int, str, float]] = field(default_factory=list)


def _lead_events(scenario: Scenario, behaviour: str, speed_mps: float, duration_s: float, dt_s: float,
                 rng: np.random.Generator) -> list[tuple[int, str, float]]:
    lead, events, t = scenario.lead, [], 0.0
    if behaviour == "brakes":
        while True:
            t += sample_range(rng, lead.brake_interval_s)
            if t >= duration_s:
                break
            hold = sample_range(rng, lead.brake_duration_s)
            slow = max(speed_mps - sample_range(rng, lead.brake_decel_mps2) * hold, 0.0)
            events += [(int(t / dt_s), "lead_speed", slow * 3.6), (int((t + hold) / dt_s), "lead_speed",
                                                                     speed_mps * 3.6)]
            t += hold
    elif behaviour == "stop_and_go":
        while t < duration_s:
            t += sample_range(rng, lead.go_duration_s if events else lead.first_stop_after_s)
            stop_s = speed_mps / sample_range(rng, lead.stop_decel_mps2) + sample_range(rng, lead.stop_dwell_s)
            events += [(int(t / dt_s), "lead_speed", 0.0), (int((t + stop_s) / dt_s), "lead_speed", speed_mps * 3.6)]
            t += stop_s
    return [e for e in events if e[0] < duration_s / dt_s]


def _lane_change_events(scenario: Scenario, duration_s: float, dt_s: float,
                        rng: np.random.Generator) -> list[tuple[int, str, float]]:
    rate = sample_range(rng, scenario.desire.lane_changes_per_min)
    if rate <= 0:
        return []
    events, t = [], sample_range(rng, scenario.desire.first_lane_change_s)
    while t < duration_s - 12.0:  # leave room for the move and the schedule horizon
        side = float(rng.choice([-1.0, 1.0]))
        blink = t - sample_range(rng, BLINK_LEAD_S)
        events += [(int(max(blink, 0.0) / dt_s), "blink", side), (int(t / dt_s), "lane_change", side)]
        t += 60.0 / rate * sample_range(rng, (0.7, 1.3))
    return events


def _weather(scenario: Scenario, rng: np.random.Generator) -> dict[str, float]:
    light = scenario.lighting
    overcast = bool(rng.random() < light.overcast_prob)
    return {"cloudiness": sample_range(rng, (80.0, 100.0) if overcast else (0.0, 30.0)),
            "precipitation": 0.0, "precipitation_deposits": 0.0,
            "wind_intensity": sample_range(rng, (0.0, 30.0)),
            "sun_azimuth_angle": sample_range(rng, (0.0, 360.0)),
            "sun_altitude_angle": math.degrees(sample_range(rng, light.sun_elevation_rad)),
            "fog_density": sample_range(rng, (0.0, 10.0)), "wetness": 0.0}


def schedule_episode(scenario: Scenario, mapping: CarlaScenario, rng: np.random.Generator, duration_s: float,
                 dt_s: float) -> EpisodeSchedule:
    driver, lead = scenario.driver, scenario.lead
    speed = sample_range(rng, driver.speed_mps)
    behaviour = str(rng.choice(lead.behaviours, p=np.asarray(lead.weights) / sum(lead.weights)))
    lead_speed = speed * sample_range(rng, lead.speed_factor)
    traffic = min(MAX_TRAFFIC, int(round(sample_range(rng, scenario.traffic.density_per_km_lane) * TRAFFIC_KM_LANE)))
    turn_p = np.asarray(scenario.desire.turn_weights) / sum(scenario.desire.turn_weights)
    route = [str(rng.choice(["Left", "Straight", "Right"], p=turn_p)) for _ in range(8)] if mapping.route else []
    diffs = [100.0 * (1.0 - sample_range(rng, scenario.traffic.speed_factor)) for _ in range(traffic)]
    events = _lead_events(scenario, behaviour, lead_speed, duration_s, dt_s, rng) if behaviour != "none" else []
    events += _lane_change_events(scenario, duration_s, dt_s, rng)
    return EpisodeSchedule(ego_speed_mps=speed, headway_s=sample_range(rng, driver.time_headway_s), lead=behaviour,
                       lead_gap_s=sample_range(rng, lead.gap_s), lead_speed_mps=lead_speed, traffic=traffic,
                       traffic_speed_diff_pct=diffs, route=route, weather=_weather(scenario, rng),
                       events=sorted(events))


def episode_rng(scenario: Scenario, seed: int, episode_index: int) -> np.random.Generator:
    return np.random.default_rng([scenario.stable_id, int(seed), int(episode_index), 0xCA41A])

