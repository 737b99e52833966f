"""CARLA backend pieces that need no server: versions, ports, frames, cameras, sensor queues, desire."""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from sunnypilot_training.collector.carla_backend import cameras, client, geometry, signals, versions
from sunnypilot_training.collector.carla_backend.actors import ROAD_CAMERA_FOV_DEG, WIDE_CAMERA_FOV_DEG
from sunnypilot_training.collector.carla_backend.sensors import SensorFrameError, SensorQueue
from sunnypilot_training.contract import camera
from sunnypilot_training.contract.constants import Desire
from sunnypilot_training.errors import SimulatorError


@pytest.mark.parametrize("text, expected", [("0.9.16", (0, 9, 16)), ("0.9.15.2", (0, 9, 15)),
                                            ("0.10.0-dirty", (0, 10, 0))])
def test_versions_parse_and_map_to_families(text, expected) -> None:
    version = client.parse_version(text)
    assert version == expected
    assert versions.family_of(version) is (versions.UE5 if version[1] == 10 else versions.UE4)


@pytest.mark.parametrize("version", [(0, 9, 14), (0, 8, 4), (1, 0, 0)])
def test_unsupported_versions_are_refused_by_name(version) -> None:
    with pytest.raises(SimulatorError, match=r"not supported; supported: 0\.9\.15, 0\.9\.16, 0\.10\.0"):
        versions.family_of(version)
    with pytest.raises(SimulatorError, match="expected a version"):
        client.parse_version("unknown")


def test_every_scenario_maps_onto_both_engines() -> None:
    from sunnypilot_training.collector.scenarios import scenario_names

    ue5_maps = ["/Game/Carla/Maps/Town10HD_Opt"]
    ue4_maps = [f"/Game/Carla/Maps/{t}" for t in ("Town01", "Town02", "Town03", "Town04", "Town05", "Town10HD_Opt")]
    for name in scenario_names():
        assert versions.choose_map(versions.UE5, name, ue5_maps) == "Town10HD_Opt"
        assert versions.choose_map(versions.UE4, name, ue4_maps) in versions.SCENARIO_MAPS["ue4"][name].maps
    # without the additional maps package, Town07 scenarios fall back to the next preferred town
    assert versions.choose_map(versions.UE4, "curvy_road", ue4_maps) == "Town05"
    assert versions.choose_map(versions.UE4, "highway_follow", ue4_maps) == "Town04"
    with pytest.raises(SimulatorError, match="offers none of the towns.*Town07.*it offers Town05"):
        versions.choose_map(versions.UE4, "suburban_four_way_stop", ["/Game/Carla/Maps/Town05"])


def test_spawn_rules_relax_down_to_anything() -> None:
    rule, seen = versions.SCENARIO_MAPS["ue4"]["curvy_road"].rule, []
    while rule != versions.SpawnRule():
        seen.append(rule)
        rule = rule.relaxed()
        assert len(seen) < 5
    assert seen[0].min_heading_change_deg > 0 and seen[-1] != versions.SpawnRule()


def test_parallel_servers_get_distinct_ports() -> None:
    addresses = client.server_addresses("localhost", 2000, 8000, 3)
    assert [a.port for a in addresses] == [2000, 2003, 2006]
    assert [a.tm_port for a in addresses] == [8000, 8001, 8002]
    with pytest.raises(SimulatorError, match="overlap"):
        client.server_addresses("localhost", 2000, 2004, 2)
    with pytest.raises(SimulatorError, match="at least 1"):
        client.server_addresses("localhost", 2000, 8000, 0)


# --- frames ------------------------------------------------------------------------------------------------
def test_pose_conversion_matches_carla_axes() -> None:
    carla = pytest.importorskip("carla")
    rng = np.random.default_rng(0)
    for _ in range(20):
        pitch, yaw, roll = rng.uniform(-40, 40), rng.uniform(-180, 180), rng.uniform(-40, 40)
        tf = carla.Transform(carla.Location(x=1.0, y=2.0, z=3.0), carla.Rotation(pitch=pitch, yaw=yaw, roll=roll))
        pose = geometry.pose_from_transform(tf)
        R = camera.rot_from_euler(pose[3:])  # body FRD -> our z-down world
        flip = np.diag([1.0, 1.0, -1.0])  # CARLA world (z up) -> ours (z down)
        fwd, right, up = tf.get_forward_vector(), tf.get_right_vector(), tf.get_up_vector()
        np.testing.assert_allclose(R[:, 0], flip @ [fwd.x, fwd.y, fwd.z], atol=1e-5)  # body x = forward
        np.testing.assert_allclose(R[:, 1], flip @ [right.x, right.y, right.z], atol=1e-5)  # body y = right
        np.testing.assert_allclose(R[:, 2], -(flip @ [up.x, up.y, up.z]), atol=1e-5)  # body z = down
        assert pose[2] == -3.0


def test_camera_fields_of_view_give_the_device_focal_lengths() -> None:
    for fov, model in ((ROAD_CAMERA_FOV_DEG, camera.C3_ROAD), (WIDE_CAMERA_FOV_DEG, camera.C3_WIDE)):
        focal = model.width_px / (2 * math.tan(math.radians(fov) / 2))  # CARLA's pinhole focal length
        assert focal == pytest.approx(model.focal_px, rel=1e-4)
    assert 39.5 < ROAD_CAMERA_FOV_DEG < 40.5 and 118 < WIDE_CAMERA_FOV_DEG < 121


@pytest.mark.parametrize("source, to_model, model", [(camera.C3_ROAD, cameras.road_to_model, camera.MEDMODEL),
                                                     (camera.C3_WIDE, cameras.wide_to_model, camera.SBIGMODEL)])
def test_warp_puts_a_point_where_the_model_frame_sees_it(source, to_model, model) -> None:
    point = np.array([[40.0, -2.5, 1.0]])  # device frame: 40 m ahead, 2.5 m left, 1 m below the camera
    u, v = camera.project_points_device(point, source)[0][0]
    img = np.zeros((source.height_px, source.width_px, 3), np.uint8)
    img[int(v) - 6: int(v) + 7, int(u) - 6: int(u) + 7] = 255
    warped = to_model(img)
    assert warped.shape == (256, 512, 3)
    ys, xs = np.nonzero(warped[..., 0] > 128)
    mu, mv = camera.project_points_device(point, model)[0][0]
    assert abs(xs.mean() - mu) < 1.0 and abs(ys.mean() - mv) < 1.0


# --- sensor queues -----------------------------------------------------------------------------------------
def _frames(*ids):
    return [SimpleNamespace(frame=i) for i in ids]


def test_sensor_queue_waits_for_data_from_another_thread_and_drops_stale_frames() -> None:
    q = SensorQueue("road")
    for data in _frames(3, 4):
        q(data)
    delivery = threading.Timer(0.05, q, args=(SimpleNamespace(frame=5),))
    delivery.start()
    assert q.get(5, timeout_s=5.0).frame == 5  # frames 3 and 4 are stale and dropped


def test_sensor_queue_never_duplicates_a_missing_frame() -> None:
    q = SensorQueue("wide")
    for data in _frames(7, 9):
        q(data)
    assert q.get(7, 1.0).frame == 7
    with pytest.raises(SensorFrameError, match="'wide' skipped frame 8 .*frame 9"):
        q.get(8, 1.0)
    with pytest.raises(SensorFrameError, match="delivered nothing for frame 10"):
        q.get(10, 0.05)


# --- desire and blinkers -------------------------------------------------------------------------------------
def _track(T: int, speed: float) -> signals.LaneTrack:
    return signals.LaneTrack(road_id=np.full(T, 5), lane_id=np.full(T, -2), in_junction=np.zeros(T, bool),
                             offset_m=np.zeros(T), yaw_deg=np.zeros(T), travelled_m=np.arange(T) * speed * 0.05,
                             speed_mps=np.full(T, speed))


def test_a_completed_lane_change_is_desired_from_command_until_centred() -> None:
    T, dt = 400, 0.05
    track = _track(T, 25.0)
    # commanded at 100, the camera drifts left (negative offset), crosses at 140, centred (|d|<0.25) from 160
    track.offset_m[100:140] = -np.linspace(0.0, 1.7, 40)
    track.offset_m[140:160] = np.linspace(1.7, 0.3, 20)
    track.lane_id[140:] = -1
    out = signals.episode_signals(track, [(80, 100, -1), (300, 320, +1)], dt)
    lc = np.flatnonzero(out.desire == int(Desire.LANE_CHANGE_LEFT))
    assert lc[0] == 100 and lc[-1] == 160
    assert out.left_blinker[80:161].all() and not out.left_blinker[161:].any() and not out.left_blinker[:80].any()
    assert out.lane_changes_done == 1 and out.lane_changes_refused == 1  # the second never crossed a line
    assert not out.right_blinker.any() and (out.desire[161:] == 0).all()


def test_a_slow_turn_through_a_junction_gives_turn_desire() -> None:
    T = 400
    track = _track(T, 6.0)  # below the lane-change speed
    track.in_junction[200:260] = True
    track.yaw_deg[260:] = -90.0  # yaw decreases: a left turn
    out = signals.episode_signals(track, [], 0.05)
    first = int(np.searchsorted(track.travelled_m, track.travelled_m[200] - 35.0))
    assert out.turns == 1 and out.left_blinker[first:260].all() and not out.left_blinker[260:].any()
    assert (out.desire[first:260] == int(Desire.TURN_LEFT)).all() and (out.desire[:first] == 0).all()
    fast = _track(T, 20.0)
    fast.in_junction[200:260] = True
    fast.yaw_deg[260:] = 90.0
    out = signals.episode_signals(fast, [], 0.05)
    assert out.right_blinker.any() and not (out.desire == int(Desire.TURN_RIGHT)).any()  # too fast for a turn
