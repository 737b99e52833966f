"""Ground truth of one episode, as every simulator backend hands it to the labeller.

A backend (built-in or CARLA) produces an :class:`EpisodeTruth` with the world-frame facts of each frame at
20 Hz; ``collector/labels.py`` turns it into the contract's label arrays. The world frame is right-handed
and z-down (x north, y east, z down; see ``collector/builtin/world.py``); poses are
``(x, y, z, roll, pitch, yaw)`` with the contract's Euler convention (``R = Rz Ry Rx``, body FRD -> world).

Shapes: T frames, K samples along the ego's lane ahead, M other vehicles.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

LINE_SAMPLES_AHEAD_M = 220.0  # lines and edges must reach past X_IDXS[-1] = 192 m


@dataclass
class EpisodeTruth:
    dt_s: float
    # --- ego (the device frame: origin at the camera, FRD axes aligned with the car body) ---
    ego_pose_ned: np.ndarray  # (T, 6)
    ego_speed_mps: np.ndarray  # (T,) along body x
    ego_accel_mps2: np.ndarray  # (T,) along body x
    camera_height_m: float  # camera height above the road under the car
    # --- driver / car signals ---
    desire: np.ndarray  # (T,) int, contract Desire enum, as openpilot's desire helper would set it
    left_blinker: np.ndarray  # (T,) bool
    right_blinker: np.ndarray  # (T,) bool
    gas_pressed: np.ndarray  # (T,) bool
    brake_pressed: np.ndarray  # (T,) bool
    engaged: np.ndarray  # (T,) bool: the expert (standing in for openpilot) is in control
    gas_disengage: np.ndarray  # (T,) bool: a disengagement by gas starts at this frame
    brake_disengage: np.ndarray  # (T,) bool
    steer_override: np.ndarray  # (T,) bool: the driver overrides steering at this frame
    # --- lane geometry around the ego, per frame ---
    lines_ned: np.ndarray  # (T, 4, K, 3): far-left, left, right, far-right lane boundaries of the ego's
    #                        current lane, sampled along the lane from behind the car to >= 220 m ahead
    lines_exist: np.ndarray  # (T, 4) bool: the line is painted (see docs/labels.md)
    edges_ned: np.ndarray  # (T, 2, K, 3): left and right edges of the pavement, same sampling
    # --- other vehicles ---
    others_pose_ned: np.ndarray  # (T, M, 6): centre of the box's bottom face
    others_speed_mps: np.ndarray  # (T, M)
    others_accel_mps2: np.ndarray  # (T, M)
    others_size_m: np.ndarray  # (M, 3) length, width, height
    others_present: np.ndarray  # (T, M) bool: the vehicle exists in the world at this frame
    traffic_convention: str = "right_hand"  # contract TrafficConvention value
    wide_from_device_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)  # wide camera mount vs road camera

    @property
    def n_frames(self) -> int:
        return int(self.ego_pose_ned.shape[0])

    def validate(self) -> None:
        """Shape checks (internal invariants of a backend: a failure is a bug)."""
        T = self.n_frames
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and f.name != "others_size_m":
                assert value.shape[0] == T, f"{f.name}: {value.shape[0]} frames, expected {T}"
        assert self.ego_pose_ned.shape == (T, 6)
        assert self.lines_ned.shape[:2] == (T, 4) and self.lines_ned.shape[3] == 3
        assert self.edges_ned.shape[:2] == (T, 2) and self.edges_ned.shape[3] == 3
        assert self.lines_exist.shape == (T, 4)
        M = self.others_size_m.shape[0]
        assert self.others_pose_ned.shape == (T, M, 6) and self.others_present.shape == (T, M)
