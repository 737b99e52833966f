"""A CARLA :class:`Recording` -> the shared :class:`EpisodeTruth` (lines from the map, signals, meta)."""

from __future__ import annotations

import numpy as np

from ...contract.constants import DT_S
from ..episode_truth import EpisodeTruth
from . import geometry
from .carla_episode import Recording
from .signals import LaneTrack, Signals, episode_signals

TRACK_STRIDE = 2  # frames between the track points used to pick the branch the ego took
TRACK_AHEAD_S = 15.0
GAS_PRESSED = 0.3  # throttle fraction: the Traffic Manager's pedals stand in for a driver's
BRAKE_PRESSED = 0.1


def lane_track(rec: Recording, carla_map, carla) -> tuple[LaneTrack, list]:
    """Where the ego is in the map at every frame, and its waypoint per frame."""
    T = rec.n_frames
    waypoints = [carla_map.get_waypoint(carla.Location(x=float(p[0]), y=float(p[1]), z=float(p[2])))
                 for p in rec.ego_location]
    offsets = np.array([geometry.lateral_offset_m(w, carla.Location(x=float(p[0]), y=float(p[1]), z=float(p[2])))
                        for w, p in zip(waypoints, rec.ego_location)])
    step = np.linalg.norm(np.diff(rec.ego_location[:, :2], axis=0), axis=1)
    track = LaneTrack(road_id=np.array([w.road_id for w in waypoints]),
                      lane_id=np.array([w.lane_id for w in waypoints]),
                      in_junction=np.array([bool(w.is_junction) for w in waypoints]), offset_m=offsets,
                      yaw_deg=np.degrees(rec.device_pose[:, 5]),
                      travelled_m=np.concatenate([[0.0], np.cumsum(step)]), speed_mps=rec.ego_speed)
    assert len(track.lane_id) == T
    return track, waypoints


def road_truth(rec: Recording, waypoints: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lines (T, 4, K, 3), edges (T, 2, K, 3) in the z-down world, and which lines exist (T, 4)."""
    T, K = rec.n_frames, geometry.N_SAMPLES
    lines, edges = np.zeros((T, 4, K, 3)), np.zeros((T, 2, K, 3))
    exist = np.zeros((T, 4), bool)
    ahead = int(TRACK_AHEAD_S / DT_S)
    for t, w in enumerate(waypoints):
        future = rec.ego_location[t: t + ahead: TRACK_STRIDE, :2]
        past = rec.ego_location[max(0, t - 60): t + 1: TRACK_STRIDE, :2]
        samples = geometry.lane_samples(w, future, past)
        lines[t], edges[t] = geometry.road_geometry(samples)
        exist[t] = geometry.cross_section(w)[2]
    return lines, edges, exist


def episode_truth(rec: Recording, carla_map, carla, traffic_convention: str) -> tuple[EpisodeTruth, Signals]:
    track, waypoints = lane_track(rec, carla_map, carla)
    signals = episode_signals(track, rec.lane_change_commands, DT_S)
    lines, edges, exist = road_truth(rec, waypoints)
    T = rec.n_frames
    no = np.zeros(T, bool)
    truth = EpisodeTruth(
        dt_s=DT_S, ego_pose_ned=rec.device_pose, ego_speed_mps=rec.ego_speed, ego_accel_mps2=rec.ego_accel,
        camera_height_m=float(np.median(rec.camera_height)), desire=signals.desire,
        left_blinker=signals.left_blinker, right_blinker=signals.right_blinker,
        gas_pressed=rec.throttle > GAS_PRESSED, brake_pressed=rec.brake > BRAKE_PRESSED, engaged=~no,
        gas_disengage=no, brake_disengage=no, steer_override=no, lines_ned=lines, lines_exist=exist,
        edges_ned=edges, others_pose_ned=rec.others_pose, others_speed_mps=rec.others_speed,
        others_accel_mps2=rec.others_accel, others_size_m=rec.others_size, others_present=rec.others_present,
        traffic_convention=traffic_convention)
    truth.validate()
    return truth, signals
