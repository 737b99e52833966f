"""The CARLA backend end to end against the client-API double (tests/carla_double): no CARLA server runs here.

What the double checks: the calls, their order and arguments (synchronous settings, Traffic Manager, spawn,
sensors, ticks), frames delivered from another thread, lost frames and connections, version-dependent towns and
blueprints. It does not render or simulate physics like CARLA: the label values are checked for consistency
with the double's own road geometry, not against real CARLA output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sunnypilot_training.collector.backend_api import EpisodeSpec
from sunnypilot_training.collector.carla_backend import carla_backend, carla_episode
from sunnypilot_training.collector.carla_backend.client import ServerAddress, connect
from sunnypilot_training.collector.collect import collect
from sunnypilot_training.contract.constants import X_IDXS
from sunnypilot_training.episodes.shards import open_shard, read_frames, read_labels
from sunnypilot_training.errors import SimulatorError

carla_double = pytest.importorskip("carla_double")
SECONDS = 3.0  # episodes shorter than the CLI allows (no valid plan frame), enough to exercise the loop


@pytest.fixture
def carla_env(monkeypatch):
    monkeypatch.setenv("SPTRAIN_CARLA_MODULE", "carla_double")
    carla_double.stop_all()
    yield
    carla_double.stop_all()


def _spec(tmp_path, scenario: str = "highway_follow", k: int = 0) -> EpisodeSpec:
    return EpisodeSpec("carla", scenario, 0, k, SECONDS, str(tmp_path / "shards"))


def _assert_server_clean(server) -> None:
    """What CarlaSession promises on every exit: no actor of ours, asynchronous world, Traffic Manager released."""
    assert [a.type_id for a in server.alive_actors()] == ["spectator"]  # the server's own
    assert server.settings.synchronous_mode is False
    assert not server.tm_synchronous(8000)


def _visible(tmp_path) -> list[str]:
    out = tmp_path / "shards"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture(scope="module")
def ue4_episode(tmp_path_factory):
    """One highway episode on a 0.9.16 double: its result, shard and the server afterwards."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SPTRAIN_CARLA_MODULE", "carla_double")
    carla_double.stop_all()
    tmp = tmp_path_factory.mktemp("ue4")
    server = carla_double.serve("localhost", 2000, version="0.9.16")
    address = ServerAddress("localhost", 2000, 8000)
    client, version = connect(address, 5.0)
    result = carla_backend.run_episode_on(client, version, address, _spec(tmp))
    yield result, open_shard(tmp / "shards" / result.name), server, client
    carla_double.stop_all()
    mp.undo()


def test_episode_runs_synchronously_and_leaves_the_server_as_it_found_it(ue4_episode) -> None:
    result, shard, server, client = ue4_episode
    assert result.n_frames == int(SECONDS * 20) and result.error is None
    assert server.tick_callers == {carla_double.client_id(client)}  # only our client ticks
    ticks = [f for f, _, reason in server.tick_log if reason == "tick"]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # one frame per tick, none skipped
    assert server.traffic_managers[8000].seed is not None
    _assert_server_clean(server)
    attrs = shard.attrs
    assert attrs["simulator"] == "carla" and attrs["carla_server_version"] == "0.9.16" and attrs["map"] == "Town04"
    assert attrs["carla_port"] == 2000 and attrs["complete"] is True and attrs["vehicles"] >= 1


def test_labels_agree_with_the_roads_geometry(ue4_episode) -> None:
    _, shard, _, _ = ue4_episode
    labels = read_labels(shard)
    lines = labels["lane_lines"]  # (T, 4, 33, 2)
    width = lines[:, 2, 0, 0] - lines[:, 1, 0, 0]
    assert np.all(np.abs(width - 3.5) < 0.3)  # Town04 lanes are 3.5 m wide in the double
    assert np.all(lines[:, 1, 0, 0] < 0) and np.all(lines[:, 2, 0, 0] > 0)  # left is negative y (FRD)
    assert np.all(np.diff(lines[:, :, 0, 0], axis=1) > 2.5)  # far-left < left < right < far-right
    assert np.allclose(lines[:, :, 0, 1], 1.22, atol=0.05)  # z = camera height on the road
    assert labels["lane_lines_prob"][:, 1:3].min() == 1.0  # painted lines around the ego lane
    speed = labels["ego_speed"]
    assert speed.min() > 5.0  # the recording starts under way (adaptive warm-up)
    plan_x_1s = labels["plan"][:-20, 10, 0]  # position 1 s ahead
    assert np.allclose(plan_x_1s, speed[:-20], rtol=0.15)
    frames = read_frames(shard, "img", [0, len(speed) - 1])
    assert frames.std() > 5.0 and not np.array_equal(frames[0], frames[1])


def test_lead_sits_between_the_ego_lane_lines(ue4_episode) -> None:
    _, shard, _, _ = ue4_episode
    labels = read_labels(shard)
    has_lead = labels["lead_prob"][:, 0] > 0.5
    assert shard.attrs["lead_behaviour"] == "none" or has_lead.any()
    for t in np.flatnonzero(has_lead)[:: 10]:
        x, y = labels["lead"][t, 0, 0, :2]
        left = np.interp(x, X_IDXS, labels["lane_lines"][t, 1, :, 0])
        right = np.interp(x, X_IDXS, labels["lane_lines"][t, 2, :, 0])
        assert 0 < x < 200 and left - 0.3 < y < right + 0.3


def test_ue5_server_uses_town10_and_its_own_vehicles(carla_env, tmp_path) -> None:
    server = carla_double.serve("localhost", 2000, version="0.10.0")
    address = ServerAddress("localhost", 2000, 8000)
    client, version = connect(address, 5.0)
    assert version == (0, 10, 0)
    result = carla_backend.run_episode_on(client, version, address, _spec(tmp_path, "urban_intersection"))
    shard = open_shard(tmp_path / "shards" / result.name)
    assert shard.attrs["map"] == "Town10HD_Opt" and shard.attrs["carla_engine"] == "Unreal Engine 5"
    ego_types = {a.type_id for a in server.actors.values() if a.attributes.get("role_name") == "hero"}
    library = {bp.id for bp in client.get_world().get_blueprint_library().filter("vehicle.*")}
    assert ego_types and ego_types <= library
    _assert_server_clean(server)


def test_a_lost_sensor_frame_fails_the_episode_after_retries(carla_env, tmp_path) -> None:
    server = carla_double.serve("localhost", 2000)
    server.faults.drop_sensor_frames = set(range(server.frame + 5, server.frame + 100_000))
    options = carla_backend.CarlaOptions("localhost", 2000, 8000, retries=1, timeout_s=2.0)
    worker = carla_backend.CarlaWorker(ServerAddress("localhost", 2000, 8000), options)
    result = worker.run(_spec(tmp_path))
    assert result.error is not None and "after 2 attempts" in result.error
    first_dropped = min(server.faults.drop_sensor_frames)
    frame = int(result.error.split("delivered nothing for frame ")[1].split()[0])
    assert frame >= first_dropped  # the first frame the sensors did not deliver, never an earlier one
    assert _visible(tmp_path) == []  # nothing written, no temporary left
    _assert_server_clean(server)


def test_a_lost_connection_is_retried_and_leftovers_are_cleaned(carla_env, tmp_path, monkeypatch, capsys) -> None:
    server = carla_double.serve("localhost", 2000)
    server.faults.disconnect_after_ticks = server.ticks + 40  # during the first attempt's warm-up

    def server_back(address, deadline_s, poll_s=2.0):  # the server answers again when the worker polls it
        server.reconnect()
        return (0, 9, 16)

    monkeypatch.setattr(carla_backend, "wait_for_server", server_back)
    options = carla_backend.CarlaOptions("localhost", 2000, 8000, retries=2, timeout_s=5.0)
    result = carla_backend.CarlaWorker(ServerAddress("localhost", 2000, 8000), options).run(_spec(tmp_path))
    assert result.error is None and _visible(tmp_path) == [result.name]
    assert "time-out" in capsys.readouterr().err
    _assert_server_clean(server)  # including the actors the first attempt could not destroy


def test_ctrl_c_mid_episode_cleans_up_and_writes_nothing(carla_env, tmp_path, monkeypatch) -> None:
    server = carla_double.serve("localhost", 2000)
    calls = {"n": 0}
    real = carla_episode.cameras.road_to_model

    def interrupted(rgb):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(rgb)

    monkeypatch.setattr(carla_episode.cameras, "road_to_model", interrupted)
    address = ServerAddress("localhost", 2000, 8000)
    client, version = connect(address, 5.0)
    with pytest.raises(KeyboardInterrupt):
        carla_backend.run_episode_on(client, version, address, _spec(tmp_path))
    assert _visible(tmp_path) == []
    _assert_server_clean(server)


def test_no_server_is_a_clear_error_before_anything_is_written(carla_env, tmp_path, capsys) -> None:
    from sunnypilot_training.cli.main import main

    out = tmp_path / "shards"
    rc = main(["collect", "--simulator", "carla", "--scenario", "curvy_road", "--output", str(out), "--port", "2042",
               "--carla-timeout", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no CARLA server answers at localhost:2042" in err
    assert "sptrain carla start --port 2042" in err
    assert not out.exists() or not any(out.iterdir())


def test_an_unsupported_server_version_is_refused(carla_env, tmp_path) -> None:
    carla_double.serve("localhost", 2000, version="0.9.14")
    specs = [_spec(tmp_path)]
    with pytest.raises(SimulatorError, match="0.9.14 is not supported"):
        collect(specs, progress=False, options=carla_backend.CarlaOptions("localhost", 2000, 8000))
    assert _visible(tmp_path) == []


def test_parallel_workers_each_use_their_own_server(carla_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CARLA_DOUBLE_SERVERS", "localhost:2000=0.9.16;localhost:2003=0.9.16")  # for the workers
    carla_double.serve("localhost", 2000)
    carla_double.serve("localhost", 2003)  # for the parent's up-front check
    specs = [_spec(tmp_path, k=k) for k in range(2)]
    summary = collect(specs, workers=2, progress=False, options=carla_backend.CarlaOptions("localhost", 2000, 8000, 2))
    assert [r.name for r in summary.written] == [s.name for s in specs] and summary.failed == []
    ports = [json.loads((tmp_path / "shards" / s.name / "zarr.json").read_text())["attributes"]["carla_port"]
             for s in specs]
    assert ports == [2000, 2003]  # episode k runs on server k mod N


def test_a_commanded_lane_change_moves_the_ego_that_way_and_is_labelled(carla_env, tmp_path, monkeypatch) -> None:
    from sunnypilot_training.contract.constants import Desire, Meta

    carla_double.serve("localhost", 2000)
    real_schedule = carla_backend.schedule_episode

    def with_lane_changes(*args, **kwargs):  # left after 1.5 s, back right after 6 s (one of them is possible)
        schedule = real_schedule(*args, **kwargs)
        schedule.events = [(10, "blink", -1.0), (30, "lane_change", -1.0), (100, "blink", 1.0),
                           (120, "lane_change", 1.0)]
        return schedule

    monkeypatch.setattr(carla_backend, "schedule_episode", with_lane_changes)
    address = ServerAddress("localhost", 2000, 8000)
    client, version = connect(address, 5.0)
    spec = EpisodeSpec("carla", "lane_change", 0, 0, 10.0, str(tmp_path / "shards"))
    shard = open_shard(tmp_path / "shards" / carla_backend.run_episode_on(client, version, address, spec).name)
    assert shard.attrs["lane_changes"] >= 1 and shard.attrs["lane_changes_refused"] == 0
    labels = read_labels(shard)
    desire = labels["desire"].argmax(axis=1)
    for frame, side, value in ((30, -1, Desire.LANE_CHANGE_LEFT), (120, 1, Desire.LANE_CHANGE_RIGHT)):
        if desire[frame] != int(value):
            continue  # no lane on that side: not commanded
        x, y = labels["plan"][frame, 22, :2]  # where the camera is 4.7 s later, in the frame at the command
        lines = labels["lane_lines"][frame, 1:3, :, 0]  # the lane it was in then (left, right y at X_IDXS)
        centre = np.interp(x, X_IDXS, lines.mean(axis=0))
        assert side * (y - centre) > 2.5  # it really moved one lane over (3.5 m), to the commanded side
        blinker = Meta.LEFT_BLINKER if side < 0 else Meta.RIGHT_BLINKER
        assert labels["meta"][frame, blinker[0]] == 1.0
    assert {int(Desire.LANE_CHANGE_LEFT), int(Desire.LANE_CHANGE_RIGHT)} & set(desire.tolist())


def test_a_lead_that_cannot_be_spawned_is_not_replaced_by_traffic(carla_env, tmp_path, monkeypatch) -> None:
    from sunnypilot_training.collector.carla_backend import carla_episode

    carla_double.serve("localhost", 2000)
    monkeypatch.setattr(carla_episode, "_spawn_lead", lambda *args: None)  # e.g. the place ahead is occupied
    real_schedule = carla_backend.schedule_episode

    def braking_lead(*args, **kwargs):
        schedule = real_schedule(*args, **kwargs)
        schedule.lead, schedule.events = "stop_and_go", [(5, "lead_speed", 0.0)]
        return schedule

    monkeypatch.setattr(carla_backend, "schedule_episode", braking_lead)
    address = ServerAddress("localhost", 2000, 8000)
    client, version = connect(address, 5.0)
    server = carla_double.get_server("localhost", 2000)
    result = carla_backend.run_episode_on(client, version, address, _spec(tmp_path))
    shard = open_shard(tmp_path / "shards" / result.name)
    assert shard.attrs["lead_behaviour"] == "none" and shard.attrs["lead_planned"] == "stop_and_go"
    desired = [p.get("desired_speed") for p in server.traffic_managers[8000].vehicles.values()]
    assert 0.0 not in desired  # no traffic car was told to stop in the lead's place


def test_a_client_that_does_not_match_the_server_is_refused(carla_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(carla_double.client, "CLIENT_VERSION", "0.9.16")
    carla_double.serve("localhost", 2000, version="0.10.0")
    with pytest.raises(SimulatorError, match=r"client is 0\.9\.16 but the server .* runs 0\.10\.0.*carla/dist"):
        collect([_spec(tmp_path)], progress=False, options=carla_backend.CarlaOptions("localhost", 2000, 8000))


def test_lines_follow_the_branch_the_ego_took_at_a_junction(carla_env) -> None:
    from sunnypilot_training.collector.carla_backend import geometry

    carla_double.serve("localhost", 2000)
    client, _ = connect(ServerAddress("localhost", 2000, 8000), 5.0)
    carla_map = client.load_world("Town03").get_map()
    forks = [w for w in carla_map.generate_waypoints(4.0)
             if not w.is_junction and len(w.next(geometry.STEP_M)) >= 2]
    assert forks, "the town has junctions with several ways through"
    rng = np.random.default_rng(0)
    for fork in forks[:5]:
        options = fork.next(geometry.STEP_M)
        for taken in options:
            path = geometry._branch_points(taken, forward=True)  # (n, 2) 30 m along the branch
            track = path[::2] + rng.normal(0.0, 0.4, size=path[::2].shape)  # the ego's noisy positions on it
            assert geometry._closest(options, track) is taken


def test_a_label_tail_is_driven_and_labelled_but_not_recorded(carla_env, tmp_path) -> None:
    """2 s recorded + a 1 s tail: the shard holds 2 s of frames, labelled from the 3 s the server ran; the same
    seed recorded whole gives the same first 2 s (the double is deterministic per seed)."""
    carla_double.serve("localhost", 2000)
    address = ServerAddress("localhost", 2000, 8000)
    client, version = connect(address, 5.0)
    whole = EpisodeSpec("carla", "highway_follow", 0, 0, 3.0, str(tmp_path / "whole"))
    tail = EpisodeSpec("carla", "highway_follow", 0, 0, 2.0, str(tmp_path / "tail"), label_tail_s=1.0)
    shards = [open_shard(tmp_path / d / carla_backend.run_episode_on(client, version, address, s).name)
              for d, s in (("whole", whole), ("tail", tail))]
    assert [s.attrs["label_tail_s"] for s in shards] == [0.0, 1.0]
    w_labels, t_labels = (read_labels(s) for s in shards)
    assert [s.arrays["img"].shape[0] for s in shards] == [60, 40]
    first = np.arange(40)
    for key in ("img", "big_img"):
        assert np.array_equal(read_frames(shards[1], key, first), read_frames(shards[0], key, first)), key
    for key, value in w_labels.items():
        assert np.array_equal(t_labels[key], value[:40]), key
