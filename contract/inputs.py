"""How modeld builds its inputs at 20 Hz - one implementation for training samples, evaluation and closed-loop runs.

* ``img`` / ``big_img`` (12, 128, 256): the packed frames t-4 and t (:func:`frame_pairs`); before the first frame the
  older one is zeros, as in modeld's zero-initialised frame queue.
* ``desire_pulse`` (25, 8): each frame the desire one-hot (index 0 - "none" - zeroed) is kept only where it
  rises (``d - prev > 0.99``), pushed into a 100-frame queue, and max-pooled over 4-frame windows; entry k
  covers frames ``t - 99 + 4k .. t - 96 + 4k`` (the last entry: frames t-3 .. t).
* ``features_buffer`` (25, 512): the vision ``hidden_state`` of frames ``t - 96, t - 92, ..., t``.
* ``traffic_convention`` (2,), and for op-0.10.0 ``lateral_control_params`` = [v_ego, lateral delay] and
  ``prev_desired_curv`` (25, 1): the desired curvature of frames ``t - 97, t - 93, ..., t - 1`` - at run time the
  model's own ``desired_curvature`` outputs, as op-0.10.0's modeld feeds them back (:func:`prev_desired_curv_at`);
  in training the lag-adjusted curvature of the labels at those frames; zeros where none is given.
Queues start zeroed, so history from before the first frame is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .constants import (
    DESIRE_LEN,
    FRAME_PAIR_OFFSET,
    HISTORY_BUFFER_LEN,
    HISTORY_SPAN_FRAMES,
    PREV_DESIRED_CURV_LEN,
    TEMPORAL_SKIP,
)
from .yuv import stack_frame_pair

FULL_HISTORY_FRAMES = HISTORY_BUFFER_LEN * TEMPORAL_SKIP  # 100 frames of desire history
RISING_EDGE_THRESHOLD = 0.99
LATERAL_DELAY_S = 0.2  # op-0.10.0 lateral_control_params[1]: the car's steer actuator delay fed to the model


def frame_pairs(frames_at: Callable[[np.ndarray], np.ndarray], ts: Sequence[int] | np.ndarray) -> np.ndarray:
    """(n, 12, h, w) uint8 vision inputs at frames ``ts``: channels 0:6 = frame t-4, 6:12 = frame t.

    ``frames_at(indices)`` returns the packed frames (m, 6, h, w) at those (non-negative, sorted, distinct) frame
    indices; each needed frame is asked for once. A frame before the first one (t-4 < 0) is zeros.
    """
    ts = np.asarray(ts, dtype=np.int64).reshape(-1)  # (n,)
    prev = ts - FRAME_PAIR_OFFSET
    wanted = np.unique(np.concatenate([ts, prev[prev >= 0]]))  # sorted, distinct
    frames = np.asarray(frames_at(wanted))  # (m, 6, h, w)
    row = {int(t): k for k, t in enumerate(wanted)}
    cur = frames[[row[int(t)] for t in ts]]  # (n, 6, h, w)
    older = np.zeros_like(cur)
    for k, p in enumerate(prev):
        if p >= 0:
            older[k] = frames[row[int(p)]]
    return stack_frame_pair(older, cur)


def policy_inputs_at(input_names: Sequence[str], features: np.ndarray, pulses: np.ndarray, t: int,
                     traffic_convention: np.ndarray, v_ego_mps: float,
                     curvatures: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The policy's inputs at frame t (unbatched, float32) for a profile's ``input_names``, as modeld builds them.

    ``features`` (T, 512) vision ``hidden_state`` per frame (at least up to t), ``pulses`` (T, 8) from
    :func:`desire_rising_edges`, ``traffic_convention`` (2,), ``v_ego_mps`` the car's own speed (op-0.10.0's
    ``lateral_control_params`` carries it), ``curvatures`` (at least t,) the desired curvature of each earlier frame
    (op-0.10.0's ``prev_desired_curv``; None: zeros). No label of frame t or later enters an input.
    """
    pulse = desire_pulse_at(pulses, t)
    out = {"features_buffer": features_buffer_at(features, t),
           "traffic_convention": np.asarray(traffic_convention, dtype=np.float32)}
    if "desire_pulse" in input_names:
        out["desire_pulse"] = pulse
    if "desire" in input_names:  # op-0.10.0 names the same pulse input `desire`
        out["desire"] = pulse
    if "lateral_control_params" in input_names:
        out["lateral_control_params"] = np.array([v_ego_mps, LATERAL_DELAY_S], np.float32)
    if "prev_desired_curv" in input_names:
        out["prev_desired_curv"] = prev_desired_curv_at(curvatures, t)
    return out


def prev_desired_curv_at(curvatures: np.ndarray | None, t: int) -> np.ndarray:
    """(25, 1) ``prev_desired_curv`` at frame t: ``curvatures[t - 97 + 4k]`` - modeld pushes each frame's
    ``desired_curvature`` output after the policy ran, so at frame t the newest entry is frame t-1's; zeros before
    the first frame or without ``curvatures``."""
    out = np.zeros((HISTORY_BUFFER_LEN, PREV_DESIRED_CURV_LEN), np.float32)
    if curvatures is None:
        return out
    idx = history_frame_indices(t) - 1
    ok = idx >= 0
    out[ok, 0] = np.asarray(curvatures, dtype=np.float32)[idx[ok]]
    return out


def desire_rising_edges(desire_onehot: np.ndarray) -> np.ndarray:
    """(T, 8) per-frame pulses: the one-hot with index 0 zeroed, kept only on its rising edge."""
    d = np.asarray(desire_onehot, dtype=np.float32).copy()  # (T, 8)
    if d.ndim != 2 or d.shape[1] != DESIRE_LEN:
        raise ValueError(f"desire_onehot has shape {d.shape}, expected (T, {DESIRE_LEN})")
    d[:, 0] = 0.0
    prev = np.concatenate([np.zeros((1, DESIRE_LEN), np.float32), d[:-1]], axis=0)
    return np.where(d - prev > RISING_EDGE_THRESHOLD, d, 0.0).astype(np.float32)


def desire_pulse_at(pulses: np.ndarray, t: int) -> np.ndarray:
    """(25, 8) ``desire_pulse`` input at frame t from the per-frame pulses of ``desire_rising_edges``."""
    window = np.zeros((FULL_HISTORY_FRAMES, DESIRE_LEN), np.float32)
    lo = t - FULL_HISTORY_FRAMES + 1
    src = pulses[max(lo, 0): t + 1]
    window[FULL_HISTORY_FRAMES - len(src):] = src
    return window.reshape(HISTORY_BUFFER_LEN, TEMPORAL_SKIP, DESIRE_LEN).max(axis=1)


def history_frame_indices(t: int) -> np.ndarray:
    """(25,) frames t-96, t-92, ..., t whose features fill ``features_buffer`` (negative: before the start)."""
    return t - HISTORY_SPAN_FRAMES + TEMPORAL_SKIP * np.arange(HISTORY_BUFFER_LEN)


def features_buffer_at(features: np.ndarray, t: int) -> np.ndarray:
    """(25, F) ``features_buffer`` at frame t from per-frame features (T, F); zeros before the first frame."""
    idx = history_frame_indices(t)
    out = np.zeros((HISTORY_BUFFER_LEN, features.shape[1]), dtype=np.float32)
    ok = idx >= 0
    out[ok] = features[idx[ok]]
    return out
