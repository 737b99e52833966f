"""The model driver feeds an export exactly what modeld would, frame by frame, with either runtime."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sunnypilot_training.contract.constants import Desire
from sunnypilot_training.driving.drivers import Inputs, ModelDriver
from sunnypilot_training.driving.harness import drive_run
from sunnypilot_training.driving.suites import road_tests
from sunnypilot_training.evaluation.model_runner import ExportedModels, ModeldState


class RecordingModelDriver(ModelDriver):
    """Keeps what the harness gave the driver and what the driver fed the models."""

    def start(self, world) -> None:
        super().start(world)
        self.keep_inputs = True
        self.given: list[tuple[Inputs, float]] = []
        self.hidden: list[np.ndarray] = []

    def plan(self, world, inputs: Inputs):
        self.given.append((inputs, world.car.v))
        plan, desire_state, vision = super().plan(world, inputs)
        self.hidden.append(vision["hidden_state"][0])
        return plan, desire_state, vision


def _modeld_reference(given: list[tuple[Inputs, float]], hidden: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """modeld's queues written out (the reference): a frame queue per camera, 100-entry queues of the hidden state
    and of the desire pulse at 20 Hz (every 4th entry / 4-frame maxima make the 25-entry inputs)."""
    frames = {"img": [np.zeros((6, 128, 256), np.uint8)] * 4, "big_img": [np.zeros((6, 128, 256), np.uint8)] * 4}
    features, pulses = np.zeros((100, 512), np.float32), np.zeros((100, 8), np.float32)
    prev = np.zeros(8, np.float32)
    out = []
    for (inputs, _v_ego), h in zip(given, hidden):  # op-0.10.1 feeds no speed
        frames["img"].append(inputs.road_6ch)
        frames["big_img"].append(inputs.wide_6ch)
        vec = np.zeros(8, np.float32)
        vec[inputs.desire] = 1.0
        vec[0] = 0.0
        new = np.where(vec - prev > 0.99, vec, 0.0).astype(np.float32)
        prev = vec
        features = np.concatenate([features[1:], h[None]])
        pulses = np.concatenate([pulses[1:], new[None]])
        out.append({"img": np.concatenate([frames["img"][-5], frames["img"][-1]]),
                    "big_img": np.concatenate([frames["big_img"][-5], frames["big_img"][-1]]),
                    "features_buffer": features[np.arange(-1, -100, -4)[::-1]],
                    "desire_pulse": pulses.reshape(25, 4, 8).max(axis=1),
                    "traffic_convention": np.array([1.0, 0.0], np.float32)})
    return out


def test_the_model_driver_feeds_exactly_what_modeld_would(export_dir) -> None:
    test = replace(road_tests("lane_change", 1, 4.0)[0], lane_change_at_s=1.0)  # a lane change signalled at 1 s
    driver = RecordingModelDriver(str(export_dir))
    result, _ = drive_run(test, driver, seed=0)
    assert len(driver.fed) == len(driver.given) > 40
    assert any(inputs.desire == Desire.LANE_CHANGE_LEFT for inputs, _ in driver.given)  # the desire helper spoke
    reference = _modeld_reference(driver.given, driver.hidden)
    for t, (fed, ref) in enumerate(zip(driver.fed, reference)):
        assert set(fed) == set(ref), t
        for key in ref:
            np.testing.assert_array_equal(fed[key], ref[key], err_msg=f"frame {t}: {key}")
    assert sum(fed["desire_pulse"][:, Desire.LANE_CHANGE_LEFT].max() for fed in driver.fed) > 0  # one pulse, held


def test_the_tinygrad_pickles_answer_like_the_onnx_files(export_dir) -> None:
    driver = ModelDriver(str(export_dir))
    driver.keep_inputs = True
    drive_run(road_tests("lane_keep", 1, 1.0)[0], driver, seed=0)
    tinygrad = ExportedModels.load(export_dir, "tinygrad")
    for model, spec in ((driver.models.vision, tinygrad.vision), (driver.models.policy, tinygrad.policy)):
        names = [i.name for i in driver.models.profile.model(model.name).inputs]
        for fed in driver.fed[::5]:
            feeds = {k: fed[k] for k in names}
            np.testing.assert_allclose(spec(feeds), model(feeds), rtol=1e-4, atol=1e-4)


def test_a_model_with_its_own_desired_curvature_steers_by_it(export_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    """op-0.10.0's policy outputs desired_curvature and modeld of those releases steers by it, not by the plan."""
    real_step = ModeldState.step

    def with_curvature(self, *args, **kwargs):
        step = real_step(self, *args, **kwargs)
        step.policy["desired_curvature"] = np.array([[0.001]], np.float32)
        return step

    monkeypatch.setattr(ModeldState, "step", with_curvature)
    driver = ModelDriver(str(export_dir))
    drive_run(road_tests("lane_keep", 1, 1.5)[0], driver, seed=0)
    assert driver.own_curvature == pytest.approx(0.001)
    assert driver.controls.previous.curvature_inv_m == pytest.approx(0.001)  # reached within the jerk limit
