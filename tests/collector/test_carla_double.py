"""The CARLA client double (tests/carla_double): faithful to the real ``carla`` module, and a useful fake server."""

from __future__ import annotations

import inspect
import math
import multiprocessing
import queue
import socket
import threading

import carla_double as cd
import numpy as np
import pytest
from carla_double import conformance, images

try:
    import carla as real
except ImportError:  # pragma: no cover - the real client is optional
    real = None

needs_real = pytest.mark.skipif(real is None, reason="the real CARLA client (carla) is not installed")
PORT = 2011


@pytest.fixture
def server():
    srv = cd.serve("localhost", PORT, "0.9.16")
    yield srv
    srv.stop()


def sync_world(town="Town04", seed=1, port=PORT, dt=0.05):
    client = cd.Client("127.0.0.1", port)
    client.set_timeout(2.0)
    world = client.load_world(town)
    settings = world.get_settings()
    settings.synchronous_mode, settings.fixed_delta_seconds = True, dt
    world.apply_settings(settings)
    tm = client.get_trafficmanager(8000)
    tm.set_synchronous_mode(True), tm.set_random_device_seed(seed)
    return client, world, tm


def spawn_at(world, wp, type_id="vehicle.audi.a2"):
    t = wp.transform
    t.location.z += 0.5
    return world.spawn_actor(world.get_blueprint_library().find(type_id), cd.Transform(t.location, t.rotation))


def xyz(v) -> tuple:
    return v.x, v.y, v.z


# --- faithfulness to the real module -----------------------------------------------------------------------------
@needs_real
def test_public_surface_names_kinds_and_signatures_match_the_real_module():
    assert conformance.check(real, cd) == []
    tick = conformance.real_overloads(real.World.tick, "tick")
    assert tick == [[("seconds", "0.0")]]  # and the checker does see a wrong default:
    params = list(inspect.signature(lambda self, seconds=10.0: 0).parameters.values())[1:]
    assert not conformance._matches(tick[0], params)


@needs_real
def test_geometry_matches_libcarla():
    rng = np.random.default_rng(0)
    for _ in range(20):
        loc, rot, pt = rng.uniform(-50, 50, 3), rng.uniform(-180, 180, 3), rng.uniform(-20, 20, 3)
        tr, td = (m.Transform(m.Location(*loc), m.Rotation(*rot)) for m in (real, cd))
        for name in ("get_forward_vector", "get_right_vector", "get_up_vector"):
            assert xyz(getattr(tr, name)()) == pytest.approx(xyz(getattr(td, name)()), abs=1e-5)
        pr, pd = real.Location(*pt), cd.Location(*pt)
        ra, da = tr.transform(pr), td.transform(pd)  # in place, returning a Vector3D, as LibCarla does
        assert xyz(pr) == pytest.approx(xyz(pd), abs=1e-3) == xyz(da)
        assert type(da).__name__ == type(ra).__name__ == "Vector3D"
        assert np.allclose(tr.get_matrix(), td.get_matrix(), atol=1e-4)
        assert np.allclose(tr.get_inverse_matrix(), td.get_inverse_matrix(), atol=1e-3)
        d_real = real.Location(*loc).distance(real.Location(*pt))
        assert d_real == pytest.approx(cd.Location(*loc).distance(cd.Location(*pt)), abs=1e-4)
    assert cd.Rotation(1, 2, 3).yaw == real.Rotation(1, 2, 3).yaw == 2.0  # positional order pitch, yaw, roll
    v, w = cd.Vector3D(1, -2, 3), cd.Vector3D(0.5, 4, -1)
    a, b = real.Vector3D(1, -2, 3), real.Vector3D(0.5, 4, -1)
    for expr in ("v + w", "v - w", "v * 2.5", "2 * v", "v / 4", "abs(v)", "v.cross(w)", "v.make_unit_vector()"):
        r, d = eval(expr, {"v": a, "w": b}), eval(expr, {"v": v, "w": w})
        assert type(r).__name__ == type(d).__name__ and xyz(r) == pytest.approx(xyz(d), abs=1e-6)
    for name in ("length", "squared_length"):
        assert getattr(a, name)() == pytest.approx(getattr(v, name)())
    for name in ("dot", "distance", "distance_2d", "dot_2d", "get_vector_angle"):
        assert getattr(a, name)(b) == pytest.approx(getattr(v, name)(w), abs=1e-6)
    assert (real.Location(1, 2, 3) + real.Location(1, 1, 1)).__class__.__name__ == "Vector3D"
    assert (cd.Location(1, 2, 3) + cd.Location(1, 1, 1)).__class__.__name__ == "Vector3D"
    box = [m.BoundingBox(m.Location(0, 0, 1), m.Vector3D(2, 1, 0.75)) for m in (real, cd)]
    pose = [m.Transform(m.Location(10, 0, 0), m.Rotation(yaw=90)) for m in (real, cd)]
    vr, vd = (bb.get_world_vertices(p) for bb, p in zip(box, pose))
    assert [c for p in vr for c in xyz(p)] == pytest.approx([c for p in vd for c in xyz(p)])
    for x in (9.5, 11.2, 10.9):
        assert box[0].contains(real.Location(x, 1.5, 1), pose[0]) == box[1].contains(cd.Location(x, 1.5, 1), pose[1])


@needs_real
def test_value_types_enums_and_errors_match_the_real_module():
    assert str(cd.WorldSettings()) == str(real.WorldSettings())
    for value in (0.0, None, 0.05):
        s, r = cd.WorldSettings(), real.WorldSettings()
        s.fixed_delta_seconds = r.fixed_delta_seconds = value
        assert s.fixed_delta_seconds == r.fixed_delta_seconds
    for name in ("substepping", "max_substep_delta_time", "max_substeps", "synchronous_mode", "spectator_as_ego"):
        assert getattr(cd.WorldSettings(), name) == getattr(real.WorldSettings(), name)
    presets = [n for n in dir(real.WeatherParameters) if n[0].isupper()]
    assert presets == [n for n in dir(cd.WeatherParameters) if n[0].isupper()]
    for name in presets:
        assert str(getattr(cd.WeatherParameters, name)) == str(getattr(real.WeatherParameters, name))
    custom = {"cloudiness": 30.0, "sun_altitude_angle": -10.0}
    assert str(cd.WeatherParameters(**custom)) == str(real.WeatherParameters(**custom))
    L, R = cd.VehicleLightState, real.VehicleLightState
    assert L.Position | L.LowBeam == R.Position | R.LowBeam == 3 and type(L.Position | L.LowBeam) is int
    assert int(L.All) == int(R.All) and str(L.LeftBlinker) == str(R.LeftBlinker)
    assert repr(L(3)) == repr(R(3)) and repr(L.Brake) == repr(R.Brake) and L(8) is L.Brake
    for cls in ("LaneType", "LaneMarkingType", "LaneMarkingColor", "LaneChange", "AttachmentType"):
        assert {k: int(v) for k, v in getattr(cd, cls).names.items()} == {
            k: int(v) for k, v in getattr(real, cls).names.items()
        }
    assert str(cd.VehicleControl(throttle=0.5, gear=2)) == str(real.VehicleControl(throttle=0.5, gear=2))
    assert str(cd.Timestamp(1, 2.0, 3.0, 4.0)) == str(real.Timestamp(1, 2.0, 3.0, 4.0))
    for m in (real, cd):
        with pytest.raises(TypeError):
            m.Rotation(1, 2, 3, 4)
        with pytest.raises(TypeError):
            m.Location("1")


@needs_real
def test_client_without_server_times_out_with_the_real_message():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    messages = []
    for m in (real, cd):
        client = m.Client("localhost", port)
        client.set_timeout(0.5)
        with pytest.raises(RuntimeError) as exc:
            client.get_server_version()
        messages.append(str(exc.value))
    wanted = "time-out of 500ms while waiting for the simulator, make sure the simulator is ready and connected to "
    assert messages == [f"{wanted}localhost:{port}"] * 2


# --- the fake server -------------------------------------------------------------------------------------------
def test_sync_ticks_advance_fixed_delta_and_sensors_deliver_from_their_threads(server):
    client, world, tm = sync_world("Town04")
    assert server.settings.synchronous_mode and server.tm_synchronous(8000) and server.traffic_managers[8000].seed == 1
    lib, carla_map = world.get_blueprint_library(), world.get_map()
    ego = world.spawn_actor(lib.find("vehicle.lincoln.mkz_2020"), carla_map.get_spawn_points()[0])
    ego.set_autopilot(True, 8000)
    got, cams = {}, {}
    for name, fov, tick in (("road", "40", "0.0"), ("wide", "120", "0.0"), ("slow", "90", "0.1")):
        bp = lib.find("sensor.camera.rgb")
        for key, value in dict(
            image_size_x="1928", image_size_y="1208", fov=fov, sensor_tick=tick, role_name=name
        ).items():
            bp.set_attribute(key, value)
        cams[name] = world.spawn_actor(bp, cd.Transform(cd.Location(x=0.8, z=1.3)), attach_to=ego)
        got[name] = queue.Queue()
        cams[name].listen(lambda image, q=got[name]: q.put((threading.get_ident(), image)))
    assert cams["road"].is_listening() and cams["road"].parent.id == ego.id
    before = world.get_snapshot()
    frames = []
    for _ in range(10):
        frames.append(world.tick())
        snap = world.get_snapshot()
        assert snap.frame == frames[-1] and snap.timestamp.frame == frames[-1]
        for name in ("road", "wide"):
            tid, image = got[name].get(timeout=2.0)
            assert tid != threading.get_ident() and image.frame == frames[-1] and images.frame_of(image) == frames[-1]
            assert np.frombuffer(image.raw_data, np.uint8).size == 1928 * 1208 * 4 and image.width == 1928
        expected = ego.get_transform().transform(cd.Location(x=0.8, z=1.3))
        assert image.transform.location.distance(expected) < 1e-6
    assert frames == list(range(before.frame + 1, before.frame + 11))
    assert snap.timestamp.elapsed_seconds - before.timestamp.elapsed_seconds == pytest.approx(0.5, abs=1e-9)
    slow = [got["slow"].get(timeout=2.0)[1].frame for _ in range(5)]
    assert slow == frames[::2]  # sensor_tick 0.1 at 0.05 s per frame: every other frame
    assert server.tick_callers == {cd.client_id(client)}


def test_dropped_frames_are_missing_and_slow_sensors_arrive_late(server):
    client, world, tm = sync_world("Town02")
    lib = world.get_blueprint_library()
    ego = world.spawn_actor(lib.find("vehicle.tesla.model3"), world.get_map().get_spawn_points()[3])
    cam = world.spawn_actor(lib.find("sensor.camera.rgb"), cd.Transform(), attach_to=ego)
    q = queue.Queue()
    cam.listen(q.put)
    server.faults.drop_sensor_frames = {world.get_snapshot().frame + 3}
    frames = [world.tick() for _ in range(6)]
    delivered = [q.get(timeout=5.0).frame for _ in range(5)]  # waits for each frame (deadline, not a sleep)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)  # and the dropped one never comes
    assert delivered == [f for f in frames if f != frames[2]]
    server.faults.slow_sensor_s = {"front": 0.3}
    frame = world.tick()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    assert q.get(timeout=2.0).frame == frame
    cam.stop()
    assert not cam.is_listening()


def test_autopilot_follows_its_lane_keeps_a_gap_and_changes_lanes(server):
    client, world, tm = sync_world("Town04")
    carla_map = world.get_map()
    start = carla_map.get_waypoint(carla_map.get_spawn_points()[0].location)
    follower, leader = spawn_at(world, start), spawn_at(world, start.next(35.0)[0])
    for v, kmh in ((follower, 90.0), (leader, 40.0)):
        v.set_autopilot(True, 8000)
        tm.auto_lane_change(v, False)
        tm.set_desired_speed(v, kmh)
    worst, braked = 0.0, False
    for i in range(360):
        world.tick()
        wp = carla_map.get_waypoint(follower.get_location())
        off = wp.transform.location.distance(follower.get_location()) if i > 15 else 0.0
        worst, braked = max(worst, off), braked or follower.get_control().brake > 0
        assert follower.get_location().distance(leader.get_location()) > 4.5  # never closer than the two boxes
    assert worst < 0.2 and braked and wp.lane_id == start.lane_id
    assert follower.get_velocity().length() == pytest.approx(40 / 3.6, abs=0.3)  # caught up, then follows
    heading = math.degrees(math.atan2(follower.get_velocity().y, follower.get_velocity().x))
    assert heading == pytest.approx(follower.get_transform().rotation.yaw, abs=2.0)
    tm.update_vehicle_lights(follower, True)
    tm.force_lane_change(follower, False)  # False = the lane on the left (True = right, as in LibCarla)
    lights = set()
    for _ in range(80):
        world.tick()
        lights.add(int(follower.get_light_state()))
    assert carla_map.get_waypoint(follower.get_location()).lane_id == start.get_left_lane().lane_id
    assert int(cd.VehicleLightState.LeftBlinker) in lights


def test_waypoints_lanes_marks_and_junctions_are_consistent(server):
    client, world, tm = sync_world("Town03")
    m = world.get_map()
    assert m.name == "Carla/Maps/Town03"
    spawn = m.get_spawn_points()[0]
    wp = m.get_waypoint(spawn.location)
    assert spawn.location.z - wp.transform.location.z == pytest.approx(0.5, abs=1e-6)
    lane1 = wp if wp.lane_id == -1 else wp.get_left_lane()
    right, left = lane1.get_right_lane(), lane1.get_left_lane()
    assert right.lane_id == -2 and right.transform.location.distance(lane1.transform.location) == pytest.approx(3.5)
    assert left.lane_id == 1 and left.lane_type == cd.LaneType.Driving  # across the centre line: reversed lane
    assert (left.transform.rotation.yaw - lane1.transform.rotation.yaw) % 360 == pytest.approx(180, abs=1e-6)
    assert left.get_left_lane().lane_id == -1 and right.get_right_lane().lane_type == cd.LaneType.Sidewalk
    assert right.get_right_lane().get_right_lane() is None
    centre = lane1.left_lane_marking
    assert centre.type == cd.LaneMarkingType.SolidSolid and centre.color == cd.LaneMarkingColor.Yellow
    assert lane1.right_lane_marking.type == cd.LaneMarkingType.Broken == right.left_lane_marking.type
    assert right.right_lane_marking.type == cd.LaneMarkingType.Solid and lane1.lane_change == cd.LaneChange.Right
    step = lane1.next(5.0)[0]
    assert step.transform.location.distance(lane1.transform.location) == pytest.approx(5.0, abs=0.05)
    end = lane1.next_until_lane_end(5.0)[-1]
    options = end.next(1.0)
    assert len(options) >= 2 and all(o.is_junction and o.junction_id == options[0].junction_id for o in options)
    assert end.get_junction() is None and options[0].get_junction().id == options[0].junction_id
    beyond = [o.next_until_lane_end(2.0)[-1].next(1.0)[0] for o in options]
    assert not any(b.is_junction for b in beyond) and len({round(b.transform.rotation.yaw) % 360 for b in beyond}) >= 2
    assert end.previous(1.0)[0].s == pytest.approx(end.s - 1.0)  # lane -1 runs along s
    world = client.load_world("Town04")
    hw = world.get_map().get_waypoint(world.get_map().get_spawn_points()[5].location)
    types = {hw.get_left_lane().lane_type}
    lane = hw
    while lane.get_right_lane() is not None:
        lane = lane.get_right_lane()
        types.add(lane.lane_type)
    assert {cd.LaneType.Shoulder, cd.LaneType.Driving} <= types and lane.lane_type == cd.LaneType.Shoulder
    ahead = hw.next(20.0)[0]
    grade = (ahead.transform.location.z - hw.transform.location.z) / 20.0
    pitch = hw.transform.rotation.pitch
    assert math.tan(math.radians(pitch if pitch < 180 else pitch - 360)) == pytest.approx(grade, abs=0.01)


def test_route_and_determinism(server):
    def run(seed, town="Town01", n=8, ticks=120):
        client, world, tm = sync_world(town, seed=seed)
        points = world.get_map().get_spawn_points()
        vehicles = [world.spawn_actor(world.get_blueprint_library().find("vehicle.audi.a2"), p) for p in points[:n]]
        for v in vehicles:
            v.set_autopilot(True, 8000)
        track = []
        for _ in range(ticks):
            world.tick()
            track.append([(v.get_location().x, v.get_location().y) for v in vehicles])
        return track

    assert run(5) == run(5) and run(5) != run(6)
    client, world, tm = sync_world("Town02")
    m = world.get_map()
    spawns = [m.get_waypoint(p.location) for p in m.get_spawn_points()]
    wp = next(w for w in spawns if 25 < len(w.next_until_lane_end(1.0)) < 60)  # a junction 25-60 m ahead
    car = spawn_at(world, wp)
    car.set_autopilot(True, 8000)
    tm.set_route(car, ["Left"])
    yaw0, inside = wp.transform.rotation.yaw, False
    for _ in range(400):
        world.tick()
        now = m.get_waypoint(car.get_location())
        inside = inside or now.is_junction
        if inside and not now.is_junction:
            break
    assert (car.get_transform().rotation.yaw - yaw0 + 180) % 360 - 180 == pytest.approx(-90, abs=8)


def test_disconnect_fault_and_spawn_collisions(server):
    client, world, tm = sync_world("Town02")
    server.faults.disconnect_after_ticks = server.ticks + 3
    for _ in range(3):
        world.tick()
    message = (
        "time-out of 2000ms while waiting for the simulator, make sure the simulator is ready and connected to "
        f"127.0.0.1:{PORT}"
    )
    for call in (world.tick, world.get_settings, client.get_server_version, world.get_blueprint_library):
        with pytest.raises(RuntimeError) as exc:
            call()
        assert str(exc.value) == message
    server.reconnect()
    world.tick()
    bp, point = world.get_blueprint_library().find("vehicle.audi.a2"), world.get_map().get_spawn_points()[0]
    first = world.spawn_actor(bp, point)
    with pytest.raises(RuntimeError, match="Spawn failed because of collision at spawn position"):
        world.spawn_actor(bp, point)
    assert world.try_spawn_actor(bp, point) is None
    server.faults.occupied_spawn_points = {1}
    assert world.try_spawn_actor(bp, world.get_map().get_spawn_points()[1]) is None
    assert first.destroy() and not first.is_alive and not first.destroy()
    with pytest.raises(RuntimeError, match="destroyed"):
        first.get_transform()


def test_versions_offer_their_own_maps_and_blueprints():
    old, new = cd.serve("localhost", 2021, "0.9.16"), cd.serve("127.0.0.1", 2024, "0.10.0")
    try:
        c_old, c_new = cd.Client("localhost", 2021), cd.Client("localhost", 2024)
        assert "/Game/Carla/Maps/Town07" in c_old.get_available_maps() and len(c_old.get_available_maps()) == 16
        assert c_new.get_available_maps() == ["/Game/Carla/Maps/Mine_01", "/Game/Carla/Maps/Town10HD_Opt"]
        assert c_old.load_world("/Game/Carla/Maps/Town06").get_map().name == "Carla/Maps/Town06"
        for client, name in ((c_old, "Town99"), (c_old, "Carla/Maps/Town04"), (c_new, "Town04")):
            with pytest.raises(RuntimeError):
                client.load_world(name)
        lib_old, lib_new = c_old.get_world().get_blueprint_library(), c_new.get_world().get_blueprint_library()
        ids_old, ids_new = {b.id for b in lib_old}, {b.id for b in lib_new}
        assert {"vehicle.lincoln.mkz_2020", "vehicle.tesla.model3", "vehicle.bh.crossbike"} <= ids_old
        assert {"vehicle.taxi.ford", "vehicle.dodge.charger", "vehicle.mini.cooper"} <= ids_new
        assert not ids_new & {"vehicle.lincoln.mkz_2020", "vehicle.tesla.model3"} and len(ids_new) < len(ids_old)
        assert lib_old.find("vehicle.kawasaki.ninja").get_attribute("number_of_wheels").as_int() == 2
        assert lib_old.find("vehicle.carlamotors.carlacola").get_attribute("base_type").as_str() == "truck"
        assert [b.id for b in lib_old.filter("*lincoln*")] == ["vehicle.lincoln.mkz_2017", "vehicle.lincoln.mkz_2020"]
        with pytest.raises(IndexError, match="blueprint 'vehicle.nope' not found"):
            lib_new.find("vehicle.nope")
        bp = lib_old.find("sensor.camera.rgb")
        with pytest.raises(IndexError):
            bp.get_attribute("nope")
        with pytest.raises(TypeError):
            bp.set_attribute("image_size_x", 800)
        bp.set_attribute("image_size_x", "1928")
        fresh = lib_old.find("sensor.camera.rgb")  # find() hands out copies
        assert bp.get_attribute("image_size_x").as_int() == 1928 and fresh.get_attribute("image_size_x").as_int() == 800
        with pytest.raises(RuntimeError, match="bad attribute cast"):
            bp.get_attribute("fov").as_int()
        with pytest.raises(ValueError, match="read-only"):
            lib_old.find("vehicle.audi.a2").set_attribute("number_of_wheels", "3")
    finally:
        old.stop()
        new.stop()


def test_settings_batches_and_env_servers_in_a_spawned_process(server, monkeypatch):
    client = cd.Client("localhost", PORT)
    world = client.get_world()
    frame = world.get_snapshot().frame
    settings = world.get_settings()
    settings.synchronous_mode, settings.fixed_delta_seconds = True, 0.2
    assert world.apply_settings(settings) == frame and world.get_snapshot().frame == frame + 2
    assert any("substepping" in line for line in server.log)
    bp, points = world.get_blueprint_library().find("vehicle.audi.a2"), world.get_map().get_spawn_points()
    command = cd.command
    batch = [command.SpawnActor(bp, p).then(command.SetAutopilot(command.FutureActor, True, 8000)) for p in points[:3]]
    responses = client.apply_batch_sync(batch, True)
    assert not any(r.has_error() for r in responses) and len(world.get_actors().filter("vehicle.*")) == 3
    assert all(server.actors[r.actor_id].autopilot_port == 8000 for r in responses)
    first = client.apply_batch_sync([command.DestroyActor(responses[0].actor_id)])[0]
    second = client.apply_batch_sync([command.DestroyActor(responses[0].actor_id)])[0]
    assert first.error == "" and second.has_error()
    monkeypatch.setenv("CARLA_DOUBLE_SERVERS", "localhost:2093=0.10.0|maps=Town10HD_Opt")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        code = (
            "(lambda c: (c.get_server_version(), c.get_available_maps()))(__import__('carla_double').Client("
            "'127.0.0.1', 2093))"
        )
        assert pool.apply(eval, (code,)) == ("0.10.0", ["/Game/Carla/Maps/Town10HD_Opt"])
    assert cd.get_server("localhost", 2093) is None  # each process has its own servers
