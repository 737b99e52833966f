"""How modeld builds the policy's history inputs at 20 Hz - reproduced for offline training samples.

* ``desire_pulse`` (25, 8): each frame the desire one-hot (index 0 - "none" - zeroed) is kept only where it
  rises (``d - prev > 0.99``), pushed into a 100-frame queue, and max-pooled over 4-frame windows; entry k
  covers frames ``t - 99 + 4k .. t - 96 + 4k`` (the last entry: frames t-3 .. t).
* ``features_buffer`` (25, 512): the vision ``hidden_state`` of frames ``t - 96, t - 92, ..., t``.
Queues start zeroed, so history from before the first frame is zero.
"""

from __future__ import annotations

import numpy as np

from .constants import DESIRE_LEN, HISTORY_BUFFER_LEN, HISTORY_SPAN_FRAMES, TEMPORAL_SKIP

FULL_HISTORY_FRAMES = HISTORY_BUFFER_LEN * TEMPORAL_SKIP  # 100 frames of desire history
RISING_EDGE_THRESHOLD = 0.99


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
