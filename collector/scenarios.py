"""Named driving scenarios: what an episode of each kind looks like, as seeded parameter ranges.

A :class:`Scenario` is backend-neutral (the built-in simulator and, later, CARLA read the same object): it
holds *ranges* that a backend samples once per episode from its seeded generator. Every profile is a frozen
dataclass validated in ``__post_init__``; an invalid value raises :class:`ConfigError` naming the field,
the value and the fix. Units are in the names (``_m``, ``_mps``, ``_rad``, ``_s``); a ``(lo, hi)`` tuple is
an inclusive range sampled uniformly. Curvature signs are the contract's: positive turns right.

``get_scenario(name)`` returns a registered scenario; ``scenario_names()`` lists them. Variants are made
with ``dataclasses.replace`` (e.g. ``replace(get_scenario("curvy_road"), traffic_convention="left_hand")``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..contract.constants import TrafficConvention
from ..errors import ConfigError

Range = tuple[float, float]
INTERSECTION_KINDS = ("none", "priority", "all_way_stop")  # priority: the ego's road has right of way
LEAD_BEHAVIOURS = ("none", "cruise", "brakes", "stop_and_go")
MARKING_STYLES = ("solid", "dashed", "double_solid")
MARKING_COLORS = ("white", "yellow")
LOOKS = ("seen", "unseen")
# Verge (off-road ground) colours, 8-bit RGB under full light.
VERGE_RGB = {"green": (70, 100, 55), "olive": (95, 105, 60), "dry": (140, 125, 85), "snow": (215, 218, 225),
             "sand": (185, 165, 125)}
UNSEEN_LOOK_SUFFIX = "_unseen_look"


def sample_range(rng: np.random.Generator, bounds: Range) -> float:
    """One uniform draw from an inclusive ``(lo, hi)`` range (always consumes one draw)."""
    return float(bounds[0] + (bounds[1] - bounds[0]) * rng.random())


def sample_int(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """One uniform integer from an inclusive ``(lo, hi)`` range."""
    return int(rng.integers(int(bounds[0]), int(bounds[1]) + 1))


def _fail(owner: object, name: str, value: object, expected: str, fix: str) -> None:
    raise ConfigError(f"{type(owner).__name__}.{name} = {value!r}: expected {expected}; {fix}")


def _check_ranges(owner: object, bounds: dict[str, tuple[float, float]]) -> None:
    """Each named field must be a (lo, hi) pair with ``bounds[name][0] <= lo <= hi <= bounds[name][1]``."""
    for name, (lo_ok, hi_ok) in bounds.items():
        value = getattr(owner, name)
        ok = isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
        if not ok or not (lo_ok <= value[0] <= value[1] <= hi_ok):
            _fail(owner, name, value, f"a (lo, hi) tuple with {lo_ok} <= lo <= hi <= {hi_ok}",
                  "order the pair and keep it inside those bounds")


def _check_choice(owner: object, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(owner, name)
    items = value if isinstance(value, tuple) else (value,)
    if not items or any(v not in allowed for v in items):
        _fail(owner, name, value, f"values from {list(allowed)}", "use one of those names")


def _check_weights(owner: object, name: str, n: int) -> None:
    value = getattr(owner, name)
    if len(value) != n or any(w < 0 for w in value) or sum(value) <= 0:
        _fail(owner, name, value, f"{n} non-negative weights with a positive sum", "give one weight per choice")


@dataclass(frozen=True)
class RoadProfile:
    """Centreline geometry: arcs and straights joined by clothoids, a smooth grade, an optional junction."""

    radius_m: Range = (400.0, 3000.0)  # radius of each constant-curvature arc
    straight_prob: float = 0.3  # chance that a segment is straight instead of an arc
    segment_length_m: Range = (150.0, 500.0)  # length of each arc or straight
    transition_length_m: Range = (60.0, 150.0)  # clothoid length between segments
    grade: Range = (-0.04, 0.04)  # rise over run (positive climbs)
    grade_length_m: Range = (200.0, 600.0)  # distance between grade changes
    heading_limit_rad: float = 1.2  # the road's heading stays within this of its start (no loops)
    intersection: str = "none"  # one of INTERSECTION_KINDS
    junction_time_fraction: Range = (0.3, 0.45)  # where along the episode's nominal drive the junction is

    def __post_init__(self) -> None:
        _check_ranges(self, {"radius_m": (15.0, 1e6), "segment_length_m": (5.0, 1e4),
                             "transition_length_m": (2.0, 1e3), "grade": (-0.12, 0.12),
                             "grade_length_m": (20.0, 1e4), "junction_time_fraction": (0.05, 0.9)})
        if not 0.0 <= self.straight_prob <= 1.0:
            _fail(self, "straight_prob", self.straight_prob, "a probability in [0, 1]", "e.g. 0.3")
        if not 0.2 <= self.heading_limit_rad <= math.pi / 2:
            _fail(self, "heading_limit_rad", self.heading_limit_rad, "0.2 <= value <= pi/2",
                  "roads that may turn back on themselves can cross; keep it below pi/2")
        _check_choice(self, "intersection", INTERSECTION_KINDS)


@dataclass(frozen=True)
class LaneProfile:
    """Lanes and paint: ``lanes`` in the ego's direction, ``oncoming_lanes`` in the other (0: divided road)."""

    lanes: tuple[int, int] = (2, 3)
    oncoming_lanes: tuple[int, int] = (0, 0)
    lane_width_m: Range = (3.5, 3.8)
    shoulder_m: Range = (0.5, 2.5)  # paved beyond the outermost markings
    centre_styles: tuple[str, ...] = ("double_solid",)  # line between the directions (oncoming roads)
    median_edge_colors: tuple[str, ...] = ("yellow", "white")  # median-side edge line of a divided road
    dash_m: Range = (3.0, 3.0)
    gap_m: Range = (9.0, 9.0)
    line_width_m: Range = (0.10, 0.15)

    def __post_init__(self) -> None:
        _check_ranges(self, {"lanes": (1, 4), "oncoming_lanes": (0, 4), "lane_width_m": (3.0, 3.9),
                             "shoulder_m": (0.0, 4.0), "dash_m": (0.5, 20.0), "gap_m": (0.5, 30.0),
                             "line_width_m": (0.05, 0.5)})
        _check_choice(self, "centre_styles", MARKING_STYLES)
        _check_choice(self, "median_edge_colors", MARKING_COLORS)


@dataclass(frozen=True)
class TrafficProfile:
    """Other vehicles: how many, how they follow (IDM) and how eagerly they change lanes (MOBIL)."""

    density_per_km_lane: Range = (4.0, 10.0)  # vehicles in the ego's direction
    oncoming_density_per_km_lane: Range = (3.0, 8.0)
    cross_density_per_km_lane: Range = (4.0, 10.0)  # on a crossing road
    speed_factor: Range = (0.85, 1.15)  # desired speed relative to the ego's cruise speed
    time_headway_s: Range = (1.0, 2.0)
    min_gap_m: Range = (2.0, 3.0)
    max_accel_mps2: Range = (1.0, 2.0)
    comfort_decel_mps2: Range = (1.5, 2.5)
    politeness: Range = (0.1, 0.5)  # MOBIL weight of the others' advantage
    lane_change_threshold_mps2: Range = (0.15, 0.4)  # lower = more lane changes
    truck_fraction: float = 0.08
    van_fraction: float = 0.12
    clear_beside_m: float = 8.0  # no vehicle starts this close ahead of or behind the ego in the lanes beside it

    def __post_init__(self) -> None:
        _check_ranges(self, {"density_per_km_lane": (0.0, 60.0), "oncoming_density_per_km_lane": (0.0, 60.0),
                             "cross_density_per_km_lane": (0.0, 60.0), "speed_factor": (0.1, 2.0),
                             "time_headway_s": (0.5, 4.0), "min_gap_m": (1.0, 10.0),
                             "max_accel_mps2": (0.3, 4.0), "comfort_decel_mps2": (0.5, 5.0),
                             "politeness": (0.0, 1.0), "lane_change_threshold_mps2": (0.0, 3.0)})
        for name in ("truck_fraction", "van_fraction"):
            if not 0.0 <= getattr(self, name) <= 0.5:
                _fail(self, name, getattr(self, name), "a fraction in [0, 0.5]", "e.g. 0.1")
        if not 0.0 <= self.clear_beside_m <= 200.0:
            _fail(self, "clear_beside_m", self.clear_beside_m, "metres in [0, 200]", "e.g. 8")


@dataclass(frozen=True)
class LeadProfile:
    """The vehicle ahead in the ego's lane at the start: one behaviour from ``behaviours`` per episode."""

    behaviours: tuple[str, ...] = ("cruise",)  # from LEAD_BEHAVIOURS
    weights: tuple[float, ...] = (1.0,)
    gap_s: Range = (1.2, 3.0)  # initial time gap
    speed_factor: Range = (0.75, 0.95)  # lead cruise speed / ego cruise speed
    speed_variation: Range = (0.0, 0.15)  # relative amplitude of slow cruise-speed changes
    brake_decel_mps2: Range = (3.0, 6.0)  # "brakes": hard braking events
    brake_interval_s: Range = (7.0, 14.0)
    brake_duration_s: Range = (1.0, 2.5)
    go_duration_s: Range = (6.0, 12.0)  # "stop_and_go": time moving between stops
    first_go_s: Range | None = None  # "stop_and_go": time moving before the first stop (None: go_duration_s)
    stop_decel_mps2: Range = (1.5, 3.0)
    stop_dwell_s: Range = (2.0, 5.0)

    def __post_init__(self) -> None:
        _check_choice(self, "behaviours", LEAD_BEHAVIOURS)
        _check_weights(self, "weights", len(self.behaviours))
        _check_ranges(self, {"gap_s": (0.5, 10.0), "speed_factor": (0.1, 1.5), "speed_variation": (0.0, 0.5),
                             "brake_decel_mps2": (0.5, 9.0), "brake_interval_s": (2.0, 120.0),
                             "brake_duration_s": (0.2, 10.0), "go_duration_s": (1.0, 120.0),
                             "stop_decel_mps2": (0.5, 6.0), "stop_dwell_s": (0.0, 60.0)})
        if self.first_go_s is not None:
            _check_ranges(self, {"first_go_s": (0.0, 120.0)})

    @property
    def first_stop_after_s(self) -> Range:
        """For "stop_and_go": the range of the time moving before the first stop."""
        return self.go_duration_s if self.first_go_s is None else self.first_go_s


@dataclass(frozen=True)
class DesireProfile:
    """Desire events: the ego's lane changes and, at a junction, its choice of left / straight / right."""

    lane_changes_per_min: Range = (0.0, 0.0)
    first_lane_change_s: Range = (4.0, 10.0)  # the first one is requested this long after the start
    turn_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # left, straight, right

    def __post_init__(self) -> None:
        _check_ranges(self, {"lane_changes_per_min": (0.0, 12.0), "first_lane_change_s": (0.0, 600.0)})
        _check_weights(self, "turn_weights", 3)


@dataclass(frozen=True)
class LightingProfile:
    """Appearance of an episode: sun, ambient light, exposure, sensor noise, and the look of asphalt, paint and
    verges. ``look="unseen"`` draws from looks no training preset uses (very dark or very light pavement, dry or
    snowy verges, faded paint, dusk skies, heavy noise): the held-out appearance test."""

    sun_elevation_rad: Range = (0.15, 1.2)
    ambient: Range = (0.4, 0.7)
    exposure: Range = (0.8, 1.25)
    noise_std: Range = (1.0, 4.0)  # 8-bit units
    overcast_prob: float = 0.25  # an overcast episode: high ambient light, grey sky
    asphalt_grey: Range = (60.0, 120.0)  # 8-bit grey of the pavement
    paint_wear: Range = (0.0, 0.4)  # 0: fresh paint, 1: as dark as the asphalt
    texture_contrast: Range = (0.04, 0.14)  # relative brightness range of the asphalt texture
    verges: tuple[str, ...] = ("green", "olive", "dry")  # VERGE_RGB names, drawn uniformly
    look: str = "seen"  # "seen" (training) or "unseen" (held-out appearance)

    def __post_init__(self) -> None:
        _check_ranges(self, {"sun_elevation_rad": (0.0, math.pi / 2), "ambient": (0.0, 1.0),
                             "exposure": (0.1, 4.0), "noise_std": (0.0, 20.0), "asphalt_grey": (20.0, 200.0),
                             "paint_wear": (0.0, 0.9), "texture_contrast": (0.0, 0.5)})
        if not 0.0 <= self.overcast_prob <= 1.0:
            _fail(self, "overcast_prob", self.overcast_prob, "a probability in [0, 1]", "e.g. 0.25")
        _check_choice(self, "look", LOOKS)
        if not self.verges or any(v not in VERGE_RGB for v in self.verges):
            _fail(self, "verges", self.verges, f"names from {sorted(VERGE_RGB)}", "e.g. ('green', 'dry')")


@dataclass(frozen=True)
class DriverProfile:
    """The expert ego driver: cruise speed, following, comfort limits, and how human it is: lateral wander,
    reaction time, speed changes, perturbations (with recoveries) and takeovers."""

    speed_mps: Range = (22.0, 32.0)  # cruise speed
    time_headway_s: Range = (1.3, 1.8)
    max_lat_accel_mps2: Range = (1.8, 2.5)  # curves are taken at or below this
    perturbations_per_min: Range = (1.0, 3.0)  # steering noise bursts the controller recovers from
    takeovers_per_min: float = 0.2  # "driver takes over" events (disengagements)
    wander_m: Range = (0.08, 0.25)  # how far the driver wanders about the lane centre (std of a slow random walk)
    wander_time_s: Range = (2.0, 6.0)  # ... and how slowly (its time constant)
    reaction_s: Range = (0.2, 0.6)  # the pedals follow the driver's decision this late (not emergency braking)
    speed_changes_per_min: Range = (1.0, 3.0)  # the driver picks a new cruise speed ...
    speed_change_factor: Range = (0.8, 1.05)  # ... this times the episode's cruise speed
    brake_onset_mps2: Range = (1.0, 1.8)  # braking for a curve or turn ahead starts once it needs about this much
    big_perturbation_share: float = 0.25  # perturbations that push the car twice as hard (larger excursions)
    slow_start_share: float = 0.3  # episodes that start well below the cruise speed (the driver speeds up) ...
    slow_start_factor: Range = (0.1, 0.8)  # ... at this times the cruise speed

    def __post_init__(self) -> None:
        _check_ranges(self, {"speed_mps": (1.0, 45.0), "time_headway_s": (0.8, 4.0),
                             "max_lat_accel_mps2": (0.5, 4.0), "perturbations_per_min": (0.0, 20.0),
                             "wander_m": (0.0, 0.6), "wander_time_s": (0.5, 30.0), "reaction_s": (0.0, 1.5),
                             "speed_changes_per_min": (0.0, 12.0), "speed_change_factor": (0.3, 1.3),
                             "brake_onset_mps2": (0.2, 3.0), "slow_start_factor": (0.0, 1.0)})
        for name, example in (("big_perturbation_share", "0.25"), ("slow_start_share", "0.3")):
            if not 0.0 <= getattr(self, name) <= 1.0:
                _fail(self, name, getattr(self, name), "a fraction in [0, 1]", f"e.g. {example}")
        if not 0.0 <= self.takeovers_per_min <= 2.0:
            _fail(self, "takeovers_per_min", self.takeovers_per_min, "a rate in [0, 2] per minute",
                  "takeovers are rare events; e.g. 0.2")


@dataclass(frozen=True)
class CameraProfile:
    """How the device sits in the car, per episode: mounting height, its rotation in the car and the error of modeld's
    calibration of it, the wide camera's rotation against the road camera, and how the body pitches and rolls."""

    height_m: Range = (1.0, 1.6)  # camera above the road
    mount_deg: float = 1.5  # std of each of roll, pitch, yaw of the device in the car (the warp removes it ...)
    calib_error_deg: float = 0.1  # ... up to modeld's calibration error: std of each angle the model frames show
    wide_rotation_deg: float = 0.5  # std of each angle of wide_from_device_euler
    pitch_per_mps2: Range = (0.002, 0.004)  # body pitch (rad) per m/s^2 of acceleration (nose down braking)
    roll_per_mps2: Range = (0.004, 0.008)  # body roll (rad) per m/s^2 of lateral acceleration (leaning out)

    def __post_init__(self) -> None:
        _check_ranges(self, {"height_m": (0.5, 2.5), "pitch_per_mps2": (0.0, 0.02), "roll_per_mps2": (0.0, 0.03)})
        for name in ("mount_deg", "calib_error_deg", "wide_rotation_deg"):
            if not 0.0 <= getattr(self, name) <= 5.0:
                _fail(self, name, getattr(self, name), "degrees in [0, 5]", "e.g. 1.0")


@dataclass(frozen=True)
class Scenario:
    """A named kind of episode: every profile plus the traffic convention."""

    name: str
    description: str
    road: RoadProfile = field(default_factory=RoadProfile)
    lanes: LaneProfile = field(default_factory=LaneProfile)
    traffic: TrafficProfile = field(default_factory=TrafficProfile)
    lead: LeadProfile = field(default_factory=LeadProfile)
    desire: DesireProfile = field(default_factory=DesireProfile)
    lighting: LightingProfile = field(default_factory=LightingProfile)
    driver: DriverProfile = field(default_factory=DriverProfile)
    camera: CameraProfile = field(default_factory=CameraProfile)
    traffic_convention: str = TrafficConvention.RIGHT_HAND.value
    seed_name: str = ""  # the name the episode's randomness is keyed by; "" = its own name

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            _fail(self, "name", self.name, "a non-empty snake_case name", "use letters, digits and '_'")
        conventions = tuple(c.value for c in TrafficConvention)
        _check_choice(self, "traffic_convention", conventions)
        for f in fields(self):
            kind = {"road": RoadProfile, "lanes": LaneProfile, "traffic": TrafficProfile, "lead": LeadProfile,
                    "desire": DesireProfile, "lighting": LightingProfile, "driver": DriverProfile,
                    "camera": CameraProfile}.get(f.name)
            if kind is not None and not isinstance(getattr(self, f.name), kind):
                _fail(self, f.name, getattr(self, f.name), f"a {kind.__name__}", f"build it with {kind.__name__}(...)")
        if self.road.intersection != "none" and self.lanes.oncoming_lanes[0] < 1:
            _fail(self, "lanes", self.lanes, "oncoming_lanes >= 1 for a scenario with a junction",
                  "junctions are built on two-way roads; set oncoming_lanes=(1, ...)")

    @property
    def stable_id(self) -> int:
        """A process-independent id of the name (CRC-32), for seeding. A variant keyed by its base's name
        (``seed_name``) draws the same roads, traffic and driving as its base for the same seed."""
        return zlib.crc32((self.seed_name or self.name).encode("utf-8"))


_HIGHWAY_ROAD = RoadProfile(radius_m=(400.0, 3000.0), straight_prob=0.35, segment_length_m=(150.0, 600.0),
                            transition_length_m=(60.0, 200.0), grade=(-0.04, 0.04), heading_limit_rad=1.2)
_HIGHWAY_LANES = LaneProfile(lanes=(2, 4), oncoming_lanes=(0, 0), lane_width_m=(3.5, 3.9), shoulder_m=(1.0, 3.0))
_URBAN_ROAD = RoadProfile(radius_m=(150.0, 1000.0), straight_prob=0.6, segment_length_m=(60.0, 250.0),
                          transition_length_m=(20.0, 60.0), grade=(-0.03, 0.03), grade_length_m=(100.0, 300.0),
                          heading_limit_rad=0.35, intersection="priority",
                          # up to 18 s into a 10 s episode with its 10 s label tail: urban driving is not all
                          # braking for a turn (a model learns to slow down wherever a road looks urban)
                          junction_time_fraction=(0.3, 0.9))
_URBAN_TRAFFIC = TrafficProfile(density_per_km_lane=(5.0, 12.0), oncoming_density_per_km_lane=(5.0, 12.0),
                                speed_factor=(0.8, 1.1), max_accel_mps2=(1.2, 2.0))

_SCENARIOS = (
    Scenario(
        "highway_follow", "multi-lane divided highway, gentle curves, following a lead that cruises or brakes",
        road=_HIGHWAY_ROAD, lanes=_HIGHWAY_LANES,
        # an open road now and then: with a lead in 90 % of episodes and 4-10 vehicles per km and lane, 1.5 % of the
        # frames had no lead, and a model slowed down on any empty highway (docs/simulator.md)
        traffic=TrafficProfile(density_per_km_lane=(1.0, 8.0)),
        lead=LeadProfile(behaviours=("cruise", "brakes", "none"), weights=(0.45, 0.25, 0.3)),
        desire=DesireProfile(lane_changes_per_min=(0.0, 0.5)),
        driver=DriverProfile(speed_mps=(22.0, 32.0), takeovers_per_min=0.2)),
    Scenario(
        "urban_intersection", "two-way urban road with a priority junction where the ego turns or goes straight",
        road=_URBAN_ROAD,
        lanes=LaneProfile(lanes=(1, 2), oncoming_lanes=(1, 2), lane_width_m=(3.0, 3.6), shoulder_m=(0.3, 1.0),
                          centre_styles=("double_solid", "solid")),
        traffic=_URBAN_TRAFFIC,
        lead=LeadProfile(behaviours=("cruise", "none"), weights=(0.6, 0.4), gap_s=(1.5, 3.0)),
        driver=DriverProfile(speed_mps=(10.0, 14.0), takeovers_per_min=0.0)),
    Scenario(
        "suburban_four_way_stop", "one lane each way into an all-way stop: stop at the line, wait, go",
        road=RoadProfile(radius_m=(150.0, 800.0), straight_prob=0.6, segment_length_m=(60.0, 200.0),
                         transition_length_m=(20.0, 60.0), grade=(-0.03, 0.03), grade_length_m=(100.0, 300.0),
                         heading_limit_rad=0.35, intersection="all_way_stop"),
        lanes=LaneProfile(lanes=(1, 1), oncoming_lanes=(1, 1), lane_width_m=(3.0, 3.6), shoulder_m=(0.3, 1.2),
                          centre_styles=("double_solid", "solid", "dashed")),
        traffic=TrafficProfile(density_per_km_lane=(3.0, 8.0), oncoming_density_per_km_lane=(3.0, 8.0),
                               cross_density_per_km_lane=(4.0, 10.0), speed_factor=(0.8, 1.1)),
        lead=LeadProfile(behaviours=("none", "cruise"), weights=(0.6, 0.4), gap_s=(2.0, 3.5)),
        driver=DriverProfile(speed_mps=(8.0, 12.0), takeovers_per_min=0.0)),
    Scenario(
        "curvy_road", "rural two-lane road with tight curves (radii 60-200 m) and hills",
        road=RoadProfile(radius_m=(60.0, 200.0), straight_prob=0.15, segment_length_m=(30.0, 150.0),
                         transition_length_m=(20.0, 60.0), grade=(-0.05, 0.05), grade_length_m=(100.0, 300.0),
                         heading_limit_rad=1.3),
        lanes=LaneProfile(lanes=(1, 1), oncoming_lanes=(1, 1), lane_width_m=(3.0, 3.6), shoulder_m=(0.3, 1.0),
                          centre_styles=("double_solid", "solid", "dashed")),
        traffic=TrafficProfile(density_per_km_lane=(1.0, 4.0), oncoming_density_per_km_lane=(2.0, 6.0)),
        lead=LeadProfile(behaviours=("cruise", "none"), weights=(0.5, 0.5), gap_s=(2.0, 4.0)),
        driver=DriverProfile(speed_mps=(14.0, 22.0), max_lat_accel_mps2=(1.8, 2.5), takeovers_per_min=0.3)),
    Scenario(
        "lane_change", "multi-lane highway where the ego changes lanes every 15-25 s",
        road=_HIGHWAY_ROAD, lanes=_HIGHWAY_LANES,
        traffic=TrafficProfile(density_per_km_lane=(2.0, 6.0)),
        lead=LeadProfile(behaviours=("cruise", "none"), weights=(0.5, 0.5), gap_s=(2.0, 4.0)),
        desire=DesireProfile(lane_changes_per_min=(2.5, 4.0), first_lane_change_s=(2.0, 5.0)),
        driver=DriverProfile(speed_mps=(22.0, 30.0), takeovers_per_min=0.1)),
    Scenario(
        "stop_and_go", "congested highway: the lead repeatedly stops and restarts",
        road=RoadProfile(radius_m=(500.0, 3000.0), straight_prob=0.4, segment_length_m=(150.0, 500.0),
                         transition_length_m=(60.0, 150.0)),
        lanes=LaneProfile(lanes=(1, 3), oncoming_lanes=(0, 0), lane_width_m=(3.5, 3.9), shoulder_m=(1.0, 3.0)),
        traffic=TrafficProfile(density_per_km_lane=(15.0, 30.0), speed_factor=(0.3, 0.7),
                               lane_change_threshold_mps2=(0.5, 1.0)),
        # the first stop early (a 10 s episode records the approach, the stop and the restart, not only the go)
        lead=LeadProfile(behaviours=("stop_and_go",), weights=(1.0,), gap_s=(1.5, 2.5), speed_factor=(0.7, 0.9),
                         go_duration_s=(4.0, 8.0), first_go_s=(0.5, 3.0), stop_dwell_s=(1.5, 4.0)),
        driver=DriverProfile(speed_mps=(10.0, 16.0), perturbations_per_min=(0.5, 1.5), takeovers_per_min=0.1)),
)
_REGISTRY = {s.name: s for s in _SCENARIOS}


def scenario_names() -> list[str]:
    """The registered scenario names, in registration order."""
    return list(_REGISTRY)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name`` (a registered name, or one + ``_unseen_look``: see :func:`with_unseen_look`);
    ConfigError listing the known names otherwise."""
    if isinstance(name, str) and name.endswith(UNSEEN_LOOK_SUFFIX) and name[: -len(UNSEEN_LOOK_SUFFIX)] in _REGISTRY:
        return with_unseen_look(_REGISTRY[name[: -len(UNSEEN_LOOK_SUFFIX)]])
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown scenario {name!r}; known scenarios: {', '.join(_REGISTRY)} "
                          f"(each also as NAME{UNSEEN_LOOK_SUFFIX}, the held-out look)") from None


# The held-out appearance test: the same roads and driving, drawn with looks no training scenario uses (low sun
# and dim light, strong exposure and noise, light concrete-grey pavement, worn paint, snowy or sandy
# verges, coarse asphalt texture).
UNSEEN_LIGHTING = LightingProfile(sun_elevation_rad=(0.05, 0.15), ambient=(0.25, 0.4), exposure=(1.3, 1.6),
                                  noise_std=(5.0, 7.0), overcast_prob=0.0, asphalt_grey=(140.0, 200.0),
                                  paint_wear=(0.5, 0.7), texture_contrast=(0.15, 0.25), verges=("snow", "sand"),
                                  look="unseen")


def with_unseen_look(scenario: Scenario) -> Scenario:
    """``scenario`` drawn with the held-out look (``UNSEEN_LIGHTING``), named ``NAME_unseen_look`` and keyed by the
    base's name, so the same seed gives the same roads, traffic and driving under a look never trained on."""
    if scenario.lighting.look == "unseen":
        return scenario
    return replace(scenario, name=scenario.name + UNSEEN_LOOK_SUFFIX, lighting=UNSEEN_LIGHTING,
                   seed_name=scenario.seed_name or scenario.name)
