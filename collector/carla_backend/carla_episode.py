"""Drive one CARLA episode: spawn, tick, read sensors frame by frame, record the truth, write the frames.

Everything is spawned inside a :class:`CarlaSession`, so every exit path cleans the server up. The caller's
:class:`ShardWriter` receives frame blocks as they come; it only becomes a shard after the labels are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...contract import camera
from ...contract.constants import DT_S
from ...episodes.shards import ShardWriter
from ..frames import pack_frames
from . import cameras, geometry
from .actors import (
    CAMERA_MOUNT_X_M,
    ROAD_CAMERA_FOV_DEG,
    WIDE_CAMERA_FOV_DEG,
    camera_blueprint,
    ego_blueprint,
    four_wheelers,
    nearest_spawns,
    set_role,
)
from .schedule import WARMUP_MAX_S, WARMUP_S, WARMUP_SPEED_FRACTION, EpisodeSchedule
from .sensors import SensorQueue, image_bgra
from .world_session import CarlaSession

WRITE_BLOCK_FRAMES = 40


@dataclass
class Recording:
    """What the episode recorded, per frame (CARLA coordinates where named so)."""

    n_frames: int
    n_others: int
    device_pose: np.ndarray = field(init=False)  # (T, 6) z-down world
    ego_location: np.ndarray = field(init=False)  # (T, 3) CARLA, the camera
    ego_speed: np.ndarray = field(init=False)
    ego_accel: np.ndarray = field(init=False)
    throttle: np.ndarray = field(init=False)
    brake: np.ndarray = field(init=False)
    camera_height: np.ndarray = field(init=False)
    others_pose: np.ndarray = field(init=False)  # (T, M, 6) z-down world, bottom-face centre
    others_speed: np.ndarray = field(init=False)
    others_accel: np.ndarray = field(init=False)
    others_present: np.ndarray = field(init=False)
    others_size: np.ndarray = field(init=False)  # (M, 3)
    lane_change_commands: list = field(default_factory=list)  # (blink frame, command frame, side)
    lead_spawned: bool = False

    def __post_init__(self) -> None:
        T, M = self.n_frames, self.n_others
        self.device_pose, self.ego_location = np.zeros((T, 6)), np.zeros((T, 3))
        self.ego_speed, self.ego_accel, self.throttle, self.brake, self.camera_height = np.zeros((5, T))
        self.others_pose = np.zeros((T, M, 6))
        self.others_speed, self.others_accel = np.zeros((T, M)), np.zeros((T, M))
        self.others_present = np.zeros((T, M), bool)
        self.others_size = np.zeros((M, 3))


@dataclass
class Cast:
    ego: object
    road_cam: object
    wide_cam: object
    lead: object | None  # the scripted lead (None when it could not be spawned)
    traffic: list
    queues: tuple[SensorQueue, SensorQueue]

    @property
    def others(self) -> list:
        """Every other vehicle, the lead first: the ground truth's vehicle order."""
        return ([self.lead] if self.lead is not None else []) + self.traffic


def _spawn_cast(session: CarlaSession, schedule: EpisodeSchedule, spawns: list, rng: np.random.Generator,
                traffic_radius_m: float) -> Cast:
    carla, world = session.carla, session.world
    library = world.get_blueprint_library()
    ego_bp = ego_blueprint(library)
    set_role(ego_bp, "hero")
    ego, start = None, None
    for start in spawns[:20]:
        ego = session.spawn(ego_bp, start)
        if ego is not None:
            break
    if ego is None:
        raise RuntimeError("every candidate spawn point for the ego is occupied")
    mount = carla.Transform(carla.Location(x=CAMERA_MOUNT_X_M, z=camera.CAMERA_HEIGHT_M))
    size = (camera.C3_ROAD.width_px, camera.C3_ROAD.height_px)
    road_cam = session.spawn(camera_blueprint(library, *size, ROAD_CAMERA_FOV_DEG), mount, attach_to=ego)
    wide_cam = session.spawn(camera_blueprint(library, *size, WIDE_CAMERA_FOV_DEG), mount, attach_to=ego)
    if road_cam is None or wide_cam is None:
        raise RuntimeError("the cameras could not be attached to the ego")
    queues = (SensorQueue("road camera"), SensorQueue("wide camera"))
    road_cam.listen(queues[0])
    wide_cam.listen(queues[1])
    cars = four_wheelers(library)
    lead_bp = cars[int(rng.integers(len(cars)))]  # drawn whether or not it spawns: the same stream either way
    lead = _spawn_lead(session, schedule, start, lead_bp) if schedule.lead != "none" else None
    traffic = []
    for point in nearest_spawns(list(session.world.get_map().get_spawn_points()), start.location,
                                   traffic_radius_m)[: schedule.traffic]:
        vehicle = session.spawn(cars[int(rng.integers(len(cars)))], point)
        if vehicle is not None:
            traffic.append(vehicle)
    return Cast(ego, road_cam, wide_cam, lead, traffic, queues)


def _spawn_lead(session: CarlaSession, schedule: EpisodeSchedule, start, blueprint):
    """The lead in the ego's lane, ``lead_gap_s`` ahead; None if that place is off the map or occupied."""
    carla = session.carla
    ahead = session.world.get_map().get_waypoint(start.location).next(max(schedule.lead_gap_s * schedule.ego_speed_mps,
                                                                          8.0))
    if not ahead:
        return None
    where = ahead[0].transform
    lifted = carla.Location(x=where.location.x, y=where.location.y, z=where.location.z + 0.5)  # as spawn points
    return session.spawn(blueprint, carla.Transform(lifted, where.rotation))


def _configure_traffic(session: CarlaSession, schedule: EpisodeSchedule, cast: Cast) -> None:
    tm, port = session.tm, session.address.tm_port
    cast.ego.set_autopilot(True, port)
    tm.set_desired_speed(cast.ego, schedule.ego_speed_mps * 3.6)
    tm.auto_lane_change(cast.ego, False)
    tm.distance_to_leading_vehicle(cast.ego, max(5.0, schedule.headway_s * schedule.ego_speed_mps))
    tm.ignore_lights_percentage(cast.ego, 0.0)
    tm.ignore_signs_percentage(cast.ego, 0.0)
    if schedule.route:
        tm.set_route(cast.ego, schedule.route)
    if cast.lead is not None:
        cast.lead.set_autopilot(True, port)
        tm.set_desired_speed(cast.lead, schedule.lead_speed_mps * 3.6)
        tm.auto_lane_change(cast.lead, False)
    for k, vehicle in enumerate(cast.traffic):
        vehicle.set_autopilot(True, port)
        tm.vehicle_percentage_speed_difference(vehicle, schedule.traffic_speed_diff_pct[k])


def _apply_event(session: CarlaSession, cast: Cast, frame: int, kind: str, value: float, rec: Recording,
                 blinks: dict) -> None:
    if kind == "lead_speed" and cast.lead is not None and cast.lead.is_alive:
        session.tm.set_desired_speed(cast.lead, value)
    elif kind == "blink":
        blinks[int(value)] = frame
    elif kind == "lane_change":
        side = int(value)
        w = session.world.get_map().get_waypoint(cast.ego.get_location())
        lanes = geometry.neighbours(w, side)
        if lanes and geometry.is_same_direction_driving(w, lanes[0]):
            session.tm.force_lane_change(cast.ego, side > 0)  # direction True = the lane on the right
            rec.lane_change_commands.append((blinks.pop(side, frame), frame, side))


def _record(rec: Recording, t: int, cast: Cast, carla_map) -> None:
    cam_tf = cast.road_cam.get_transform()
    ego_tf = cast.ego.get_transform()
    rec.device_pose[t] = geometry.pose_from_transform(cam_tf)
    rec.ego_location[t] = (cam_tf.location.x, cam_tf.location.y, cam_tf.location.z)
    rec.ego_speed[t] = geometry.body_component(cast.ego.get_velocity(), ego_tf)
    rec.ego_accel[t] = geometry.body_component(cast.ego.get_acceleration(), ego_tf)
    control = cast.ego.get_control()
    rec.throttle[t], rec.brake[t] = control.throttle, control.brake
    road = carla_map.get_waypoint(cam_tf.location)
    rec.camera_height[t] = cam_tf.location.z - road.transform.location.z
    for m, vehicle in enumerate(cast.others):
        if not vehicle.is_alive:
            continue
        tf = vehicle.get_transform()
        bb = vehicle.bounding_box
        bottom = tf.transform(type(bb.location)(x=bb.location.x, y=bb.location.y, z=bb.location.z - bb.extent.z))
        pose = geometry.pose_from_transform(tf)
        pose[:3] = (bottom.x, bottom.y, -bottom.z)
        rec.others_pose[t, m] = pose
        rec.others_speed[t, m] = geometry.body_component(vehicle.get_velocity(), tf)
        rec.others_accel[t, m] = geometry.body_component(vehicle.get_acceleration(), tf)
        rec.others_present[t, m] = True


def _sizes(others: list) -> np.ndarray:
    return np.array([[2 * v.bounding_box.extent.x, 2 * v.bounding_box.extent.y, 2 * v.bounding_box.extent.z]
                     for v in others]).reshape(-1, 3)


def _warm_up(session: CarlaSession, cast: Cast, schedule: EpisodeSchedule) -> int:
    """Tick until the ego is under way (the recording should not start from a standstill at the spawn point).

    At least WARMUP_S, then until the ego reaches WARMUP_SPEED_FRACTION of its cruise speed (or a slower lead's),
    at most WARMUP_MAX_S. Returns the number of ticks.
    """
    lead_mps = schedule.lead_speed_mps if schedule.lead != "none" else 1e9
    wanted = WARMUP_SPEED_FRACTION * min(schedule.ego_speed_mps, lead_mps)
    ticks = 0
    while True:
        frame = session.tick()
        for q in cast.queues:
            q.get(frame, session.timeout_s)  # keeps the queues at the current frame (and checks none is lost)
        ticks += 1
        elapsed = ticks * DT_S
        if elapsed >= WARMUP_MAX_S or (elapsed >= WARMUP_S and _speed(cast.ego) >= wanted):
            return ticks


def _speed(vehicle) -> float:
    v = vehicle.get_velocity()
    return float(np.sqrt(v.x * v.x + v.y * v.y + v.z * v.z))


def drive(session: CarlaSession, schedule: EpisodeSchedule, spawns: list, rng: np.random.Generator, n_frames: int,
          writer: ShardWriter, traffic_radius_m: float, progress=None, n_recorded: int | None = None) -> Recording:
    """Spawn the cast, warm up, then drive ``n_frames`` frames: the returned Recording holds the truth of all of them,
    ``writer`` the images of the first ``n_recorded`` (default all; the rest are the label tail)."""
    n_recorded = n_frames if n_recorded is None else n_recorded
    cast = _spawn_cast(session, schedule, spawns, rng, traffic_radius_m)
    _configure_traffic(session, schedule, cast)
    weather = session.world.get_weather()  # the server's tuned defaults (scattering, fog falloff, ...)
    for key, value in schedule.weather.items():
        setattr(weather, key, value)
    session.world.set_weather(weather)
    carla_map = session.world.get_map()
    rec = Recording(n_frames, len(cast.others))
    rec.lead_spawned = cast.lead is not None
    rec.others_size[:] = _sizes(cast.others)
    _warm_up(session, cast, schedule)
    events, blinks = list(schedule.events), {}
    road_block = np.empty((WRITE_BLOCK_FRAMES, 256, 512, 3), np.uint8)
    wide_block = np.empty_like(road_block)
    for t in range(n_frames):
        while events and events[0][0] <= t:
            _, kind, value = events.pop(0)
            _apply_event(session, cast, t, kind, value, rec, blinks)
        frame = session.tick()
        road_img, wide_img = (q.get(frame, session.timeout_s) for q in cast.queues)  # taken in the tail too
        _record(rec, t, cast, carla_map)
        if t < n_recorded:
            j = t % WRITE_BLOCK_FRAMES
            road_block[j] = cameras.road_to_model(image_bgra(road_img))[..., 2::-1]  # BGRA -> RGB after the warp
            wide_block[j] = cameras.wide_to_model(image_bgra(wide_img))[..., 2::-1]
            if j == WRITE_BLOCK_FRAMES - 1 or t == n_recorded - 1:
                writer.write_frames(t - j, pack_frames(road_block[: j + 1], wide_block[: j + 1]))
        if progress is not None:
            progress(t)
    return rec

