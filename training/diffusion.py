"""Denoising diffusion for trajectory heads: noise schedules, DDPM training targets and a deterministic DDIM sampler.

Conventions (Ho et al. 2020; Song et al. 2021 for DDIM; Nichol & Dhariwal 2021 for the cosine schedule;
Salimans & Ho 2022 for v-prediction). Discrete timesteps ``t = 0 .. T-1`` (T = ``train_timesteps``) with
``abar[t] = prod_{s <= t} (1 - beta[s])``:

* forward process: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``
* the network predicts ``eps`` (``prediction="epsilon"``) or ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0``
* DDIM (eta = 0) visits ``steps`` evenly spaced timesteps from T-1 down to 0 and updates
  ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps_hat`` (``abar`` after the last step is 1, so the
  result is ``x0_hat``). The loop is plain Python over ints, so ``torch.onnx`` tracing unrolls it into a static
  graph whose coefficients are constants.

``x0_hat`` is clipped to ``+-clip_x0`` (in normalised units) before the update. The default is v-prediction: with
epsilon-prediction the first step divides by ``sqrt(abar_{T-1})`` (~5e-4 for the clipped cosine schedule at T = 100),
so the first x0 estimate is noise-dominated and only the clip keeps it bounded; epsilon works with few steps when
``clip_x0`` is about the data's range (the heads diffuse unit-RMS residuals, so about 2), v-prediction needs no
clip (10 is a safety net).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError

SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("epsilon", "v")
COSINE_OFFSET_S = 0.008  # Nichol & Dhariwal's small offset s, keeps beta_0 from being too small
MAX_BETA = 0.999  # Nichol & Dhariwal clip betas at 0.999 to avoid a singularity at t = T
LINEAR_BETA_RANGE_1000 = (1e-4, 0.02)  # Ho et al. for T = 1000; scaled by 1000 / T for other T


def _fail(field: str, value: object, fix: str) -> ConfigError:
    return ConfigError(f"diffusion.{field}={value!r}: {fix}")


@dataclass
class DiffusionConfig:
    """Settings of a diffusion head; validated on construction (``ConfigError`` names field, value and fix).

    train_timesteps: T, the number of DDPM noise levels used in training.
    steps: DDIM steps at sampling / export time (unrolled in the exported graph; 1 <= steps <= T).
    schedule: ``"cosine"`` (Nichol & Dhariwal) or ``"linear"`` (Ho et al., scaled to T).
    prediction: what the denoiser outputs: ``"v"`` (velocity; default, well conditioned at every noise level) or
        ``"epsilon"`` (the noise; use a tight ``clip_x0``, see the module docstring).
    export_samples: fixed noise draws denoised in the exported graph; mean and std over them become mu / log-std.
    seed: seed of those fixed noise draws (stored as buffers, so the exported graph has no random ops).
    clip_x0: clip predicted clean samples to +-clip_x0 (normalised units) in the sampler; None disables.
    std_floor: added to the sample std before the log, in normalised units (a fraction of the data's per-dimension
        std), so log-std stays finite when all samples agree: ``log_std = log(std + std_floor * data_std)``.
    """

    train_timesteps: int = 100
    steps: int = 10
    schedule: str = "cosine"
    prediction: str = "v"
    export_samples: int = 8
    seed: int = 0
    clip_x0: float | None = 10.0
    std_floor: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.train_timesteps, int) or self.train_timesteps < 2:
            raise _fail("train_timesteps", self.train_timesteps, "use an integer >= 2 (e.g. 100)")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= self.train_timesteps:
            raise _fail("steps", self.steps, f"use an integer in 1..train_timesteps ({self.train_timesteps})")
        if self.schedule not in SCHEDULES:
            raise _fail("schedule", self.schedule, f"use one of {list(SCHEDULES)}")
        if self.prediction not in PREDICTIONS:
            raise _fail("prediction", self.prediction, f"use one of {list(PREDICTIONS)}")
        if not isinstance(self.export_samples, int) or self.export_samples < 2:
            raise _fail("export_samples", self.export_samples, "use an integer >= 2 (a std needs two samples)")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise _fail("seed", self.seed, "use a non-negative integer")
        if self.clip_x0 is not None and not (isinstance(self.clip_x0, (int, float)) and self.clip_x0 > 0):
            raise _fail("clip_x0", self.clip_x0, "use a positive number of data stds, or null to disable")
        if not (isinstance(self.std_floor, (int, float)) and self.std_floor > 0):
            raise _fail("std_floor", self.std_floor, "use a positive fraction of the data std (e.g. 0.05)")

    @classmethod
    def from_dict(cls, values: dict | None) -> DiffusionConfig:
        """Build from a plain dict (e.g. a Hydra node); unknown keys raise ``ConfigError``."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"diffusion: unknown keys {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


# --- schedules ---------------------------------------------------------------------------------------------
def cosine_alphas_cumprod(timesteps: int, offset_s: float = COSINE_OFFSET_S) -> np.ndarray:
    """(T,) float64 abar for the cosine schedule, betas clipped at ``MAX_BETA``; abar[t] belongs to step t+1."""
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + offset_s) / (1 + offset_s) * math.pi / 2) ** 2
    betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, MAX_BETA)
    return np.cumprod(1.0 - betas)


def linear_alphas_cumprod(timesteps: int) -> np.ndarray:
    """(T,) float64 abar for linearly spaced betas (Ho et al.'s range scaled by 1000 / T)."""
    scale = 1000.0 / timesteps
    lo, hi = (b * scale for b in LINEAR_BETA_RANGE_1000)
    betas = np.clip(np.linspace(lo, hi, timesteps, dtype=np.float64), 0.0, MAX_BETA)
    return np.cumprod(1.0 - betas)


def ddim_timesteps(train_timesteps: int, steps: int) -> list[int]:
    """The ``steps`` evenly spaced timesteps DDIM visits, descending from T-1 to 0 (distinct ints)."""
    if steps == 1:
        return [train_timesteps - 1]
    return [int(t) for t in np.rint(np.linspace(train_timesteps - 1, 0, steps))]


class Diffusion:
    """The DDPM forward process and the DDIM sampler for one :class:`DiffusionConfig` (holds no parameters)."""

    def __init__(self, config: DiffusionConfig):
        self.config = config
        make = cosine_alphas_cumprod if config.schedule == "cosine" else linear_alphas_cumprod
        self.alphas_cumprod = make(config.train_timesteps)  # (T,) float64
        self.timesteps = ddim_timesteps(config.train_timesteps, config.steps)
        self._abar_tensors: dict[tuple, torch.Tensor] = {}

    @property
    def num_timesteps(self) -> int:
        return self.config.train_timesteps

    def _coefs(self, t: torch.Tensor | int, x: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """sqrt(abar_t), sqrt(1 - abar_t): python floats for an int t (constants in a traced graph), else tensors
        of shape (B, 1, ...) broadcasting against x (B, ...)."""
        if isinstance(t, int):
            abar = float(self.alphas_cumprod[t])
            return math.sqrt(abar), math.sqrt(1.0 - abar)
        key = (x.device, x.dtype)
        if key not in self._abar_tensors:  # one host -> device copy per device and dtype
            self._abar_tensors[key] = torch.as_tensor(self.alphas_cumprod, dtype=x.dtype, device=x.device)
        abar = self._abar_tensors[key][t]  # (B,)
        abar = abar.reshape(abar.shape + (1,) * (x.dim() - abar.dim()))
        return abar.sqrt(), (1.0 - abar).sqrt()

    def sample_timesteps(self, batch: int, device: torch.device | str = "cpu",
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) uniform training timesteps."""
        return torch.randint(0, self.num_timesteps, (batch,), device=device, generator=generator)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        a, s = self._coefs(t, x0)
        return a * x0 + s * noise

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """What the denoiser should output at x_t: the noise (epsilon) or v = sqrt(abar) eps - sqrt(1-abar) x0."""
        if self.config.prediction == "epsilon":
            return noise
        a, s = self._coefs(t, x0)
        return a * noise - s * x0

    def predict_x0_eps(self, model_out: torch.Tensor, x_t: torch.Tensor,
                       t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) implied by the denoiser's output at x_t."""
        a, s = self._coefs(t, x_t)
        if self.config.prediction == "epsilon":
            eps = model_out
            return (x_t - s * eps) / a, eps
        v = model_out
        return a * x_t - s * v, a * v + s * x_t

    def loss(self, model_out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error between the denoiser output and its target; ``weight`` (broadcastable to the target)
        masks or weights elements and the mean is over the weighted elements."""
        err = F.mse_loss(model_out, target, reduction="none")
        if weight is None:
            return err.mean()
        weight = weight.expand_as(err)
        return (err * weight).sum() / weight.sum().clamp_min(1.0)

    def ddim_sample(self, denoise: Callable[[torch.Tensor, int], torch.Tensor], x_T: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) from noise x_T over ``self.timesteps``; ``denoise(x_t, t)`` returns the
        model output for an int timestep. A plain loop: traced graphs unroll it."""
        clip = self.config.clip_x0
        x = x_T
        for i, t in enumerate(self.timesteps):
            x0, eps = self.predict_x0_eps(denoise(x, t), x, t)
            if clip is not None:
                x0 = x0.clamp(-clip, clip)
                a, s = self._coefs(t, x)
                eps = (x - a * x0) / s
            if i + 1 == len(self.timesteps):
                return x0  # abar after the last step is 1
            a_prev, s_prev = self._coefs(self.timesteps[i + 1], x)
            x = a_prev * x0 + s_prev * eps
        raise AssertionError("unreachable: timesteps is never empty")
