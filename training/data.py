"""Training samples from Zarr shards, built exactly as modeld builds its inputs at run time.

* Vision samples (:class:`VisionDataset`): ``img`` / ``big_img`` (12, 128, 256) uint8 from frames t-4 and t
  (channels 0:6 = t-4), targets at t; ``desire_pred`` targets are the desire one-hot at t + 0, 2, 4, 6 s.
* Policy samples (:class:`PolicyDataset`): ``desire_pulse`` (25, 8) from rising edges max-pooled over 4-frame
  windows, ``features_buffer`` (25, 512) from cached vision features of frames t-96 ... t (zero before the
  episode start), ``traffic_convention`` (2,); targets ``plan`` and ``desire_state``. No label enters an input.

Shards are opened lazily in each process, so the datasets work with DataLoader workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..contract.constants import DESIRE_PRED_T_IDXS, DT_S, FRAME_PAIR_OFFSET
from ..contract.inputs import desire_rising_edges, policy_inputs_at
from ..episodes.schema import VISION_TARGET_KEYS
from ..episodes.shards import Shard, find_shards, open_shard, read_frame_pairs, read_labels
from ..errors import ConfigError, ShardFormatError

log = logging.getLogger(__name__)
ON_CORRUPT = ("error", "skip")
DESIRE_PRED_OFFSETS_F = np.rint(DESIRE_PRED_T_IDXS / DT_S).astype(np.int64)


def resolve_shards(paths: str | os.PathLike | Sequence, key: str = "dataset.train_path") -> list[Path]:
    """Shard paths from a directory or a list; ConfigError naming ``key`` when there are none."""
    if paths is None or (isinstance(paths, (list, tuple)) and not paths) or paths == "":
        raise ConfigError(f"{key} is empty; set it to a directory of shards (or a list of them)")
    items = list(paths) if isinstance(paths, (list, tuple)) else [paths]
    for item in items:
        if not Path(item).exists():
            raise ConfigError(f"{key}: {item} does not exist; collect shards there first (sptrain collect) or "
                              f"point {key} at an existing directory")
    found = find_shards(items)
    if not found:
        raise ConfigError(f"{key}: no *.zarr shards in {', '.join(map(str, items))}; run sptrain collect first")
    return found


class ShardSet:
    """Validated shards with their labels in memory; images stay on disk and open lazily per process."""

    def __init__(self, paths: Sequence[os.PathLike], on_corrupt: str = "error"):
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"dataset.on_corrupt={on_corrupt!r}; expected one of {list(ON_CORRUPT)}")
        self.paths: list[Path] = []
        self.labels: list[dict[str, np.ndarray]] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in paths:
            try:
                shard = open_shard(path)
                labels = read_labels(shard)
            except ShardFormatError as exc:
                if on_corrupt == "error":
                    raise
                log.warning("skipping corrupt shard: %s", exc)
                self.skipped.append((Path(path), str(exc)))
                continue
            self.paths.append(Path(path))
            self.labels.append(labels)
        if not self.paths:
            raise ShardFormatError(f"no readable shards among {len(paths)} given (skipped: {len(self.skipped)})")
        self._open: dict[int, Shard] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.paths)

    def shard(self, i: int) -> Shard:
        if self._pid != os.getpid():  # a DataLoader worker: zarr handles are not shared across processes
            self._open, self._pid = {}, os.getpid()
        if i not in self._open:
            self._open[i] = open_shard(self.paths[i])
        return self._open[i]

    def frame_pairs(self, i: int, key: str, ts) -> np.ndarray:
        """(n, 12, 128, 256) uint8 vision inputs of shard i at frames ``ts`` (contract.inputs.frame_pairs)."""
        return read_frame_pairs(self.shard(i), key, ts)

    def n_frames(self, i: int) -> int:
        return len(self.labels[i]["valid"])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_open"] = {}
        return state


def valid_index(shards: ShardSet, first_frame: int) -> np.ndarray:
    """(N, 2) (shard, frame) pairs of the valid frames t >= first_frame of every shard."""
    index = []
    for i, labels in enumerate(shards.labels):
        t = np.flatnonzero(labels["valid"])
        t = t[t >= first_frame]
        index.append(np.stack([np.full_like(t, i), t], axis=1))
    return np.concatenate(index) if index else np.zeros((0, 2), np.int64)


def desire_pred_target(desire: np.ndarray, t: int) -> np.ndarray:
    """(4, 8) desire one-hot at t + 0, 2, 4, 6 s (clamped to the episode)."""
    idx = np.minimum(t + DESIRE_PRED_OFFSETS_F, len(desire) - 1)
    return desire[idx]


class VisionDataset(Dataset):
    """(shard, frame) samples at valid frames t >= 4."""

    def __init__(self, shards: ShardSet):
        self.shards = shards
        self.index = valid_index(shards, first_frame=FRAME_PAIR_OFFSET)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, t = (int(v) for v in self.index[k])
        labels = self.shards.labels[i]
        sample = {
            "img": torch.from_numpy(self.shards.frame_pairs(i, "img", [t])[0]),
            "big_img": torch.from_numpy(self.shards.frame_pairs(i, "big_img", [t])[0]),
            "desire_pred": torch.from_numpy(desire_pred_target(labels["desire"], t)),
            "shard_index": torch.tensor(i), "frame": torch.tensor(t),
        }
        for key in VISION_TARGET_KEYS:
            sample[key] = torch.from_numpy(labels[key][t])
        return sample


class PolicyDataset(Dataset):
    """Policy samples from per-shard vision features (T, 512), built as modeld builds its inputs."""

    def __init__(self, shards: ShardSet, features: Sequence[np.ndarray], profile_inputs: Sequence[str]):
        if len(features) != len(shards):
            raise ValueError(f"{len(features)} feature arrays for {len(shards)} shards")
        self.shards, self.features = shards, list(features)
        self.profile_inputs = tuple(profile_inputs)
        self.pulses = [desire_rising_edges(labels["desire"]) for labels in shards.labels]
        self.index = valid_index(shards, first_frame=0)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, t = (int(v) for v in self.index[k])
        labels = self.shards.labels[i]
        inputs = policy_inputs_at(self.profile_inputs, self.features[i], self.pulses[i], t,
                                  labels["traffic_convention"][t], labels["ego_speed"][t])
        sample = {name: torch.from_numpy(value) for name, value in inputs.items()}
        sample.update({"plan": torch.from_numpy(labels["plan"][t]),
                       "desire_state": torch.from_numpy(labels["desire"][t]),
                       "shard_index": torch.tensor(i), "frame": torch.tensor(t)})
        return sample

