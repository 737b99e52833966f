"""The road-test suites: which runs each suite holds and what passing means - one readable table.

A run is one episode of a scenario variant of the built-in simulator (episode ``index`` of seed ``--seed``, so the
same command always drives the same roads, traffic and lighting), driven in closed loop. The variants switch off
what a road test does not want (the expert's own lane changes, takeovers and steering perturbations) and pin what
it measures (speeds, curvature, the lead's behaviour, the start lane). ``--runs N`` takes the first N runs of a
suite's list, which is interleaved across its groups so that a few runs already cover its spread.

* ``lane_keep`` (24 runs, 60 s): curvy rural roads from tight (radii 60-120 m) to wide, highways slow and fast, an
  urban two-way road. Passes when the car completes the run without ever putting a wheel more than
  ``WHEEL_OVER_LINE_M`` over a lane line.
* ``lane_change`` (20 runs, 25 s): three-lane highways, from the middle lane, 10 changes to the left and 10 to the
  right, half of them among traffic. The driver signals at ``LANE_CHANGE_AT_S``; passes when the car crosses into
  the requested lane within ``LANE_CHANGE_WITHIN_S`` and then stays within ``SETTLED_M`` of its centre for
  ``SETTLED_FOR_S``, and completes the run.
* ``follow`` (12 runs, 40 s): a lead that brakes hard (highway) or stops and goes (congestion). Passes when the run
  completes without a collision and the time gap (gap / own speed, while moving faster than 2 m/s) never drops
  below ``MIN_TIME_GAP_S``.

Every run also ends early when the car leaves the road, collides, gets stuck (below 0.5 m/s for 15 s with nothing
ahead) or - outside a requested lane change - crosses out of its lane.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..collector.scenarios import (
    DesireProfile,
    DriverProfile,
    LaneProfile,
    LeadProfile,
    Scenario,
    TrafficProfile,
    get_scenario,
)
from ..errors import ConfigError

WHEEL_OVER_LINE_M = 0.3
LANE_CHANGE_AT_S = 6.0
LANE_CHANGE_WITHIN_S = 10.0
SETTLED_M = 0.5
SETTLED_FOR_S = 2.0
MIN_TIME_GAP_S = 0.5


@dataclass(frozen=True)
class RoadTest:
    """One closed-loop run."""

    suite: str
    group: str  # the variant's name, e.g. "curvy_tight"
    scenario: Scenario
    index: int  # episode index of the run's seed
    duration_s: float
    lane_change: int = 0  # requested direction: -1 left, +1 right, 0 none
    start_lane: int | None = None
    lane_change_at_s: float = LANE_CHANGE_AT_S  # when the driver signals

    @property
    def name(self) -> str:
        return f"{self.suite}/{self.group}/{self.index}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    groups: tuple[tuple[str, Scenario, dict], ...]  # (group name, scenario variant, RoadTest fields)
    runs: int
    duration_s: float


def _calm(base: Scenario, name: str, **profiles) -> Scenario:
    """A road-test variant: no lane changes, takeovers, perturbations or slow starts of the expert's own."""
    driver = profiles.pop("driver", base.driver)
    driver = replace(driver, perturbations_per_min=(0.0, 0.0), takeovers_per_min=0.0, slow_start_share=0.0)
    return replace(base, name=name, desire=DesireProfile(lane_changes_per_min=(0.0, 0.0)), driver=driver, **profiles)


_NO_LEAD = LeadProfile(behaviours=("none",), weights=(1.0,))
_CURVY, _HIGHWAY = get_scenario("curvy_road"), get_scenario("highway_follow")
_URBAN, _STOP_AND_GO = get_scenario("urban_intersection"), get_scenario("stop_and_go")
_THREE_LANES = LaneProfile(lanes=(3, 3), oncoming_lanes=(0, 0), lane_width_m=(3.5, 3.8), shoulder_m=(1.0, 2.5))

LANE_KEEP = Suite("lane_keep", "keep the lane on curvy roads and highways, 60 s", (
    ("curvy_tight", _calm(_CURVY, "lk_curvy_tight", lead=_NO_LEAD,
                          road=replace(_CURVY.road, radius_m=(60.0, 120.0)),
                          driver=DriverProfile(speed_mps=(12.0, 16.0))), {}),
    ("highway_slow", _calm(_HIGHWAY, "lk_highway_slow", lead=_NO_LEAD,
                           driver=DriverProfile(speed_mps=(22.0, 26.0))), {}),
    ("curvy_medium", _calm(_CURVY, "lk_curvy_medium", lead=_NO_LEAD,
                           road=replace(_CURVY.road, radius_m=(100.0, 200.0)),
                           driver=DriverProfile(speed_mps=(14.0, 19.0))), {}),
    ("highway_fast", _calm(_HIGHWAY, "lk_highway_fast", lead=_NO_LEAD,
                           driver=DriverProfile(speed_mps=(27.0, 32.0))), {}),
    ("curvy_wide", _calm(_CURVY, "lk_curvy_wide", lead=_NO_LEAD,
                         road=replace(_CURVY.road, radius_m=(200.0, 400.0)),
                         driver=DriverProfile(speed_mps=(17.0, 22.0))), {}),
    ("urban_road", _calm(_URBAN, "lk_urban_road", lead=_NO_LEAD,
                         road=replace(_URBAN.road, intersection="none"),
                         driver=DriverProfile(speed_mps=(10.0, 14.0))), {}),
), runs=24, duration_s=60.0)

_LC_QUIET = _calm(_HIGHWAY, "lc_quiet", lanes=_THREE_LANES, lead=_NO_LEAD,
                  traffic=TrafficProfile(density_per_km_lane=(0.0, 0.0)),
                  driver=DriverProfile(speed_mps=(22.0, 30.0)))
_LC_TRAFFIC = _calm(_HIGHWAY, "lc_traffic", lanes=_THREE_LANES, lead=_NO_LEAD,
                    traffic=TrafficProfile(density_per_km_lane=(4.0, 8.0), clear_beside_m=40.0),
                    driver=DriverProfile(speed_mps=(22.0, 30.0)))
LANE_CHANGE = Suite("lane_change", "signal, change lanes and settle in the new lane, 25 s", (
    ("left_quiet", _LC_QUIET, {"lane_change": -1, "start_lane": 1}),
    ("right_quiet", _LC_QUIET, {"lane_change": 1, "start_lane": 1}),
    ("left_traffic", _LC_TRAFFIC, {"lane_change": -1, "start_lane": 1}),
    ("right_traffic", _LC_TRAFFIC, {"lane_change": 1, "start_lane": 1}),
), runs=20, duration_s=25.0)

FOLLOW = Suite("follow", "follow a lead that brakes hard or stops and goes, 40 s", (
    ("lead_brakes", _calm(_HIGHWAY, "fo_lead_brakes", lead=LeadProfile(behaviours=("brakes",), weights=(1.0,)),
                          lanes=replace(_HIGHWAY.lanes, lanes=(1, 2))), {}),
    # the lead's first stop as the suite was measured (after 4-8 s of moving), not the training scenario's early one
    ("stop_and_go", _calm(_STOP_AND_GO, "fo_stop_and_go", lead=replace(_STOP_AND_GO.lead, first_go_s=None)), {}),
), runs=12, duration_s=40.0)

SUITES: dict[str, Suite] = {s.name: s for s in (LANE_KEEP, LANE_CHANGE, FOLLOW)}


def suite_names() -> list[str]:
    return list(SUITES)


def road_tests(suite: str, runs: int | None = None, duration_s: float | None = None) -> list[RoadTest]:
    """The first ``runs`` runs of ``suite`` (default: all), interleaved across its groups; ``duration_s`` overrides
    the suite's length (shorter checks)."""
    if suite not in SUITES:
        raise ConfigError(f"unknown suite {suite!r}; expected one of {suite_names()} or all")
    spec = SUITES[suite]
    if runs is not None and runs < 1:
        raise ConfigError(f"--runs {runs}; expected at least 1")
    n = spec.runs if runs is None else min(runs, spec.runs)
    out = []
    for i in range(n):
        group, scenario, fields = spec.groups[i % len(spec.groups)]
        out.append(RoadTest(spec.name, group, scenario, index=i, duration_s=duration_s or spec.duration_s, **fields))
    return out
