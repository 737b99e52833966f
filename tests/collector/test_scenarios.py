"""Tests of collector.scenarios: the registry, validation messages and the scenario parameter ranges."""

from __future__ import annotations

import zlib
from dataclasses import replace

import pytest

from sunnypilot_training.collector.scenarios import (
    DriverProfile,
    LaneProfile,
    LeadProfile,
    RoadProfile,
    Scenario,
    get_scenario,
    sample_int,
    sample_range,
    scenario_names,
)
from sunnypilot_training.errors import ConfigError

EXPECTED = {"highway_follow", "urban_intersection", "suburban_four_way_stop", "curvy_road", "lane_change",
            "stop_and_go"}


def test_registry_holds_the_named_scenarios() -> None:
    assert set(scenario_names()) == EXPECTED
    for name in scenario_names():
        assert get_scenario(name).name == name


def test_unknown_scenario_raises_config_error_listing_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_scenario("moon_landing")
    message = str(info.value)
    assert "moon_landing" in message
    for name in EXPECTED:
        assert name in message


def test_stable_id_is_crc32_of_the_name() -> None:
    scenario = get_scenario("curvy_road")
    assert scenario.stable_id == zlib.crc32(b"curvy_road")
    assert len({get_scenario(n).stable_id for n in EXPECTED}) == len(EXPECTED)


@pytest.mark.parametrize(("build", "field", "value"), [
    (lambda: RoadProfile(radius_m=(500.0, 100.0)), "radius_m", "(500.0, 100.0)"),
    (lambda: RoadProfile(intersection="roundabout"), "intersection", "roundabout"),
    (lambda: LaneProfile(lanes=(0, 2)), "lanes", "(0, 2)"),
    (lambda: LaneProfile(lane_width_m=(2.0, 3.5)), "lane_width_m", "(2.0, 3.5)"),
    (lambda: LeadProfile(behaviours=("cruise", "teleport"), weights=(1.0, 1.0)), "behaviours", "teleport"),
    (lambda: LeadProfile(behaviours=("cruise",), weights=(1.0, 2.0)), "weights", "(1.0, 2.0)"),
    (lambda: DriverProfile(takeovers_per_min=5.0), "takeovers_per_min", "5.0"),
    (lambda: replace(get_scenario("highway_follow"), traffic_convention="sideways"), "traffic_convention",
     "sideways"),
])
def test_invalid_values_name_the_field_and_the_value(build, field: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    message = str(info.value)
    assert field in message and value in message and "expected" in message


def test_junction_scenarios_need_an_oncoming_carriageway() -> None:
    road = RoadProfile(intersection="priority")
    with pytest.raises(ConfigError, match="oncoming_lanes"):
        Scenario("x", "junction on a divided road", road=road, lanes=LaneProfile(oncoming_lanes=(0, 0)))


def test_scenario_ranges_match_their_kind() -> None:
    highway = get_scenario("highway_follow")
    curvy = get_scenario("curvy_road")
    assert highway.road.radius_m[0] >= 400.0  # |curvature| <= 1/400 1/m on highways
    assert curvy.road.radius_m[0] >= 60.0 and curvy.road.radius_m[1] <= 200.0
    assert curvy.road.radius_m[1] < highway.road.radius_m[0]
    for name in EXPECTED:
        scenario = get_scenario(name)
        assert 1 <= scenario.lanes.lanes[0] <= scenario.lanes.lanes[1] <= 4
        assert 3.0 <= scenario.lanes.lane_width_m[0] <= scenario.lanes.lane_width_m[1] <= 3.9
        assert scenario.traffic_convention == "right_hand"
    assert get_scenario("stop_and_go").lead.behaviours == ("stop_and_go",)
    assert get_scenario("suburban_four_way_stop").road.intersection == "all_way_stop"
    assert get_scenario("lane_change").desire.lane_changes_per_min[0] > 0


def test_sampling_helpers_stay_in_range() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    values = [sample_range(rng, (2.0, 3.0)) for _ in range(200)]
    ints = {sample_int(rng, (1, 3)) for _ in range(200)}
    assert min(values) >= 2.0 and max(values) <= 3.0
    assert ints == {1, 2, 3}


def test_unseen_look_ranges_lie_outside_the_training_looks() -> None:
    """Every appearance range of the held-out look is disjoint from the training looks' (no training scenario
    draws a held-out look), and its verge colours are never used in training."""
    from sunnypilot_training.collector.scenarios import UNSEEN_LIGHTING

    for name in scenario_names():
        seen = get_scenario(name).lighting
        assert seen.look == "seen"
        for field in ("sun_elevation_rad", "ambient", "exposure", "noise_std", "asphalt_grey", "paint_wear",
                      "texture_contrast"):
            lo, hi = getattr(seen, field)
            ulo, uhi = getattr(UNSEEN_LIGHTING, field)
            assert uhi <= lo or ulo >= hi, field
        assert not set(seen.verges) & set(UNSEEN_LIGHTING.verges)


def test_unseen_look_variant_resolves_by_name_and_keeps_the_seeding() -> None:
    base = get_scenario("curvy_road")
    variant = get_scenario("curvy_road_unseen_look")
    assert variant.name == "curvy_road_unseen_look" and variant.lighting.look == "unseen"
    assert variant.stable_id == base.stable_id  # same roads, traffic and driving for a seed
    assert replace(variant, lighting=base.lighting, name=base.name, seed_name="") == base
    with pytest.raises(ConfigError, match="unseen_look"):
        get_scenario("moon_landing_unseen_look")
