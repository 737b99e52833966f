"""One training stage's epochs: data loader, optimiser, schedule, grad scaler, EMA, and the loop over batches.

Used by :mod:`.trainer` for both stages (vision, then policy); DDP-wrapped under ``torchrun``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from .config import TrainingSettings
from .device import Runtime, all_reduce_mean
from .optim import Ema, make_optimizer, make_scheduler

GRAD_CLIP_NORM = 1.0


class LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)`` so DDP sees the loss computation as the forward pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.model.loss(batch)


def make_loader(dataset, settings: TrainingSettings, runtime: Runtime, epoch: int) -> DataLoader:
    """Shuffled batches, reproducible per (seed, epoch); a DistributedSampler under DDP."""
    generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
    if runtime.distributed:
        sampler = DistributedSampler(dataset, num_replicas=runtime.world_size, rank=runtime.rank, shuffle=True,
                                     seed=settings.seed, drop_last=True)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=settings.batch_size, sampler=sampler, num_workers=settings.num_workers,
                      generator=generator, drop_last=len(dataset) >= 2 * settings.batch_size,
                      persistent_workers=False)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class StageTrainer:
    """Optimiser, schedule, scaler and the epoch loop of one stage."""

    def __init__(self, name: str, model: nn.Module, ema: Ema, dataset, settings: TrainingSettings, runtime: Runtime,
                 epochs: int):
        self.name, self.model, self.ema, self.dataset, self.settings, self.rt = (name, model, ema, dataset, settings,
                                                                                 runtime)
        self.steps_per_epoch = max(len(make_loader(dataset, settings, runtime, 0)), 1)
        self.optimizer = make_optimizer(model, settings.lr, settings.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, settings.warmup_steps, self.steps_per_epoch * epochs)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.use_grad_scaler)
        wrapped = LossModule(model)
        if runtime.distributed:
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=ids, find_unused_parameters=True)
        self.wrapped = wrapped

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])

    def run_epoch(self, epoch: int, step: int, progress: bool) -> tuple[dict[str, float], int]:
        """Train one epoch; returns the mean of each loss part (``train_*``) and the global step after it."""
        self.model.train()
        loader = make_loader(self.dataset, self.settings, self.rt, epoch)
        totals: dict[str, float] = {}
        n = 0
        bar = tqdm(loader, desc=f"{self.name} epoch {epoch}", unit="batch", leave=False,
                   disable=not (progress and self.rt.is_main))
        for batch in bar:
            batch = _to_device(batch, self.rt.device)
            with self.rt.autocast():
                loss, parts = self.wrapped(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP_NORM)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.ema.update(self.model)
            step += 1
            n += 1
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                totals[k] = totals.get(k, 0.0) + v
            bar.set_postfix_str(f"loss {float(loss.detach()):.3f}")
        return {f"train_{k}": all_reduce_mean(v / max(n, 1), self.rt) for k, v in totals.items()}, step
