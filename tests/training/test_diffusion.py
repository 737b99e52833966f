"""Diffusion machinery: config validation, schedules, DDPM targets, the DDIM sampler, the normaliser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sunnypilot_training.errors import ConfigError
from sunnypilot_training.training.diffusion import (
    Diffusion,
    DiffusionConfig,
    cosine_alphas_cumprod,
    ddim_timesteps,
    linear_alphas_cumprod,
)
from sunnypilot_training.training.models.blocks import DiffusionHead
from sunnypilot_training.training.normalizer import Normalizer

PREDICTIONS = ("epsilon", "v")
SCHEDULES = ("cosine", "linear")


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Small tensors gain little from intra-op threads and lose a lot when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- config ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [
    ("train_timesteps", 1), ("train_timesteps", 10.5), ("steps", 0), ("steps", 101), ("schedule", "sigmoid"),
    ("prediction", "x0"), ("export_samples", 1), ("seed", -1), ("clip_x0", 0.0), ("std_floor", 0.0),
])
def test_config_errors_name_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        DiffusionConfig(**{field: value})
    assert f"diffusion.{field}={value!r}" in str(err.value)


def test_config_from_dict_rejects_unknown_keys_and_round_trips() -> None:
    with pytest.raises(ConfigError, match="unknown keys \\['stepz'\\]"):
        DiffusionConfig.from_dict({"stepz": 3})
    cfg = DiffusionConfig(steps=4, prediction="v", clip_x0=None)
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg
    assert DiffusionConfig.from_dict(None) == DiffusionConfig()


# --- schedules -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timesteps", [2, 10, 100, 1000])
def test_cosine_alphas_cumprod_monotone_in_unit_interval(timesteps: int) -> None:
    abar = cosine_alphas_cumprod(timesteps)
    assert abar.shape == (timesteps,)
    assert np.all(abar > 0) and np.all(abar <= 1)
    assert np.all(np.diff(abar) < 0)
    assert abar[-1] < 1e-3  # nearly pure noise at t = T-1
    if timesteps >= 100:
        assert abar[0] > 0.99  # nearly clean at t = 0


def test_linear_alphas_cumprod_monotone_in_unit_interval() -> None:
    abar = linear_alphas_cumprod(100)
    assert np.all(abar > 0) and np.all(abar <= 1) and np.all(np.diff(abar) < 0)


@pytest.mark.parametrize(("timesteps", "steps"), [(100, 10), (100, 1), (100, 100), (7, 3)])
def test_ddim_timesteps_evenly_spaced_descending(timesteps: int, steps: int) -> None:
    ts = ddim_timesteps(timesteps, steps)
    assert len(ts) == steps == len(set(ts))
    assert ts[0] == timesteps - 1
    assert all(a > b for a, b in zip(ts, ts[1:]))
    if steps > 1:
        assert ts[-1] == 0
        gaps = np.diff(ts)
        assert gaps.max() - gaps.min() <= 1


# --- forward process and targets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_q_sample_then_exact_predictor_inverts(prediction: str, schedule: str) -> None:
    diff = Diffusion(DiffusionConfig(prediction=prediction, schedule=schedule))
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 5, 3, generator=gen, dtype=torch.float64)
    noise = torch.randn(64, 5, 3, generator=gen, dtype=torch.float64)
    t = torch.arange(64) % diff.num_timesteps
    x_t = diff.q_sample(x0, t, noise)
    x0_hat, eps_hat = diff.predict_x0_eps(diff.training_target(x0, noise, t), x_t, t)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, noise)


def test_int_and_tensor_timesteps_agree() -> None:
    diff = Diffusion(DiffusionConfig(prediction="v"))
    x0, noise = torch.randn(4, 6), torch.randn(4, 6)
    t = 37
    torch.testing.assert_close(diff.q_sample(x0, t, noise), diff.q_sample(x0, torch.full((4,), t), noise))
    torch.testing.assert_close(diff.training_target(x0, noise, t),
                               diff.training_target(x0, noise, torch.full((4,), t)))


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("steps", [2, 5])
def test_ddim_with_oracle_denoiser_recovers_x0(prediction: str, schedule: str, steps: int) -> None:
    diff = Diffusion(DiffusionConfig(prediction=prediction, schedule=schedule, steps=steps))
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 20, generator=gen) * 2.0  # (B, D) the one clean sample the oracle knows

    def oracle(x_t: torch.Tensor, t: int) -> torch.Tensor:
        abar = float(diff.alphas_cumprod[t])
        eps = (x_t - abar ** 0.5 * x0) / (1 - abar) ** 0.5
        return eps if prediction == "epsilon" else abar ** 0.5 * eps - (1 - abar) ** 0.5 * x0

    out = diff.ddim_sample(oracle, torch.randn(3, 20, generator=gen))
    torch.testing.assert_close(out, x0, atol=2e-3, rtol=1e-3)


def test_sampler_clips_predicted_x0() -> None:
    diff = Diffusion(DiffusionConfig(steps=3, clip_x0=1.5))
    out = diff.ddim_sample(lambda x, t: torch.full_like(x, -50.0), torch.randn(2, 8))
    assert out.abs().max() <= 1.5 + 1e-6


def test_loss_ignores_zero_weight_elements() -> None:
    diff = Diffusion(DiffusionConfig())
    target = torch.zeros(2, 4)
    out = torch.tensor([[1.0, 1.0, 1.0, 1.0], [100.0, 100.0, 100.0, 100.0]])
    weight = torch.tensor([[1.0], [0.0]])
    assert float(diff.loss(out, target, weight)) == pytest.approx(1.0)
    assert float(diff.loss(out, target)) == pytest.approx((4 + 4 * 1e4) / 8)


# --- normaliser --------------------------------------------------------------------------------------------------
def test_normalizer_fit_round_trip_mask_and_state_dict() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal([1.0, -5.0, 0.0], [2.0, 0.5, 0.0], size=(4000, 3))
    norm = Normalizer((3,))
    assert not bool(norm.fitted)
    norm.fit(data)
    assert bool(norm.fitted)
    np.testing.assert_allclose(norm.mean.numpy(), [1.0, -5.0, 0.0], atol=0.1)
    np.testing.assert_allclose(norm.std.numpy(), [2.0, 0.5, norm.min_std], rtol=0.05)
    x = torch.as_tensor(data[:5], dtype=torch.float32)
    torch.testing.assert_close(norm.denormalize(norm.normalize(x)), x)
    fresh = Normalizer((3,))
    fresh.load_state_dict(norm.state_dict())
    torch.testing.assert_close(fresh.mean, norm.mean)
    masked = Normalizer((2,))
    masked.fit(np.array([[1.0, 1.0], [3.0, 3.0], [1000.0, 1000.0]]), np.array([[1.0], [1.0], [0.0]]))
    np.testing.assert_allclose(masked.mean.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(masked.std.numpy(), [1.0, 1.0])


# --- a head that learns ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prediction", "clip_x0"), [("v", 10.0), ("epsilon", 2.0)])
def test_diffusion_head_learns_a_conditional_gaussian(prediction: str, clip_x0: float) -> None:
    """cond = +-1 selects the mean (+-3) of a 4-d target with std 0.5; the export stats must follow."""
    torch.manual_seed(0)
    config = DiffusionConfig(prediction=prediction, steps=10, export_samples=64, clip_x0=clip_x0)
    head = DiffusionHead((4,), cond_dim=1, width=64, depth=2, config=config)
    head.normalizer.set(np.zeros(4), np.full(4, 3.0))
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(400):
        cond = torch.randint(0, 2, (128, 1)).float() * 2 - 1
        target = 3.0 * cond + 0.5 * torch.randn(128, 4)
        loss = head.loss(cond, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mu, log_std = head.stats(head.export_samples(torch.tensor([[-1.0], [1.0]])))
    np.testing.assert_allclose(mu.numpy(), np.array([[-3.0] * 4, [3.0] * 4]), atol=0.4)
    std = np.exp(log_std.numpy()) - head.config.std_floor * 3.0
    assert np.all((std > 0.2) & (std < 1.5)), std  # true 0.5; 400 steps of training is rough
