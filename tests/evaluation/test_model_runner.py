"""ModeldState feeds op-0.10.0's policy its own desired_curvature back, as that release's modeld does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sunnypilot_training.contract.constants import HISTORY_BUFFER_LEN
from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.evaluation.model_runner import ExportedModels, ModeldState


class CountingPolicy:
    """A policy whose desired_curvature is 0.001 times the number of the call (1, 2, ...), keeping its inputs."""

    def __init__(self, spec):
        self.spec, self.fed = spec, []

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        self.fed.append({k: np.array(v) for k, v in feeds.items()})
        out = np.zeros(self.spec.output_shape, np.float32)
        out[0, self.spec.output_slices()["desired_curvature"].start] = 0.001 * len(self.fed)
        return out


def test_the_fed_back_history_is_the_policys_own_desired_curvature() -> None:
    profile = get_profile("op-0.10.0")
    policy = CountingPolicy(profile.policy)
    models = ExportedModels(Path("."), profile, lambda feeds: np.zeros(profile.vision.output_shape, np.float32),
                            policy)
    state = ModeldState(models, np.array([1.0, 0.0], np.float32))
    frame = np.zeros((6, 128, 256), np.uint8)
    skipped = {150, 151}  # frames the policy does not run on hold the last output
    for t in range(200):
        state.step(frame, frame, 0, 20.0, run_policy=t not in skipped)
    outputs = np.zeros(200)  # the desired_curvature of each frame, as fed back
    calls = 0
    for t in range(200):
        calls += t not in skipped
        outputs[t] = 0.001 * calls
    np.testing.assert_array_equal(policy.fed[0]["prev_desired_curv"], 0)  # zeros before the first output
    for call, t in enumerate(t for t in range(200) if t not in skipped):
        hist = policy.fed[call]["prev_desired_curv"][:, 0]  # (25,)
        idx = t - 97 + 4 * np.arange(HISTORY_BUFFER_LEN)  # newest: frame t-1's output
        np.testing.assert_allclose(hist[idx >= 0], outputs[idx[idx >= 0]], rtol=1e-6, err_msg=f"frame {t}")
        np.testing.assert_array_equal(hist[idx < 0], 0)
