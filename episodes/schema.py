"""The shard schema: every per-frame array an episode holds, its shape, dtype and what it is for - defined once.

Frame-major arrays at 20 Hz (T frames). ``img`` / ``big_img`` are one packed YUV frame each (the model's 12-channel
input of frames t-4 and t is assembled at load time); every other key is a label array of
``collector/labels.py`` (definitions in docs/labels.md). The key lists the rest of the toolkit uses (which keys are
images, which train the vision model, ...) are derived from the ``role`` column here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contract.constants import (
    DESIRE_LEN,
    IDX_N,
    LANE_LINES_WIDTH,
    LEAD_MHP_SELECTION,
    LEAD_TRAJ_LEN,
    LEAD_WIDTH,
    META_WIDTH,
    NUM_LANE_LINES,
    NUM_ROAD_EDGES,
    PLAN_WIDTH,
    POSE_WIDTH,
    TRAFFIC_CONVENTION_LEN,
    WIDE_FROM_DEVICE_WIDTH,
)

SCHEMA_VERSION = 1
LABEL_DEFINITIONS_VERSION = 1
FRAME_SHAPE = (6, 128, 256)

IMAGE = "image"  # a packed camera frame
VISION_TARGET = "vision_target"  # trains a head of driving_vision
POLICY_TARGET = "policy_target"  # trains a head of driving_policy (the plan)
SIGNAL = "signal"  # what the car or the driver says at run time (speed, desire, traffic side): feeds inputs
MASK = "mask"  # which frames have a label


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame array of a shard."""

    shape: tuple[int, ...]  # per frame
    dtype: str
    role: str


SCHEMA: dict[str, ArraySpec] = {
    "img": ArraySpec(FRAME_SHAPE, "uint8", IMAGE),
    "big_img": ArraySpec(FRAME_SHAPE, "uint8", IMAGE),
    "plan": ArraySpec((IDX_N, PLAN_WIDTH), "float32", POLICY_TARGET),
    "lane_lines": ArraySpec((NUM_LANE_LINES, IDX_N, LANE_LINES_WIDTH), "float32", VISION_TARGET),
    "lane_lines_prob": ArraySpec((NUM_LANE_LINES,), "float32", VISION_TARGET),
    "road_edges": ArraySpec((NUM_ROAD_EDGES, IDX_N, LANE_LINES_WIDTH), "float32", VISION_TARGET),
    "lead": ArraySpec((LEAD_MHP_SELECTION, LEAD_TRAJ_LEN, LEAD_WIDTH), "float32", VISION_TARGET),
    "lead_prob": ArraySpec((LEAD_MHP_SELECTION,), "float32", VISION_TARGET),
    "pose": ArraySpec((POSE_WIDTH,), "float32", VISION_TARGET),
    "road_transform": ArraySpec((POSE_WIDTH,), "float32", VISION_TARGET),
    "wide_from_device_euler": ArraySpec((WIDE_FROM_DEVICE_WIDTH,), "float32", VISION_TARGET),
    "desire": ArraySpec((DESIRE_LEN,), "float32", SIGNAL),  # also the desire_state / desire_pred target
    "meta": ArraySpec((META_WIDTH,), "float32", VISION_TARGET),
    "traffic_convention": ArraySpec((TRAFFIC_CONVENTION_LEN,), "float32", SIGNAL),
    "ego_speed": ArraySpec((), "float32", SIGNAL),
    "ego_accel": ArraySpec((), "float32", SIGNAL),
    "valid": ArraySpec((), "bool", MASK),
}


def keys_with_role(role: str) -> tuple[str, ...]:
    return tuple(k for k, spec in SCHEMA.items() if spec.role == role)


IMAGE_KEYS = keys_with_role(IMAGE)
LABEL_KEYS = tuple(k for k in SCHEMA if k not in IMAGE_KEYS)
VISION_TARGET_KEYS = keys_with_role(VISION_TARGET)
