"""Per-dimension mean / std normaliser fitted from data and stored as buffers (so it travels in the state_dict and
is baked into the exported graph as constants).

``normalize(x) = (x - mean) / std`` and ``denormalize(z) = z * std + mean`` over the trailing ``shape`` of x.
Until fitted it is the identity (mean 0, std 1) and ``fitted`` is False; ``std`` is clamped below at ``min_std``
so constant dimensions (e.g. the plan's position at t = 0) do not divide by zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

DEFAULT_MIN_STD = 1e-3


class Normalizer(nn.Module):
    """Mean / std over the trailing ``shape`` of its inputs; buffers ``mean``, ``std`` and ``fitted``."""

    def __init__(self, shape: Sequence[int], min_std: float = DEFAULT_MIN_STD):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.min_std = float(min_std)
        self.register_buffer("mean", torch.zeros(self.shape))
        self.register_buffer("std", torch.ones(self.shape))
        self.register_buffer("fitted", torch.tensor(False))

    def extra_repr(self) -> str:
        return f"shape={self.shape}, fitted={bool(self.fitted)}"

    def set(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Set the statistics (each of shape ``shape``, or broadcastable to it); std is clamped at ``min_std``."""
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32)).expand(self.shape)
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32)).expand(self.shape)
        if not (torch.isfinite(mean_t).all() and torch.isfinite(std_t).all()):
            raise ValueError(f"normaliser {self.shape}: statistics are not finite")
        self.mean.copy_(mean_t)
        self.std.copy_(std_t.clamp_min(self.min_std))
        self.fitted.fill_(True)

    def fit(self, data: np.ndarray | torch.Tensor, weight: np.ndarray | torch.Tensor | None = None) -> None:
        """Fit mean and std from samples ``data`` (N, *shape); ``weight`` (N, *shape) or broadcastable (e.g. a 0/1
        mask of where the target exists) weights each element. Dimensions with no weight keep mean 0, std 1."""
        x = np.asarray(data, dtype=np.float64).reshape((-1,) + self.shape)
        if weight is None:
            self.set(x.mean(axis=0), x.std(axis=0))
            return
        w = np.broadcast_to(np.asarray(weight, np.float64), x.shape)
        total = w.sum(axis=0)
        seen = total > 0
        mean = np.where(seen, (w * x).sum(axis=0) / np.maximum(total, 1e-12), 0.0)
        var = np.where(seen, (w * (x - mean) ** 2).sum(axis=0) / np.maximum(total, 1e-12), 1.0)
        self.set(mean, np.sqrt(var))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def log_std(self) -> torch.Tensor:
        """log(std), the shift from normalised to physical log-stds."""
        return self.std.log()
