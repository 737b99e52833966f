"""EpisodeTruth -> the contract's label arrays, in the frames and units modeld's consumers expect.

Every definition the contract leaves open is written down in docs/labels.md; this module is the code of
that document. All outputs are float32, time-major at 20 Hz. Frames: the device frame at frame t (FRD,
origin at the camera); with zero mount calibration it is also the calibrated frame the model predicts in.
"""

from __future__ import annotations

import numpy as np

from ..contract import camera
from ..contract.constants import (
    DESIRE_LEN,
    IDX_N,
    LEAD_T_IDXS,
    LEAD_T_OFFSETS,
    LEAD_TRAJ_LEN,
    LEAD_WIDTH,
    META_WIDTH,
    PLAN_HORIZON_S,
    PLAN_WIDTH,
    T_IDXS,
    X_IDXS,
    LaneLine,
    LeadField,
    Meta,
    Plan,
    TrafficConvention,
    encode_traffic_convention,
)
from ..episodes.schema import LABEL_KEYS
from .episode_truth import EpisodeTruth

LEAD_RANGE_M = 200.0  # a vehicle further than this is not a lead
LEAD_LANE_MARGIN_M = 0.3  # a lead's centre may sit this far outside its lane lines (lane changes)
HARD_BRAKE_MPS2 = (3.0, 4.0, 5.0)  # hardBrake3 / 4 / 5 thresholds (deceleration)
ROAD_FIT_RANGE_M = (0.0, 10.0)  # where road_transform's plane is fitted
FORWARD_FRACTION = 0.5  # a line counts while x grows by at least this part of each step along it
MAX_EXTENSION_DYDX = 1.0  # a line continued past where its lane turns away goes sideways at most 45 degrees
MAX_GRADE = 0.12  # ... and climbs or falls at most like the steepest road


# --- ego kinematics -------------------------------------------------------------------------------------
def _ego_kinematics(truth: EpisodeTruth) -> dict[str, np.ndarray]:
    """Per-frame rotation, local velocity/acceleration and angular rate from the pose track."""
    dt = truth.dt_s
    pos = truth.ego_pose_ned[:, :3]  # (T, 3) world
    rot = camera.rot_from_euler(truth.ego_pose_ned[:, 3:])  # (T, 3, 3) body -> world
    vel_w = np.gradient(pos, dt, axis=0)  # (T, 3)
    acc_w = np.gradient(vel_w, dt, axis=0)
    rot_dot = np.gradient(rot, dt, axis=0)  # (T, 3, 3)
    omega_skew = np.einsum("tji,tjk->tik", rot, rot_dot)  # R^T dR/dt, skew-symmetric (body rates)
    omega = np.stack([omega_skew[:, 2, 1], omega_skew[:, 0, 2], omega_skew[:, 1, 0]], axis=1)  # (T, 3)
    return {
        "pos": pos,
        "rot": rot,
        "euler_unwrapped": np.unwrap(truth.ego_pose_ned[:, 3:], axis=0),
        "vel_local": np.einsum("tji,tj->ti", rot, vel_w),  # R^T v
        "acc_local": np.einsum("tji,tj->ti", rot, acc_w),
        "omega_local": omega,
    }


def _interp_frames(values: np.ndarray, times_f: np.ndarray) -> np.ndarray:
    """Linear interpolation of per-frame ``values`` (T, ...) at fractional frame indices (N,) (clamped)."""
    T = values.shape[0]
    t = np.clip(times_f, 0, T - 1)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (t - i0).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[i0] * (1 - w) + values[i1] * w


def plan_labels(truth: EpisodeTruth, kin: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 33, 15) plan from the ego's actual future at T_IDXS (clamped at the episode end)."""
    T = truth.n_frames
    offsets_f = T_IDXS / truth.dt_s  # (33,) frames ahead
    plan = np.zeros((T, IDX_N, PLAN_WIDTH), dtype=np.float64)
    for t in range(T):
        times = t + offsets_f
        pos = _interp_frames(kin["pos"], times)  # (33, 3)
        rot_t = kin["rot"][t]
        rot_future = camera.rot_from_euler(_interp_frames(kin["euler_unwrapped"], times))  # (33, 3, 3)
        rel_rot = np.einsum("ji,njk->nik", rot_t, rot_future)  # R_t^T R(t+tau)
        plan[t, :, Plan.POSITION] = (pos - kin["pos"][t]) @ rot_t
        plan[t, :, Plan.VELOCITY] = _interp_frames(kin["vel_local"], times)
        plan[t, :, Plan.ACCELERATION] = _interp_frames(kin["acc_local"], times)
        plan[t, :, Plan.T_FROM_CURRENT_EULER] = camera.euler_from_rot(rel_rot)
        plan[t, :, Plan.ORIENTATION_RATE] = _interp_frames(kin["omega_local"], times)
    return plan.astype(np.float32)


# --- lines and edges ------------------------------------------------------------------------------------
def _to_device(points_w: np.ndarray, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """World points (..., 3) into the device frame of a pose (R^T (p - pos))."""
    return (points_w - pos) @ rot


def _line_at_x(points_d: np.ndarray) -> np.ndarray:
    """(33, 2) y, z of a device-frame polyline (K, 3) at X_IDXS.

    Uses the stretch from the first sample while the line heads forward (within 60 degrees of the x axis: x grows by
    at least half of each step along the line). Beyond its last x (the lane turns away, e.g. through a junction's
    connector) the line continues straight from its last point: sideways at its final slope dy/dx, at
    most ``MAX_EXTENSION_DYDX``, and up or down at the grade it had per metre travelled (dz/ds, at most
    ``MAX_GRADE``), so heights stay on a plausible road surface (see docs/labels.md).
    """
    x = points_d[:, 0]
    stop = len(x)
    steps = np.diff(points_d, axis=0)  # (K-1, 3)
    bad = np.nonzero(steps[:, 0] < FORWARD_FRACTION * np.linalg.norm(steps, axis=1) + 1e-6)[0]
    if len(bad):
        stop = int(bad[0]) + 1
    x, y, z = x[:stop], points_d[:stop, 1], points_d[:stop, 2]
    out = np.empty((IDX_N, 2))
    out[:, 0] = np.interp(X_IDXS, x, y)
    out[:, 1] = np.interp(X_IDXS, x, z)
    beyond = X_IDXS > x[-1]
    if beyond.any() and stop >= 2:
        j = min(max(0, int(np.searchsorted(x, x[-1] - 10.0)) - 1), stop - 2)
        seg = points_d[stop - 1] - points_d[j]  # the last ~10 m
        dydx = float(np.clip(seg[1] / max(seg[0], 1e-3), -MAX_EXTENSION_DYDX, MAX_EXTENSION_DYDX))
        dzds = float(np.clip(seg[2] / max(np.linalg.norm(seg), 1e-3), -MAX_GRADE, MAX_GRADE))
        dx = X_IDXS[beyond] - x[-1]
        out[beyond, 0] = y[-1] + dydx * dx
        out[beyond, 1] = z[-1] + dzds * dx
    return out


def order_lines(lines: np.ndarray) -> np.ndarray:
    """(L, 33, 2) lines ordered left to right at every x (y never decreases from one line to the next): where two
    continued lines would cross, the right one is held at the left one's y."""
    out = lines.copy()
    out[:, :, 0] = np.maximum.accumulate(out[:, :, 0], axis=0)
    return out


def line_labels(lines_ned: np.ndarray, kin: dict[str, np.ndarray]) -> np.ndarray:
    """(T, L, 33, 2) y, z at X_IDXS of L world polylines per frame (T, L, K, 3), ordered left to right."""
    T, L = lines_ned.shape[:2]
    out = np.zeros((T, L, IDX_N, 2), dtype=np.float32)
    for t in range(T):
        local = _to_device(lines_ned[t], kin["pos"][t], kin["rot"][t])  # (L, K, 3)
        out[t] = order_lines(np.stack([_line_at_x(local[i]) for i in range(L)]))
    return out


def road_transform_labels(lanes: np.ndarray) -> np.ndarray:
    """(T, 6) [0, 0, height, roll, pitch, 0] of the road plane near the car, from left/right line labels.

    A plane z = h + a x + b y is fitted to the left and right lines over ROAD_FIT_RANGE_M; height = h (camera
    above the road), pitch = -atan(a) (road rising ahead = nose up), roll = atan(b) (right side lower).
    """
    sel = (X_IDXS >= ROAD_FIT_RANGE_M[0]) & (X_IDXS <= ROAD_FIT_RANGE_M[1])
    x = np.concatenate([X_IDXS[sel]] * 2)
    out = np.zeros((lanes.shape[0], 6), dtype=np.float32)
    for t in range(lanes.shape[0]):
        y = np.concatenate([lanes[t, LaneLine.LEFT, sel, 0], lanes[t, LaneLine.RIGHT, sel, 0]])
        z = np.concatenate([lanes[t, LaneLine.LEFT, sel, 1], lanes[t, LaneLine.RIGHT, sel, 1]])
        A = np.stack([np.ones_like(x), x, y], axis=1)
        (h, a, b), *_ = np.linalg.lstsq(A, z, rcond=None)
        out[t, 2:5] = (h, np.arctan(b), -np.arctan(a))
    return out


# --- leads ----------------------------------------------------------------------------------------------
def _rear_points(truth: EpisodeTruth) -> np.ndarray:
    """(T, M, 3) world position of the centre of each vehicle's rear face at mid height."""
    pose = truth.others_pose_ned
    rot = camera.rot_from_euler(pose.reshape(-1, 6)[:, 3:]).reshape(pose.shape[:2] + (3, 3))
    half_len = truth.others_size_m[:, 0] / 2.0  # (M,)
    half_h = truth.others_size_m[:, 2] / 2.0
    local = np.stack([-half_len, np.zeros_like(half_len), -half_h], axis=1)  # (M, 3) in the vehicle's FRD
    return pose[:, :, :3] + np.einsum("tmij,mj->tmi", rot, local)


def _lead_index(truth: EpisodeTruth, kin: dict, rear_w: np.ndarray, lanes: np.ndarray, t: int) -> int:
    """Index of the vehicle that is the ego's lead at frame t, or -1."""
    local = _to_device(rear_w[t], kin["pos"][t], kin["rot"][t])  # (M, 3)
    x, y = local[:, 0], local[:, 1]
    left = np.interp(x, X_IDXS, lanes[t, LaneLine.LEFT, :, 0]) - LEAD_LANE_MARGIN_M
    right = np.interp(x, X_IDXS, lanes[t, LaneLine.RIGHT, :, 0]) + LEAD_LANE_MARGIN_M
    ok = truth.others_present[t] & (x > 0.0) & (x < LEAD_RANGE_M) & (y > left) & (y < right)
    if not ok.any():
        return -1
    return int(np.flatnonzero(ok)[np.argmin(x[ok])])


def lead_labels(truth: EpisodeTruth, kin: dict, lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lead (T, 3, 6, 4) and lead_prob (T, 3).

    For offset o in LEAD_T_OFFSETS the vehicle that is the lead at t+o; its (x, y, v, a) at t + LEAD_T_IDXS,
    x/y of its rear-face centre in the device frame at t (the frame of the plan), v/a its own speed and
    acceleration; held at the last frame where the vehicle exists. No lead: prob 0 and zeros.
    """
    T = truth.n_frames
    rear_w = _rear_points(truth)
    lead_now = np.array([_lead_index(truth, kin, rear_w, lanes, t) for t in range(T)])
    lead = np.zeros((T, len(LEAD_T_OFFSETS), LEAD_TRAJ_LEN, LEAD_WIDTH), dtype=np.float32)
    prob = np.zeros((T, len(LEAD_T_OFFSETS)), dtype=np.float32)
    step = np.rint(LEAD_T_IDXS / truth.dt_s).astype(np.int64)
    present = truth.others_present
    last_present = np.where(present.any(axis=0), T - 1 - np.argmax(present[::-1], axis=0), -1)  # (M,)
    for t in range(T):
        for k, offset_s in enumerate(LEAD_T_OFFSETS):
            who = lead_now[min(t + int(round(offset_s / truth.dt_s)), T - 1)]
            if who < 0:
                continue
            frames = np.minimum(t + step, last_present[who])  # (6,) held once the vehicle leaves the world
            local = _to_device(rear_w[frames, who], kin["pos"][t], kin["rot"][t])  # (6, 3)
            lead[t, k, :, LeadField.X] = local[:, 0]
            lead[t, k, :, LeadField.Y] = local[:, 1]
            lead[t, k, :, LeadField.V] = truth.others_speed_mps[frames, who]
            lead[t, k, :, LeadField.A] = truth.others_accel_mps2[frames, who]
            prob[t, k] = 1.0
    return lead, prob


# --- meta, desire -----------------------------------------------------------------------------------------
def _any_within(events: np.ndarray, horizon_f: int) -> np.ndarray:
    """(T,) True where an event happens in frames (t, t + horizon_f]."""
    c = np.concatenate([[0], np.cumsum(events.astype(np.int64))])
    T = len(events)
    t = np.arange(T)
    return (c[np.minimum(t + horizon_f + 1, T)] - c[t + 1]) > 0


def meta_labels(truth: EpisodeTruth) -> np.ndarray:
    """(T, 55) targets of the meta head (0/1), layout of contract Meta."""
    T = truth.n_frames
    meta = np.zeros((T, META_WIDTH), dtype=np.float32)
    meta[:, Meta.ENGAGED] = truth.engaged
    decel = -truth.ego_accel_mps2
    events = {
        "GAS_DISENGAGE": truth.gas_disengage, "BRAKE_DISENGAGE": truth.brake_disengage,
        "STEER_OVERRIDE": truth.steer_override, "HARD_BRAKE_3": decel > HARD_BRAKE_MPS2[0],
        "HARD_BRAKE_4": decel > HARD_BRAKE_MPS2[1], "HARD_BRAKE_5": decel > HARD_BRAKE_MPS2[2],
    }
    for name, ev in events.items():
        for k, horizon_s in enumerate(Meta.DISENGAGE_T_IDXS):
            meta[:, getattr(Meta, name)[k]] = _any_within(ev, int(round(horizon_s / truth.dt_s)))
    states = {"GAS_PRESS": truth.gas_pressed, "BRAKE_PRESS": truth.brake_pressed,
              "LEFT_BLINKER": truth.left_blinker, "RIGHT_BLINKER": truth.right_blinker}
    for name, st in states.items():
        for k, when_s in enumerate(Meta.STATE_T_IDXS):
            frames = np.minimum(np.arange(T) + int(round(when_s / truth.dt_s)), T - 1)
            meta[:, getattr(Meta, name)[k]] = st[frames]
    return meta


def desire_labels(desire: np.ndarray) -> np.ndarray:
    """(T, 8) one-hot of the active desire."""
    out = np.zeros((len(desire), DESIRE_LEN), dtype=np.float32)
    out[np.arange(len(desire)), np.asarray(desire, dtype=np.int64)] = 1.0
    return out


def valid_mask(n_frames: int, dt_s: float) -> np.ndarray:
    """(T,) True where a full plan horizon (10 s) of future exists."""
    horizon_f = int(round(PLAN_HORIZON_S / dt_s))
    return np.arange(n_frames) + horizon_f <= n_frames - 1


def compute_labels(truth: EpisodeTruth, n_recorded: int | None = None) -> dict[str, np.ndarray]:
    """Every label array of a shard (the schema's LABEL_KEYS), from an episode's ground truth; with
    ``n_recorded``, those of its first ``n_recorded`` frames, labelled from the whole truth (the frames after them
    were simulated, not recorded, so that the labels looking ahead hold on every recorded frame)."""
    if n_recorded is not None:
        if not 0 < n_recorded <= truth.n_frames:
            raise ValueError(f"n_recorded {n_recorded}; expected 1 .. {truth.n_frames} (the truth's frames)")
        return {k: v[:n_recorded] for k, v in compute_labels(truth).items()}
    truth.validate()
    kin = _ego_kinematics(truth)
    lanes = line_labels(truth.lines_ned, kin)
    lead, lead_prob = lead_labels(truth, kin, lanes)
    T = truth.n_frames
    convention = TrafficConvention(truth.traffic_convention)
    out = {
        "plan": plan_labels(truth, kin),
        "lane_lines": lanes,
        "lane_lines_prob": truth.lines_exist.astype(np.float32),
        "road_edges": line_labels(truth.edges_ned, kin),
        "lead": lead,
        "lead_prob": lead_prob,
        "pose": np.concatenate([kin["vel_local"], kin["omega_local"]], axis=1).astype(np.float32),
        "road_transform": road_transform_labels(lanes),
        "wide_from_device_euler": np.tile(np.asarray(truth.wide_from_device_rpy, np.float32), (T, 1)),
        "desire": desire_labels(truth.desire),
        "meta": meta_labels(truth),
        "traffic_convention": np.tile(encode_traffic_convention(convention), (T, 1)),
        "ego_speed": truth.ego_speed_mps.astype(np.float32),
        "ego_accel": truth.ego_accel_mps2.astype(np.float32),
        "valid": valid_mask(T, truth.dt_s),
    }
    assert set(out) == set(LABEL_KEYS), sorted(set(out) ^ set(LABEL_KEYS))
    return out
