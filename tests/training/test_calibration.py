"""Tests of training/calibration.py: std calibration factors and their effect on the exported stds."""

from __future__ import annotations

import numpy as np
import torch

from sunnypilot_training.contract.constants import IDX_N, PLAN_WIDTH
from sunnypilot_training.contract.outputs import parse_outputs
from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.training.calibration import MIN_SAMPLES, ONE_SIGMA, calibrate_policy, scale_factors
from sunnypilot_training.training.models import PolicyModel


def test_scale_factors_make_one_std_hold_68_percent_per_element() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.0, (4000, 3)) * [0.5, 2.0, 1.0]
    mask = np.ones((4000, 3), bool)
    mask[MIN_SAMPLES - 1:, 2] = False  # too few samples of the last element: it takes the overall factor
    factors = scale_factors(z, mask)
    np.testing.assert_allclose(factors[:2], [0.5, 2.0], rtol=0.05)  # Gaussian errors: their std
    np.testing.assert_allclose(factors[2], np.quantile(np.abs(z[mask]), ONE_SIGMA), rtol=1e-9)
    assert scale_factors(np.full((50, 1), 1e9))[0] == 50.0  # clipped
    assert scale_factors(z, np.zeros((4000, 3), bool)).tolist() == [1.0, 1.0, 1.0]  # nothing seen: unchanged


def test_heavy_tailed_errors_are_scaled_to_hold_68_percent_not_to_their_rms() -> None:
    z = np.random.default_rng(1).laplace(0.0, 1.0, (20000, 2))  # RMS sqrt(2); |z| <= RMS for 76 % of them
    factors = scale_factors(z)
    assert np.all(np.abs(np.mean(np.abs(z) <= factors, axis=0) - ONE_SIGMA) < 0.005)
    assert np.all(factors < 0.85 * np.sqrt((z**2).mean(axis=0)))


class _Plans(torch.utils.data.Dataset):
    """Policy samples whose plan is the model's own mean plus Gaussian noise of a known spread."""

    def __init__(self, model: PolicyModel, noise: float, n: int = 400):
        gen = torch.Generator().manual_seed(0)
        spec = get_profile("op-0.10.1").policy
        self.inputs = {i.name: torch.randn((n,) + i.shape[1:], generator=gen) * 0.1 for i in spec.inputs}
        with torch.no_grad():
            flat = model(*(self.inputs[n] for n in model.input_names))
        parsed = parse_outputs(spec, flat.numpy())
        self.sigma = parsed["plan_stds"]
        noise_std = torch.from_numpy(self.sigma) * noise
        self.plan = torch.from_numpy(parsed["plan"]) + torch.randn(parsed["plan"].shape, generator=gen) * noise_std
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return {**{name: x[k] for name, x in self.inputs.items()}, "plan": self.plan[k],
                "desire_state": torch.zeros(8)}


def test_calibrating_the_policy_makes_one_std_hold_about_68_percent_of_the_errors() -> None:
    torch.manual_seed(0)
    model = PolicyModel("op-0.10.1", "tiny", head="regression").eval()
    model.fit_normalizers(np.random.default_rng(0).normal(0, 1, (64, IDX_N, PLAN_WIDTH)))
    data = _Plans(model, noise=3.0)  # errors three times the model's std
    spec = get_profile("op-0.10.1").policy
    inputs = tuple(data.inputs[n] for n in model.input_names)

    def coverage() -> float:
        with torch.no_grad():
            parsed = parse_outputs(spec, model(*inputs).numpy())
        return float((np.abs(data.plan.numpy() - parsed["plan"]) <= parsed["plan_stds"]).mean())

    assert coverage() < 0.35
    report = calibrate_policy(model, data, torch.device("cpu"), limit=400)
    assert 2.7 < report["plan"]["median"] < 3.3
    assert 0.64 < coverage() < 0.72
