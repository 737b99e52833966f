"""Where and how training runs: device, precision (AMP on CUDA), seeding, and DDP under ``torchrun``.

The same entry point works under ``python`` and ``torchrun``: DDP is detected from the environment
(``WORLD_SIZE`` > 1), NCCL on CUDA and gloo on CPU; rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import ConfigError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Runtime:
    device: torch.device
    precision: str  # what actually runs: fp32 on CPU whatever was asked
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    note: str = ""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.device.type == "cuda" and self.precision in AMP_DTYPES:
            return torch.autocast("cuda", dtype=AMP_DTYPES[self.precision])
        return contextlib.nullcontext()

    @property
    def use_grad_scaler(self) -> bool:
        return self.device.type == "cuda" and self.precision == "fp16"

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup_runtime(device: str, precision: str) -> Runtime:
    """Resolve ``training.device`` / ``training.precision`` and join the process group under torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError("training.device=cuda but no CUDA device is available; use training.device=auto or cpu "
                          "(sptrain doctor shows what torch sees)")
    use_cuda = device == "cuda" or (device == "auto" and cuda)
    dev = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    note = ""
    run_precision = precision
    if not use_cuda and precision != "fp32":
        run_precision, note = "fp32", f"training.precision={precision} applies to CUDA only; running fp32 on the CPU"
    if use_cuda and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("training.precision=bf16 but this GPU has no bf16 support; use fp16 or fp32")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Runtime(device=dev, precision=run_precision, rank=rank, world_size=world_size, local_rank=local_rank,
                   note=note)


def teardown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def all_reduce_mean(value: float, runtime: Runtime) -> float:
    if not runtime.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=runtime.device)
    dist.all_reduce(t)
    return float(t.item()) / runtime.world_size


def broadcast_object(value, runtime: Runtime):
    """Rank 0's ``value`` on every rank."""
    if not runtime.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
