"""Constants of the modeld contract: grids, widths, index slices and enums.

Everything here is defined once and imported everywhere else; code reads ``plan[..., Plan.VELOCITY]``,
never bare indices. Values follow openpilot's ``selfdrive/modeld/constants.py`` semantics (see
docs/contract.md).
"""

from __future__ import annotations

import enum

import numpy as np

# --- timing -------------------------------------------------------------------------------------------
MODEL_FREQ_HZ = 20
DT_S = 1.0 / MODEL_FREQ_HZ
FRAME_PAIR_OFFSET = 4  # img / big_img hold frames t-4 and t (0.2 s apart)
HISTORY_BUFFER_LEN = 25  # features_buffer / desire_pulse entries
TEMPORAL_SKIP = 4  # one history entry every 4 frames (5 Hz)
HISTORY_SPAN_FRAMES = (HISTORY_BUFFER_LEN - 1) * TEMPORAL_SKIP  # 96: the oldest entry is frame t-96

# --- grids --------------------------------------------------------------------------------------------
IDX_N = 33
T_IDXS = np.array([10.0 * (i / (IDX_N - 1)) ** 2 for i in range(IDX_N)], dtype=np.float64)  # s
X_IDXS = np.array([192.0 * (i / (IDX_N - 1)) ** 2 for i in range(IDX_N)], dtype=np.float64)  # m
LEAD_T_IDXS = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])  # s
LEAD_T_OFFSETS = np.array([0.0, 2.0, 4.0])  # s
META_T_IDXS = np.array([2.0, 4.0, 6.0, 8.0, 10.0])  # s
DESIRE_PRED_T_IDXS = np.array([0.0, 2.0, 4.0, 6.0])  # s
PLAN_HORIZON_S = float(T_IDXS[-1])

# --- widths and counts --------------------------------------------------------------------------------
FEATURE_LEN = 512
DESIRE_LEN = 8
DESIRE_PRED_LEN = 4
TRAFFIC_CONVENTION_LEN = 2
LATERAL_CONTROL_PARAMS_LEN = 2
PREV_DESIRED_CURV_LEN = 1
DESIRED_CURV_WIDTH = 1

PLAN_WIDTH = 15
PLAN_MHP_N = 5
PLAN_MHP_SELECTION = 1
NUM_LANE_LINES = 4
NUM_ROAD_EDGES = 2
LANE_LINES_WIDTH = 2  # (y, z)
LEAD_WIDTH = 4  # (x, y, v, a)
LEAD_TRAJ_LEN = 6
LEAD_MHP_N = 2
LEAD_MHP_SELECTION = 3
POSE_WIDTH = 6
WIDE_FROM_DEVICE_WIDTH = 3
META_WIDTH = 55

IMG_SHAPE = (1, 12, 128, 256)  # two 6-channel YUV frames


class Plan:
    """Column slices of one plan row (33 x 15)."""

    POSITION = slice(0, 3)  # m, frame at t=0
    VELOCITY = slice(3, 6)  # m/s, local frame at t
    ACCELERATION = slice(6, 9)  # m/s^2, local frame at t
    T_FROM_CURRENT_EULER = slice(9, 12)  # rad, frame at t relative to t=0
    ORIENTATION_RATE = slice(12, 15)  # rad/s, local frame


class Pose:
    """Slices of the 6-wide pose vector."""

    VELOCITY = slice(0, 3)  # m/s, calibrated frame
    ROTATION_RATE = slice(3, 6)  # roll/pitch/yaw rate, rad/s


class RoadTransform:
    """Indices of the 6-wide road_transform vector (translation xyz, then rotation)."""

    HEIGHT = 2  # translation z: the camera's height above the road (m)


class LeadField:
    """Column indices of one lead trajectory point (x, y, v, a)."""

    X = 0
    Y = 1
    V = 2
    A = 3


class LaneLine(enum.IntEnum):
    """Order of the four lane lines."""

    FAR_LEFT = 0
    LEFT = 1
    RIGHT = 2
    FAR_RIGHT = 3


def lane_centre_y(lines):
    """The lane centre about the car at each of a line's points: the middle of the left and right lines' y (right,
    column 0) of lane lines (..., 4, 33, 2), numpy or torch -> (..., 33)."""
    return 0.5 * (lines[..., LaneLine.LEFT, :, 0] + lines[..., LaneLine.RIGHT, :, 0])


class RoadEdge(enum.IntEnum):
    LEFT = 0
    RIGHT = 1


class Meta:
    """Index layout of the 55 meta logits.

    ``ENGAGED`` is one index; the others are index arrays over the horizons named in their comment, so
    ``meta[..., Meta.HARD_BRAKE_3]`` gives the 5 horizons of META_T_IDXS.
    """

    ENGAGED = 0
    # cumulative "between now and T" events at META_T_IDXS (2, 4, 6, 8, 10 s): base 1 + 6k
    GAS_DISENGAGE = np.arange(1, 31, 6)
    BRAKE_DISENGAGE = np.arange(2, 31, 6)
    STEER_OVERRIDE = np.arange(3, 31, 6)
    HARD_BRAKE_3 = np.arange(4, 31, 6)
    HARD_BRAKE_4 = np.arange(5, 31, 6)
    HARD_BRAKE_5 = np.arange(6, 31, 6)
    # states at 0, 2, 4, 6, 8, 10 s: base 31 + 4k
    GAS_PRESS = np.arange(31, 55, 4)
    BRAKE_PRESS = np.arange(32, 55, 4)
    LEFT_BLINKER = np.arange(33, 55, 4)
    RIGHT_BLINKER = np.arange(34, 55, 4)
    DISENGAGE_T_IDXS = META_T_IDXS
    STATE_T_IDXS = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])


class Desire(enum.IntEnum):
    """openpilot's desire enum (log.Desire)."""

    NONE = 0
    TURN_LEFT = 1
    TURN_RIGHT = 2
    LANE_CHANGE_LEFT = 3
    LANE_CHANGE_RIGHT = 4
    KEEP_LEFT = 5
    KEEP_RIGHT = 6
    UNUSED = 7


class TrafficConvention(enum.Enum):
    """Which side of the road traffic drives on; encoded as the 2-vector modeld feeds."""

    RIGHT_HAND = "right_hand"  # traffic drives on the right (LHD car: US, EU) -> [1, 0]
    LEFT_HAND = "left_hand"  # traffic drives on the left (RHD car: UK, JP, AU) -> [0, 1]


def encode_traffic_convention(convention: TrafficConvention) -> np.ndarray:
    """The (2,) float32 vector modeld feeds for ``convention``."""
    vec = np.zeros(TRAFFIC_CONVENTION_LEN, dtype=np.float32)
    vec[0 if convention is TrafficConvention.RIGHT_HAND else 1] = 1.0
    return vec


def desire_one_hot(desire: int | Desire) -> np.ndarray:
    """(8,) float32 one-hot of a desire value."""
    value = int(desire)
    if not 0 <= value < DESIRE_LEN:
        raise ValueError(f"desire {value} is outside the enum 0..{DESIRE_LEN - 1}")
    vec = np.zeros(DESIRE_LEN, dtype=np.float32)
    vec[value] = 1.0
    return vec
