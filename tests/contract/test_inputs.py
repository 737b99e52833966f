"""Policy history inputs equal what modeld's streaming queues produce, frame by frame."""

from __future__ import annotations

import numpy as np

from sunnypilot_training.contract import inputs
from sunnypilot_training.contract.constants import Desire


def _streaming_desire_pulse(desires: list[int]) -> list[np.ndarray]:
    """modeld's per-frame procedure, written out as a queue (the reference)."""
    full = np.zeros((100, 8), np.float32)
    prev = np.zeros(8, np.float32)
    result = []
    for desire in desires:
        vec = np.zeros(8, np.float32)
        vec[desire] = 1.0
        vec[0] = 0.0
        new = np.where(vec - prev > 0.99, vec, 0.0)
        prev = vec
        full = np.concatenate([full[1:], new[None]], axis=0)
        result.append(full.reshape(25, 4, 8).max(axis=1))
    return result


def _onehot(desires: list[int]) -> np.ndarray:
    out = np.zeros((len(desires), 8), np.float32)
    out[np.arange(len(desires)), desires] = 1
    return out


def test_desire_pulse_matches_streaming_reference() -> None:
    rng = np.random.default_rng(0)
    desires = [0] * 30 + [int(Desire.LANE_CHANGE_LEFT)] * 50 + [0] * 20 + [int(Desire.TURN_RIGHT)] * 3
    desires += [int(Desire.TURN_RIGHT)] * 10 + list(rng.integers(0, 8, size=120))
    pulses = inputs.desire_rising_edges(_onehot(desires))
    reference = _streaming_desire_pulse(desires)
    for t in range(len(desires)):
        np.testing.assert_array_equal(inputs.desire_pulse_at(pulses, t), reference[t], err_msg=f"t={t}")


def test_a_held_desire_pulses_once() -> None:
    desires = [0] * 10 + [int(Desire.LANE_CHANGE_RIGHT)] * 60
    pulses = inputs.desire_rising_edges(_onehot(desires))
    assert pulses[:, Desire.LANE_CHANGE_RIGHT].sum() == 1 and pulses[10, Desire.LANE_CHANGE_RIGHT] == 1
    window = inputs.desire_pulse_at(pulses, 69)  # the pulse at frame 10 sits in entry (10 - (69 - 99)) // 4
    assert window[:, Desire.LANE_CHANGE_RIGHT].sum() == 1
    assert window[(10 - (69 - 99)) // 4, Desire.LANE_CHANGE_RIGHT] == 1
    assert inputs.desire_pulse_at(pulses, 10 + 100)[:, Desire.LANE_CHANGE_RIGHT].sum() == 0  # aged out


def test_none_desire_never_pulses() -> None:
    pulses = inputs.desire_rising_edges(_onehot([0, 0, 1, 0, 0]))
    assert pulses[:, 0].sum() == 0 and pulses[2, 1] == 1


def test_features_buffer_history_and_zero_start() -> None:
    T = 300
    feats = np.arange(T, dtype=np.float32)[:, None] * np.ones((1, 512), np.float32) + 1
    buf = inputs.features_buffer_at(feats, 200)
    np.testing.assert_array_equal(buf[:, 0], np.arange(104, 201, 4) + 1)
    early = inputs.features_buffer_at(feats, 10)  # frames -86 .. 10: only 8, 2? -> entries with idx >= 0
    idx = inputs.history_frame_indices(10)
    np.testing.assert_array_equal(early[idx < 0], 0)
    np.testing.assert_array_equal(early[idx >= 0, 0], idx[idx >= 0] + 1)
    assert idx[-1] == 10 and idx[0] == 10 - 96
