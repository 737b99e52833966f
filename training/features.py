"""The feature cache: the trained (EMA) vision model's ``hidden_state`` for every frame of every shard.

The policy trains on ``features_buffer`` windows exactly as modeld feeds them, so it needs the vision features of
all frames. They are computed once per vision weights and kept under
``<output_dir>/features/<weights hash>/<shard name>.npy`` (float32, (T, 512)); a new vision model gets a new hash
and a new cache. Files are written atomically. Frame t pairs frames t-4 and t; before the start the older frame is
zeros (modeld's zero-initialised buffer).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..contract.constants import FEATURE_LEN
from ..episodes.shards import read_frame_pairs
from ..errors import ConfigError
from ..fileio import atomic_writer
from .data import ShardSet

CACHE_BATCH = 32


def cache_dir(output_dir: str | os.PathLike, key: str) -> Path:
    return Path(output_dir) / "features" / key


def _shard_file(directory: Path, shard_path: Path, n_frames: int) -> Path:
    return directory / f"{shard_path.stem}_{n_frames}.npy"


@torch.no_grad()
def shard_features(model: torch.nn.Module, shards: ShardSet, i: int, device: torch.device) -> np.ndarray:
    """(T, 512) float32 hidden_state of every frame of shard ``i`` (frames read in contiguous blocks)."""
    shard = shards.shard(i)
    T = shards.n_frames(i)
    out = np.zeros((T, FEATURE_LEN), np.float32)
    for start in range(0, T, CACHE_BATCH):
        ts = np.arange(start, min(start + CACHE_BATCH, T))
        img = torch.from_numpy(read_frame_pairs(shard, "img", ts)).to(device)
        big = torch.from_numpy(read_frame_pairs(shard, "big_img", ts)).to(device)
        out[start:start + len(ts)] = model.features(img, big).float().cpu().numpy()
    return out


def load_or_compute(model: torch.nn.Module, shards: ShardSet, directory: Path, device: torch.device,
                    compute: bool = True, progress: bool = False) -> list[np.ndarray]:
    """Per-shard features from the cache, computing (and atomically storing) what is missing when ``compute``."""
    directory.mkdir(parents=True, exist_ok=True)
    model.eval()
    result = []
    for i in tqdm(range(len(shards)), desc="features", unit="shard", disable=not progress):
        path = _shard_file(directory, shards.paths[i], shards.n_frames(i))
        if not path.exists():
            if not compute:
                raise ConfigError(f"feature cache {path} is missing: rank 0 writes it and every rank reads it, so "
                                  f"output_dir must be on storage all ranks share")
            feats = shard_features(model, shards, i, device)
            with atomic_writer(path) as f:
                np.save(f, feats)
        result.append(np.load(path))
    return result
