"""Closed-loop road tests: the harness is proven by the expert (passes), the lower bounds and broken wrappers (fail)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from sunnypilot_training.collector.backend_api import EpisodeSpec
from sunnypilot_training.collector.builtin.builtin_backend import run_episode
from sunnypilot_training.collector.builtin.simulation import DrivingWorld
from sunnypilot_training.collector.labels import compute_labels
from sunnypilot_training.driving.drivers import DelayedPlan, MirroredPlan, OracleDriver, StraightDriver
from sunnypilot_training.driving.harness import _corners, boxes_overlap, drive_run
from sunnypilot_training.driving.road_tests import DriverSpec, run_road_tests, summary_line, write_drive_json
from sunnypilot_training.driving.suites import SUITES, road_tests, suite_names
from sunnypilot_training.episodes.shards import open_shard, read_labels

SHORT_S = {"lane_keep": 15.0, "lane_change": 20.0, "follow": 20.0}  # long enough for each suite's events
CURVY = [t for t in road_tests("lane_keep", 6, 15.0) if t.group.startswith("curvy")]


@pytest.mark.parametrize("suite", suite_names())
def test_the_expert_passes_a_short_version_of_every_suite(suite: str) -> None:
    runs = len(SUITES[suite].groups) * (2 if suite != "lane_keep" else 1)
    report = run_road_tests(DriverSpec("expert"), [suite], runs, seed=0, progress=False, duration_s=SHORT_S[suite])
    summary = report["suites"][suite]
    assert summary["runs"] == runs and summary["passed"] == runs, report["runs"]
    assert summary["collisions"] == 0


def test_the_oracle_plan_through_the_controls_keeps_the_lane() -> None:
    results = [drive_run(t, OracleDriver(), seed=0)[0] for t in CURVY]
    assert all(r["passed"] for r in results), results


def test_a_straight_wheel_leaves_curvy_roads() -> None:
    results = [drive_run(t, StraightDriver(), seed=0)[0] for t in CURVY]
    assert not any(r["passed"] for r in results)
    assert all(r["ended_by"] in ("left_lane", "left_road", "collision") for r in results)  # off its lane


def test_a_mirrored_plan_fails_lane_keeping_and_changes_lanes_to_the_wrong_side() -> None:
    results = [drive_run(t, MirroredPlan(OracleDriver()), seed=0)[0] for t in CURVY]
    assert not any(r["passed"] for r in results)
    for test in road_tests("lane_change", 2, 20.0):  # a left and a right request, signalled at once (a mirrored plan
        test = replace(test, lane_change_at_s=0.5)  # does not keep the lane for long)
        good = drive_run(test, OracleDriver(), seed=0)[0]
        bad = drive_run(test, MirroredPlan(OracleDriver()), seed=0)[0]
        assert good["lane_change_success"] and good["moved_to_side"] == test.lane_change
        assert not bad["lane_change_success"] and bad["moved_to_side"] == -test.lane_change


def test_a_plan_two_seconds_late_is_measurably_worse() -> None:
    on_time = [drive_run(t, OracleDriver(), seed=0)[0] for t in CURVY]
    late = [drive_run(t, DelayedPlan(OracleDriver(), 2.0), seed=0)[0] for t in CURVY]
    assert sum(r["passed"] for r in late) < sum(r["passed"] for r in on_time)
    assert np.mean([r["max_abs_offset_m"] for r in late]) > 2 * np.mean([r["max_abs_offset_m"] for r in on_time])


def test_the_same_seed_gives_the_same_drive_json(tmp_path) -> None:
    texts = []
    for k in range(2):
        report = run_road_tests(DriverSpec("expert"), ["lane_keep", "follow"], 2, seed=3, progress=False,
                                duration_s=8.0)
        texts.append(write_drive_json(report, tmp_path / str(k) if k else tmp_path).read_text() if k == 0 else None)
        if k:
            (tmp_path / "again").mkdir()
            texts[-1] = write_drive_json(report, tmp_path / "again").read_text()
    assert texts[0] == texts[1]
    data = json.loads(texts[0])
    assert set(data["suites"]) == {"lane_keep", "follow"} and len(data["runs"]) == 4
    assert {"suite", "seed", "passed", "ended_by"} <= set(data["runs"][0])
    assert summary_line(report) == "2/2 lane-keep, 2/2 follow"
    other = run_road_tests(DriverSpec("expert"), ["lane_keep"], 1, seed=4, progress=False, duration_s=8.0)
    assert other["runs"][0]["mean_speed_mps"] != data["runs"][0]["mean_speed_mps"]  # another seed, another road


def test_a_collected_shard_and_a_closed_loop_run_of_the_expert_agree(tmp_path) -> None:
    spec = EpisodeSpec("builtin", "lane_change", 2, 1, 12.0, str(tmp_path))
    run_episode(spec)
    shard = read_labels(open_shard(tmp_path / spec.name))
    world = DrivingWorld("lane_change", 2, 1, 12.0)
    while not world.done:
        world.step(world.expert_command())
    labels = compute_labels(world.truth())
    for key in ("plan", "lane_lines", "lead", "desire", "meta", "ego_speed", "pose"):
        np.testing.assert_array_equal(shard[key], labels[key], err_msg=key)


def test_box_overlap() -> None:
    a = _corners(0.0, 0.0, 0.0, 3.5, 1.0, 0.9)
    assert boxes_overlap(a, _corners(4.0, 0.0, 0.3, 2.0, 2.0, 0.9))  # nose into its rear
    assert not boxes_overlap(a, _corners(8.0, 0.0, 0.0, 2.0, 2.0, 0.9))  # 2.5 m gap
    assert not boxes_overlap(a, _corners(0.0, 2.0, 0.0, 2.3, 2.3, 0.9))  # the next lane
