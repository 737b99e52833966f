"""Layers shared by the vision and policy models: FiLM denoiser, diffusion and MDN heads, losses, output packing.

Everything here traces into plain ONNX ops (Gemm/MatMul, Add/Mul, Sigmoid, LayerNormalization, Sin/Cos on
constants, Reshape/Concat/Slice, ReduceMean, Sqrt/Log): no random ops, no data-dependent control flow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ...contract.profiles import ModelSpec
from ...errors import ConfigError
from ..diffusion import Diffusion, DiffusionConfig
from ..normalizer import Normalizer

TIME_EMBED_DIM = 64
MAX_PERIOD_STEPS = 10000.0
RESIDUAL_RMS_RATE = 0.02  # running-RMS update rate of a diffusion head's residual scale (per training step)
RESIDUAL_RMS_MIN = 1e-3
LOG_STD_RANGE_NORM = (-7.0, 7.0)  # MDN log-stds in normalised units are clamped to this range


# --- sizes ---------------------------------------------------------------------------------------------------
def resolve_size(size: object, presets: Mapping, cls: type) -> object:
    """A size preset by name, an instance of the size dataclass ``cls``, or a dict of overrides on its ``preset``
    (default "tiny"); unknown names or keys raise ``ConfigError``."""
    if isinstance(size, cls):
        return size
    if isinstance(size, str):
        if size not in presets:
            raise ConfigError(f"model.size={size!r}: unknown preset; use one of {list(presets)} or a dict of sizes")
        return presets[size]
    if isinstance(size, Mapping):
        values = dict(size)
        preset = values.pop("preset", "tiny")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown or preset not in presets:
            raise ConfigError(f"model.size: unknown keys {unknown} or preset {preset!r}; keys: {sorted(known)}, "
                              f"presets: {list(presets)}")
        values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
        return replace(presets[preset], **values)
    raise ConfigError(f"model.size={size!r}: expected a preset name or a dict")


# --- small layers --------------------------------------------------------------------------------------------
def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> SiLU -> Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, out_dim))


def timestep_embedding(t: torch.Tensor, dim: int = TIME_EMBED_DIM) -> torch.Tensor:
    """Sinusoidal embedding (..., dim) of float timesteps t (...)."""
    half = dim // 2
    freqs = torch.exp(-math.log(MAX_PERIOD_STEPS) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[..., None] * freqs  # (..., half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class FilmBlock(nn.Module):
    """Pre-norm residual MLP block whose normalised input is scaled and shifted by the conditioning (FiLM)."""

    def __init__(self, width: int, mult: int = 2):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(width, 2 * width)
        self.fc1 = nn.Linear(width, mult * width)
        self.fc2 = nn.Linear(mult * width, width)
        for layer in (self.film, self.fc2):  # start as the identity: no modulation, zero residual
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(c).chunk(2, dim=-1)  # (B, S, W) each
        y = self.norm(h) * (1.0 + scale) + shift
        return h + self.fc2(F.silu(self.fc1(y)))


class FilmDenoiser(nn.Module):
    """Residual MLP denoiser eps/v(x_t, t | cond) over a flat target of ``dim`` values."""

    def __init__(self, dim: int, cond_dim: int, width: int, depth: int):
        super().__init__()
        self.inp = nn.Linear(dim, width)
        self.time_mlp = mlp(TIME_EMBED_DIM, width, width)
        self.cond_proj = nn.Linear(cond_dim, width)
        self.blocks = nn.ModuleList(FilmBlock(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, S, D) noisy samples, t (B, S) or (1, 1) timesteps, cond (B, 1, C) -> (B, S, D)."""
        c = F.silu(self.cond_proj(cond) + self.time_mlp(timestep_embedding(t)))  # (B, S, W)
        h = self.inp(x)  # (B, S, W)
        for block in self.blocks:
            h = block(h, c)
        return self.out(self.norm(h))


# --- heads ----------------------------------------------------------------------------------------------------
class DiffusionHead(nn.Module):
    """Conditional diffusion model p(target | cond) over a normalised target of shape ``shape``.

    Residual form: a small mean head predicts ``m(cond)`` (trained by weighted MSE, which gives the backbone a
    direct, fast learning signal) and the diffusion model learns the distribution of the residual ``x0 - m``
    (``m`` detached) divided by its running RMS per dimension (a buffer, so the diffusion always sees a unit-scale
    target); samples are ``m + rms * residual samples``. Training: :meth:`loss` (DDPM, uniform t, plus the
    mean-head MSE). Export: :meth:`export_samples` denoises ``config.export_samples``
    fixed noise draws (a seeded buffer, not saved) with ``config.steps`` unrolled DDIM steps; :meth:`export_stats`
    gives mu = the mean head (the regression mean: averaging a few samples would add their sampling error to it)
    and std = the samples' RMS about it; :meth:`stats` gives mean and std of any set of samples. Every log-std is
    ``log(std + std_floor)`` in normalised units, times the calibration ``std_scale`` (set on validation data by
    ``training.calibration``), shifted to physical units.
    """

    def __init__(self, shape: Sequence[int], cond_dim: int, width: int, depth: int, config: DiffusionConfig,
                 seed_offset: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        self.dim = math.prod(self.shape)
        self.config = config
        self.diffusion = Diffusion(config)
        self.normalizer = Normalizer(self.shape)
        self.denoiser = FilmDenoiser(self.dim, cond_dim, width, depth)
        self.mean_head = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, self.dim))
        nn.init.zeros_(self.mean_head[-1].weight)  # starts at the data mean
        nn.init.zeros_(self.mean_head[-1].bias)
        self.register_buffer("residual_rms", torch.ones(self.dim))
        self.register_buffer("std_scale", torch.ones(self.shape))  # calibration of the std (1 = uncalibrated)
        # Regenerated from the seed rather than saved, so one checkpoint can export with any sample count.
        gen = torch.Generator().manual_seed(config.seed + seed_offset)
        noise = torch.randn(config.export_samples, self.dim, generator=gen)  # (S, D)
        self.register_buffer("export_noise", noise, persistent=False)

    def loss(self, cond: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Denoising loss for cond (B, C) and a physical target (B, *shape); weight broadcastable to the target."""
        y = self.normalizer.normalize(target).flatten(1)  # (B, D)
        mean = self.mean_head(cond)  # (B, D)
        w = None if weight is None else weight.expand(target.shape).reshape(y.shape)
        mean_loss = weighted_mean((mean - y).square(), w)
        residual = y - mean.detach()
        if self.training:
            self._update_residual_rms(residual, w)
        x0 = residual / self.residual_rms  # the unit-scale residual the diffusion model learns
        noise = torch.randn_like(x0)
        t = self.diffusion.sample_timesteps(x0.shape[0], device=x0.device)  # (B,)
        x_t = self.diffusion.q_sample(x0, t, noise)
        out = self.denoiser(x_t[:, None], t[:, None], cond[:, None])[:, 0]  # (B, D)
        return self.diffusion.loss(out, self.diffusion.training_target(x0, noise, t), w) + mean_loss

    @torch.no_grad()
    def _update_residual_rms(self, residual: torch.Tensor, weight: torch.Tensor | None) -> None:
        """Running per-dimension RMS of the residual over the samples that count (weight > 0)."""
        w = torch.ones_like(residual) if weight is None else weight.to(residual.dtype)
        total = w.sum(0)  # (D,)
        rms = ((w * residual.square()).sum(0) / total.clamp_min(1e-6)).sqrt().clamp_min(RESIDUAL_RMS_MIN)
        seen = total > 0
        self.residual_rms[seen] = torch.lerp(self.residual_rms[seen], rms[seen], RESIDUAL_RMS_RATE)

    def denoise(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """DDIM from noise (B, S, D) given cond (B, C) -> normalised samples (B, S, D) = mean + residual."""
        mean = self.mean_head(cond)[:, None]  # (B, 1, D)
        cond = cond[:, None]  # (B, 1, C)

        def step(x: torch.Tensor, t: int) -> torch.Tensor:
            return self.denoiser(x, torch.full((1, 1), float(t), device=x.device), cond)

        return mean + self.residual_rms * self.diffusion.ddim_sample(step, noise)

    def export_samples(self, cond: torch.Tensor) -> torch.Tensor:
        """Deterministic normalised samples (B, S, *shape) from the fixed noise buffer."""
        noise = self.export_noise.expand(cond.shape[0], -1, -1)  # (B, S, D)
        return self.denoise(cond, noise).reshape((cond.shape[0], -1) + self.shape)

    def sample(self, cond: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stochastic physical samples (B, n_samples, *shape) (fresh noise, then deterministic DDIM)."""
        noise_device = generator.device if generator is not None else cond.device  # a CPU generator works for CUDA
        noise = torch.randn((cond.shape[0], n_samples, self.dim), generator=generator, device=noise_device)
        noise = noise.to(cond.device)
        samples = self.denoise(cond, noise).reshape((cond.shape[0], n_samples) + self.shape)
        return self.normalizer.denormalize(samples)

    def stats(self, samples: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical (mu, log_std) over the sample axis ``dim`` of normalised samples: their mean, and their std
        (Bessel's correction) plus ``std_floor`` (a fraction of the data std), calibrated."""
        n = samples.shape[dim]
        mean = samples.mean(dim=dim, keepdim=True)
        std = ((samples - mean).square().sum(dim=dim) / (n - 1)).sqrt()
        return self.normalizer.denormalize(mean.squeeze(dim)), self._log_std(std)

    def mean(self, cond: torch.Tensor) -> torch.Tensor:
        """Physical mean (B, *shape): the mean head (what the exported mu is), differentiable."""
        return self.normalizer.denormalize(self.mean_head(cond).reshape((cond.shape[0],) + self.shape))

    def export_stats(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Physical (mu, log_std) (B, *shape) and the normalised export samples (B, S, *shape): mu is the mean
        head, the std the samples' RMS about it (plus ``std_floor``), calibrated."""
        samples = self.export_samples(cond)  # (B, S, *shape)
        mean = self.mean_head(cond).reshape((cond.shape[0],) + self.shape)  # normalised
        std = (samples - mean[:, None]).square().mean(dim=1).sqrt()
        return self.normalizer.denormalize(mean), self._log_std(std), samples

    def cluster_stats(self, samples: torch.Tensor, resp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical (mu, log_std) (B, K, *shape) of K soft clusters of the normalised samples (B, S, *shape), with
        responsibilities ``resp`` (B, S, K): each cluster's weighted mean, and its weighted RMS about it plus
        ``std_floor``, calibrated."""
        flat = samples.flatten(2)  # (B, S, D)
        w = (resp / (resp.sum(dim=1, keepdim=True) + CLUSTER_EPS)).transpose(1, 2)  # (B, K, S), rows sum to 1
        mean = w @ flat  # (B, K, D)
        std = (w @ flat.square() - mean.square()).clamp(min=0.0).sqrt()
        shape = (samples.shape[0], resp.shape[2]) + self.shape
        return self.normalizer.denormalize(mean.reshape(shape)), self._log_std(std.reshape(shape))

    def _log_std(self, std_normalized: torch.Tensor) -> torch.Tensor:
        std = (std_normalized + self.config.std_floor) * self.std_scale
        return torch.log(std) + self.normalizer.log_std()


class RegressionHead(nn.Module):
    """Plain regression: an MLP mean trained by (weighted) MSE, and one learned std per dimension (the RMS of the
    residual, fitted by a Gaussian NLL on the detached mean), calibrated by ``std_scale``. The baseline the
    diffusion and MDN heads are compared with."""

    def __init__(self, shape: Sequence[int], cond_dim: int, hidden_dim: int):
        super().__init__()
        self.shape = tuple(shape)
        self.normalizer = Normalizer(self.shape)
        self.net = mlp(cond_dim, hidden_dim, math.prod(self.shape))
        nn.init.zeros_(self.net[-1].weight)  # starts at the data mean
        nn.init.zeros_(self.net[-1].bias)
        self.log_std = nn.Parameter(torch.zeros(self.shape))
        self.register_buffer("std_scale", torch.ones(self.shape))

    def forward_normalized(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.net(cond).reshape((-1,) + self.shape)
        return mu, self.log_std.clamp(*LOG_STD_RANGE_NORM).expand_as(mu)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical (mu, log_std), each (B, *shape)."""
        mu, log_std = self.forward_normalized(cond)
        return self.normalizer.denormalize(mu), log_std + self.std_scale.log() + self.normalizer.log_std()

    def mean(self, cond: torch.Tensor) -> torch.Tensor:
        """Physical mean (B, *shape), differentiable."""
        return self.normalizer.denormalize(self.forward_normalized(cond)[0])

    def loss(self, cond: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        mu, log_std = self.forward_normalized(cond)
        y = self.normalizer.normalize(target)
        w = None if weight is None else weight.expand(target.shape)
        return weighted_mean((mu - y).square(), w) + gaussian_nll(mu.detach(), log_std, y, w)


class MdnHead(nn.Module):
    """Gaussian MDN head (single hypothesis): cond -> mu, log-std of a target of ``shape``, normalised inside."""

    def __init__(self, shape: Sequence[int], cond_dim: int, hidden_dim: int):
        super().__init__()
        self.shape = tuple(shape)
        self.normalizer = Normalizer(self.shape)
        self.net = mlp(cond_dim, hidden_dim, 2 * math.prod(self.shape))
        self.register_buffer("std_scale", torch.ones(self.shape))  # calibration of the std (1 = uncalibrated)

    def forward_normalized(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_std) in normalised units, each (B, *shape)."""
        mu, log_std = self.net(cond).chunk(2, dim=-1)
        log_std = log_std.clamp(*LOG_STD_RANGE_NORM)
        return mu.reshape((-1,) + self.shape), log_std.reshape((-1,) + self.shape)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical (mu, log_std), each (B, *shape)."""
        mu, log_std = self.forward_normalized(cond)
        return self.normalizer.denormalize(mu), log_std + self.std_scale.log() + self.normalizer.log_std()

    def mean(self, cond: torch.Tensor) -> torch.Tensor:
        """Physical mean (B, *shape), differentiable."""
        return self.normalizer.denormalize(self.forward_normalized(cond)[0])

    def loss(self, cond: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        mu, log_std = self.forward_normalized(cond)
        return gaussian_nll(mu, log_std, self.normalizer.normalize(target), weight)


# --- losses ---------------------------------------------------------------------------------------------------
CLUSTER_EPS = 1e-6
CLUSTER_SHARPNESS = 20.0  # softmax gain on squared distances in units of the points' mean squared spread


def cluster_samples(points: torch.Tensor, anchor: torch.Tensor, k: int, iterations: int = 3) -> torch.Tensor:
    """Soft k-means of S points (B, S, F) into ``k`` clusters, written for the exported graph: fixed shapes, no
    argmax (a near tie moves an assignment a little, never flips it, so every runtime agrees). Seeds by soft
    farthest-point sampling: each seed is the point farthest from the anchor (B, F) and the seeds before it; then
    ``iterations`` of soft assignment and weighted means. Distances are in units of the points' mean squared
    distance to the anchor. -> responsibilities (B, S, k), each point's row summing to 1."""
    scale = (points - anchor[:, None]).square().sum(dim=-1).mean(dim=1, keepdim=True) + CLUSTER_EPS  # (B, 1)

    def sq_dist(centers: torch.Tensor) -> torch.Tensor:  # (B, S, R) squared distance to each of R centers
        return (points[:, :, None] - centers[:, None]).square().sum(dim=-1) / scale[:, :, None]

    refs = anchor[:, None]  # (B, 1, F)
    seeds = []
    for _ in range(k):
        nearest = sq_dist(refs).amin(dim=2)  # (B, S)
        pick = torch.softmax(CLUSTER_SHARPNESS * nearest, dim=1)  # (B, S): the farthest point, softly
        seed = (pick[:, :, None] * points).sum(dim=1, keepdim=True)  # (B, 1, F)
        seeds.append(seed)
        refs = torch.cat([refs, seed], dim=1)
    centers = torch.cat(seeds, dim=1)  # (B, k, F)
    for _ in range(iterations):
        resp = torch.softmax(-CLUSTER_SHARPNESS * sq_dist(centers), dim=2)  # (B, S, k)
        mass = resp.sum(dim=1)[:, :, None]  # (B, k, 1)
        centers = (resp.transpose(1, 2) @ points + CLUSTER_EPS * centers) / (mass + CLUSTER_EPS)  # empty: stays
    return torch.softmax(-CLUSTER_SHARPNESS * sq_dist(centers), dim=2)


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` weighted by ``weight`` (broadcastable); 0 when all weights are 0."""
    if weight is None:
        return values.mean()
    weight = weight.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def gaussian_nll_elements(mu: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element Gaussian negative log-likelihood without the constant 0.5 log(2 pi)."""
    return 0.5 * ((target - mu) * torch.exp(-log_std)).square() + log_std


def gaussian_nll(mu: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    return weighted_mean(gaussian_nll_elements(mu, log_std, target), weight)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the last axis against (soft or one-hot) target distributions, mean over the rest."""
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


# --- output layout --------------------------------------------------------------------------------------------
def mdn_flat(mu: torch.Tensor, log_std: torch.Tensor, logits: torch.Tensor | None = None,
             hypotheses: int = 0) -> torch.Tensor:
    """Contract layout of an MDN head: per hypothesis [means | log-stds | logits] -> (B, width).

    Single hypothesis: mu, log_std (B, *shape). Multi: mu, log_std (B, H, *shape), logits (B, H, selection).
    """
    batch = mu.shape[0]
    hyp = max(hypotheses, 1)
    parts = [mu.reshape(batch, hyp, -1), log_std.reshape(batch, hyp, -1)]  # (B, H, n) each
    if logits is not None:
        parts.append(logits.reshape(batch, hyp, -1))
    return torch.cat(parts, dim=2).reshape(batch, -1)


def flat_outputs(spec: ModelSpec, heads: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate per-head flat tensors (B, head.width) in the spec's layout order, zero pad last -> (B, W)."""
    first = heads[spec.heads[0].name]
    parts = [heads[h.name].reshape(first.shape[0], h.width) for h in spec.heads]
    if spec.pad_width:
        parts.append(first.new_zeros((first.shape[0], spec.pad_width)))
    return torch.cat(parts, dim=1)


def all_fitted(model: nn.Module) -> bool:
    """True when every :class:`Normalizer` inside ``model`` has been fitted or set."""
    return all(bool(m.fitted) for m in model.modules() if isinstance(m, Normalizer))


# --- reporting ------------------------------------------------------------------------------------------------
def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (distinct) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """FLOPs of one ``model(*inputs)`` call (matmuls and convolutions, 2 per multiply-add), no grad."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return int(counter.get_total_flops())
