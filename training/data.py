"""Training samples from Zarr shards, built exactly as modeld builds its inputs at run time.

* Vision samples (:class:`VisionDataset`): ``img`` / ``big_img`` (12, 128, 256) uint8 from frames t-4 and t
  (channels 0:6 = t-4), targets at t; ``desire_pred`` targets are the desire one-hot at t + 0, 2, 4, 6 s.
* Policy samples (:class:`PolicyDataset`): ``desire_pulse`` (25, 8) from rising edges max-pooled over 4-frame
  windows, ``features_buffer`` (25, 512) from cached vision features of frames t-96 ... t (zero before the
  episode start), ``traffic_convention`` (2,), for op-0.10.0 ``lateral_control_params`` (the car's speed) and
  ``prev_desired_curv`` (the labels' desired curvature of frames t-97 ... t-1, standing in for the model's own
  outputs that modeld feeds back: :func:`label_curvatures`); targets ``plan`` and ``desire_state``. No label of
  frame t or later enters an input.

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

from ..contract.actions import FORWARD, curvature_from_plan
from ..contract.constants import DESIRE_PRED_T_IDXS, DT_S, FRAME_PAIR_OFFSET, Plan
from ..contract.inputs import LATERAL_DELAY_S, desire_rising_edges, frame_pairs, policy_inputs_at
from ..contract.yuv import FRAME_CHANNELS, UV_CHANNELS, Y_CHANNELS
from ..episodes.schema import VISION_TARGET_KEYS
from ..episodes.shards import Shard, find_shards, open_shard, read_frame_pairs, read_frames, read_labels
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


def split_for_stacking(paths: Sequence[Path], policy_fraction: float) -> tuple[list[Path], list[Path]]:
    """(vision paths, policy paths): about ``policy_fraction`` of the episodes of every (scenario, seed) group
    (shards named ``<scenario>_<seed>_<episode>``), spread evenly over the episode numbers, train only the policy,
    on features of a vision model that never saw them; the rest train only the vision model. 0: both models
    train on every episode (the policy then learns from features of the vision model's own training frames, which
    are better than those it will get on new roads)."""
    if policy_fraction <= 0.0:
        return list(paths), list(paths)
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in paths:
        stem, _, episode = Path(path).stem.rpartition("_")
        key, number = (stem, int(episode)) if episode.isdigit() else (Path(path).stem, 0)
        groups.setdefault(key, []).append((number, Path(path)))
    vision, policy = [], []
    for members in groups.values():
        for k, (_, path) in enumerate(sorted(members)):
            (policy if int((k + 1) * policy_fraction) > int(k * policy_fraction) else vision).append(path)
    if not vision or not policy:
        raise ConfigError(f"training.policy_split={policy_fraction}: {len(paths)} training episode(s) give "
                          f"{len(vision)} for the vision model and {len(policy)} for the policy; collect more "
                          f"episodes (at least 2 per scenario) or set training.policy_split=0")
    return vision, policy


class ShardSet:
    """Validated shards with their labels in memory; images stay on disk and open lazily per process.

    ``cache_gb`` > 0 keeps decoded camera frames in memory, a whole shard's camera at its first read, until that
    many GB are held (per set of shards and process: each DataLoader worker has its own): on a CPU, decoding
    frames costs about as much as the tiny vision model's training step, so epochs after the first run up to
    twice as fast.
    """

    def __init__(self, paths: Sequence[os.PathLike], on_corrupt: str = "error", cache_gb: float = 0.0):
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"dataset.on_corrupt={on_corrupt!r}; expected one of {list(ON_CORRUPT)}")
        self.cache_bytes = int(max(cache_gb, 0.0) * 1e9)
        self._frames: dict[tuple[int, str], np.ndarray] = {}
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
        if self._pid != os.getpid():  # a DataLoader worker: zarr handles (and the cache) are its own
            self._open, self._frames, self._pid = {}, {}, os.getpid()
        if i not in self._open:
            self._open[i] = open_shard(self.paths[i])
        return self._open[i]

    def frame_pairs(self, i: int, key: str, ts) -> np.ndarray:
        """(n, 12, 128, 256) uint8 vision inputs of shard i at frames ``ts`` (contract.inputs.frame_pairs)."""
        frames = self._cached(i, key)
        if frames is None:
            return read_frame_pairs(self.shard(i), key, ts)
        return frame_pairs(lambda idx: frames[idx], ts)

    def _cached(self, i: int, key: str) -> np.ndarray | None:
        """Every packed frame (T, 6, 128, 256) of shard i's camera ``key`` from the cache, read into it if the
        budget allows; None when it does not."""
        if (i, key) in self._frames:
            return self._frames[(i, key)]
        if not self.cache_bytes:
            return None
        array = self.shard(i).arrays[key]
        size = int(np.prod(array.shape)) * array.dtype.itemsize
        if sum(a.nbytes for a in self._frames.values()) + size > self.cache_bytes:
            return None
        frames = read_frames(self.shard(i), key, np.arange(array.shape[0]))
        self._frames[(i, key)] = frames
        return frames

    def n_frames(self, i: int) -> int:
        return len(self.labels[i]["valid"])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_open"], state["_frames"] = {}, {}
        return state


def frame_index(shards: ShardSet, first_frame: int, every_frame: bool = False) -> np.ndarray:
    """(N, 2) (shard, frame) pairs of the valid frames t >= first_frame of every shard (with ``every_frame``:
    of every frame t >= first_frame)."""
    index = []
    for i, labels in enumerate(shards.labels):
        t = np.arange(len(labels["valid"])) if every_frame else np.flatnonzero(labels["valid"])
        t = t[t >= first_frame]
        index.append(np.stack([np.full_like(t, i), t], axis=1))
    return np.concatenate(index) if index else np.zeros((0, 2), np.int64)


def desire_pred_target(desire: np.ndarray, t: int) -> np.ndarray:
    """(4, 8) desire one-hot at t + 0, 2, 4, 6 s (clamped to the episode)."""
    idx = np.minimum(t + DESIRE_PRED_OFFSETS_F, len(desire) - 1)
    return desire[idx]


# Photometric augmentation of training samples (``augment=True``): one random exposure per sample, the same for
# both cameras and both frames of the pair, as a change of light or sensor gain would be: Y -> Y * gain + offset,
# U and V scaled about 128 (more or less colourful). The geometry is never touched (the labels are in the frames).
AUGMENT_Y_GAIN = (0.7, 1.3)
AUGMENT_Y_OFFSET = (-20.0, 20.0)
AUGMENT_UV_GAIN = (0.8, 1.2)
PAIR_Y_CHANNELS = np.array([c + f * FRAME_CHANNELS for f in (0, 1) for c in Y_CHANNELS])  # of a 12-channel pair
PAIR_UV_CHANNELS = np.array([c + f * FRAME_CHANNELS for f in (0, 1) for c in UV_CHANNELS])


def augment_exposure(pairs: list[np.ndarray], u: np.ndarray) -> list[np.ndarray]:
    """The 12-channel uint8 pairs with one exposure change from ``u`` (3,) uniform in [0, 1) (gain, offset,
    colour)."""
    gain = AUGMENT_Y_GAIN[0] + (AUGMENT_Y_GAIN[1] - AUGMENT_Y_GAIN[0]) * u[0]
    offset = AUGMENT_Y_OFFSET[0] + (AUGMENT_Y_OFFSET[1] - AUGMENT_Y_OFFSET[0]) * u[1]
    colour = AUGMENT_UV_GAIN[0] + (AUGMENT_UV_GAIN[1] - AUGMENT_UV_GAIN[0]) * u[2]
    out = []
    for pair in pairs:
        x = pair.astype(np.float32)
        x[PAIR_Y_CHANNELS] = x[PAIR_Y_CHANNELS] * gain + offset
        x[PAIR_UV_CHANNELS] = (x[PAIR_UV_CHANNELS] - 128.0) * colour + 128.0
        out.append(np.clip(np.rint(x), 0, 255).astype(np.uint8))
    return out


class VisionDataset(Dataset):
    """(shard, frame) samples at frames t >= 4: only the valid ones (a full 10 s of future), or with
    ``every_frame`` all of them, each with a ``future`` flag (the vision loss trains the heads whose labels look
    ahead only where it is set; pose, lines and edges need no future). ``augment``: a random exposure per sample
    (training only; drawn from torch's generator, so a resumed run draws the same)."""

    def __init__(self, shards: ShardSet, augment: bool = False, every_frame: bool = False):
        self.shards, self.augment = shards, augment
        self.index = frame_index(shards, FRAME_PAIR_OFFSET, every_frame)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, t = (int(v) for v in self.index[k])
        labels = self.shards.labels[i]
        img, big_img = self.shards.frame_pairs(i, "img", [t])[0], self.shards.frame_pairs(i, "big_img", [t])[0]
        if self.augment:
            img, big_img = augment_exposure([img, big_img], torch.rand(3).numpy())
        sample = {
            "img": torch.from_numpy(img),
            "big_img": torch.from_numpy(big_img),
            "desire_pred": torch.from_numpy(desire_pred_target(labels["desire"], t)),
            "shard_index": torch.tensor(i), "frame": torch.tensor(t),
            "future": torch.tensor(bool(labels["valid"][t])),
        }
        for key in VISION_TARGET_KEYS:
            sample[key] = torch.from_numpy(labels[key][t])
        return sample


def label_curvatures(labels: dict[str, np.ndarray]) -> np.ndarray:
    """(T,) float32 the desired curvature (1/m) of each frame's plan label at the lateral delay op-0.10.0's policy
    is fed - the ``desired_curvature`` target of that frame, and in training the history ``prev_desired_curv``
    is built from (a model's outputs, fed back by modeld, estimate these)."""
    plan = labels["plan"]
    return curvature_from_plan(plan, plan[:, 0, Plan.VELOCITY.start + FORWARD], LATERAL_DELAY_S).astype(np.float32)


def fed_back_curvatures(labels: dict[str, np.ndarray]) -> np.ndarray:
    """(T,) the newest ``prev_desired_curv`` entry of each frame t in training: frame t-1's label curvature (0 at
    the first frame)."""
    k = label_curvatures(labels)
    return np.concatenate([np.zeros(1, np.float32), k[:-1]])


class PolicyDataset(Dataset):
    """Policy samples from per-shard vision features (T, 512), built as modeld builds its inputs."""

    def __init__(self, shards: ShardSet, features: Sequence[np.ndarray], profile_inputs: Sequence[str]):
        if len(features) != len(shards):
            raise ValueError(f"{len(features)} feature arrays for {len(shards)} shards")
        self.shards, self.features = shards, list(features)
        self.profile_inputs = tuple(profile_inputs)
        self.pulses = [desire_rising_edges(labels["desire"]) for labels in shards.labels]
        fed_back = "prev_desired_curv" in self.profile_inputs
        self.curvatures = [label_curvatures(labels) if fed_back else None for labels in shards.labels]
        self.index = frame_index(shards, first_frame=0)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, t = (int(v) for v in self.index[k])
        labels = self.shards.labels[i]
        inputs = policy_inputs_at(self.profile_inputs, self.features[i], self.pulses[i], t,
                                  labels["traffic_convention"][t], labels["ego_speed"][t], self.curvatures[i])
        sample = {name: torch.from_numpy(value) for name, value in inputs.items()}
        sample.update({"plan": torch.from_numpy(labels["plan"][t]),
                       "desire_state": torch.from_numpy(labels["desire"][t]),
                       "shard_index": torch.tensor(i), "frame": torch.tensor(t)})
        return sample

