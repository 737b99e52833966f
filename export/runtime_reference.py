"""The reference a runtime harness is compared with: our ONNX on onnxruntime, fed frame by frame in numpy.

Frames are warped with the contract's numpy NV12 warp (``contract.nv12.warp_nv12``) and the history is built with
the contract's input functions, so a harness that matches this reference loads, warps, queues and feeds exactly as
the training data and the op-0.10.1 runner do. :func:`make_frames` makes a deterministic drive of NV12 buffers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract.constants import DESIRE_LEN, FEATURE_LEN, FRAME_PAIR_OFFSET, HISTORY_BUFFER_LEN, TEMPORAL_SKIP
from ..contract.inputs import desire_rising_edges
from ..contract.nv12 import nv12_layout, warp_nv12
from ..contract.profiles import Profile
from ..contract.runtimes import COMBINED, STATEFUL, SUPERCOMBO
from ..evaluation.model_runner import onnx_session

TRAFFIC_RIGHT_HAND = np.array([1.0, 0.0], np.float32)
ACTION_T_S = np.array([0.25, 0.45], np.float32)  # [lateral, longitudinal] delay, a typical car


def _affine(scale: float, dx: float, dy: float) -> np.ndarray:
    # quarter-pixel offsets: no source coordinate lands on a rounding tie
    return np.array([[scale, 0.0, dx + 0.25], [0.0, scale, dy + 0.25], [0.0, 0.0, 1.0]], np.float32)


def make_frames(camera: tuple[int, int], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n frames of a drive: random NV12 buffers, warp matrices that move a little, a lane change request."""
    layout = nv12_layout(*camera)
    rng = np.random.default_rng(seed)
    road = rng.integers(0, 256, size=(n, layout.size), dtype=np.uint8)
    wide = rng.integers(0, 256, size=(n, layout.size), dtype=np.uint8)
    tfm = np.stack([_affine(2.0, 150.0 + 3 * i, 120.0 - 2 * i) for i in range(n)])
    big_tfm = np.stack([_affine(1.5, 300.0 - 4 * i, 200.0 + i) for i in range(n)])
    desire = np.zeros((n, DESIRE_LEN), np.float32)
    desire[n // 3:, 3] = 1.0  # lane change left from a third of the way: one rising edge
    return {"road": road, "wide": wide, "tfm": tfm, "big_tfm": big_tfm, "desire": desire,
            "traffic_convention": TRAFFIC_RIGHT_HAND, "action_t": ACTION_T_S,
            "camera": np.array(camera, np.int64)}


def _warped(frames: dict[str, np.ndarray], camera: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    layout = nv12_layout(*camera)
    road = np.stack([warp_nv12(b, m, layout) for b, m in zip(frames["road"], frames["tfm"])])
    wide = np.stack([warp_nv12(b, m, layout) for b, m in zip(frames["wide"], frames["big_tfm"])])
    return road, wide  # (n, 6, 128, 256) each


def _pair(frames6: np.ndarray, t: int) -> np.ndarray:
    older = frames6[t - FRAME_PAIR_OFFSET] if t >= FRAME_PAIR_OFFSET else np.zeros_like(frames6[t])
    return np.concatenate([older, frames6[t]])[None]  # (1, 12, 128, 256)


def _pulse_window(pulses: np.ndarray, t: int) -> np.ndarray:
    """(1, 25, 8): the last 100 pulses up to t, max-pooled over 4 (zeros before the drive)."""
    span = HISTORY_BUFFER_LEN * TEMPORAL_SKIP
    padded = np.concatenate([np.zeros((span, DESIRE_LEN), np.float32), pulses[: t + 1]])[-span:]
    return padded.reshape(HISTORY_BUFFER_LEN, TEMPORAL_SKIP, DESIRE_LEN).max(axis=1)[None]


def _past_features(features: np.ndarray, t: int, count: int) -> np.ndarray:
    """(1, count, 512) hidden states of frames t - 4*count, ..., t - 4 (zeros before the drive)."""
    out = np.zeros((1, count, FEATURE_LEN), np.float32)
    for k in range(count):
        frame = t - TEMPORAL_SKIP * (count - k)
        if frame >= 0:
            out[0, k] = features[frame]
    return out


def run_reference(profile: Profile, export_dir: Path, frames: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The flat output per frame (vision then policy for ``combined``; the graph's ``outputs`` otherwise)."""
    camera = tuple(int(v) for v in frames["camera"])
    road, wide = _warped(frames, camera)
    n = len(road)
    pulses = desire_rising_edges(frames["desire"])  # (n, 8)
    convention = frames["traffic_convention"][None]
    action_t = frames["action_t"][None]
    packaging = profile.runtime.packaging
    outputs, features = [], np.zeros((n, FEATURE_LEN), np.float32)
    if packaging == COMBINED:
        vision, policy = (onnx_session(export_dir / f"{m}.onnx") for m in ("driving_vision", "driving_policy"))
        hidden = profile.vision.output_slices()["hidden_state"]
        for t in range(n):
            v = vision.run(None, {"img": _pair(road, t), "big_img": _pair(wide, t)})[0]
            features[t] = v[0, hidden]
            window = np.concatenate([_past_features(features, t, HISTORY_BUFFER_LEN - 1), v[:, hidden][None]], 1)
            p = policy.run(None, {"desire_pulse": _pulse_window(pulses, t), "traffic_convention": convention,
                                  "features_buffer": window})[0]
            outputs.append(np.concatenate([v.reshape(-1), p.reshape(-1)]))
        return outputs
    session = onnx_session(export_dir / "driving_supercombo.onnx")
    hidden = profile.graph.output_slices()["hidden_state"]
    if packaging == SUPERCOMBO:
        for t in range(n):
            out = session.run(None, {"img": _pair(road, t), "big_img": _pair(wide, t),
                                     "features_buffer": _past_features(features, t, HISTORY_BUFFER_LEN - 1),
                                     "desire_pulse": _pulse_window(pulses, t), "traffic_convention": convention,
                                     "action_t": action_t})[0]
            features[t] = out[0, hidden]
            outputs.append(out.reshape(-1))
        return outputs
    assert packaging == STATEFUL, packaging
    state = {i.name: np.zeros(i.shape, np.dtype(i.dtype)) for i in profile.graph.inputs
             if i.name in dict(profile.state_pairs)}
    names = [o.name for o in session.get_outputs()]
    for t in range(n):
        feeds = {"new_img": np.stack([road[t], wide[t]]), "desire": pulses[t], "traffic_convention": convention,
                 "action_t": action_t, **state}
        result = dict(zip(names, session.run(None, feeds)))
        state = {i: result[o] for i, o in profile.state_pairs}
        outputs.append(result["outputs"].reshape(-1))
    return outputs
