"""Zarr v3 episode shards: an atomic writer and a validating reader of the schema in ``schema.py``.

One directory per episode, ``<output>/<scenario>_<seed>_<episode>.zarr``, with time-major arrays at 20 Hz:
``img`` / ``big_img`` uint8 (T, 6, 128, 256) - one packed YUV frame each (the model's 12-channel input of
frames t-4 and t is assembled at load time) - and the label arrays of ``collector/labels.py``.

Atomicity: a shard is written into a hidden ``.tmp-<name>-<pid>-<token>`` directory beside its final place
and renamed when complete; ``complete: true`` is the last attribute written. A killed run leaves no visible
partial shard; the next run skips complete shards and removes temporaries whose process is gone.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from ..contract.inputs import frame_pairs
from ..errors import ShardFormatError
from ..fileio import pid_alive
from .schema import FRAME_SHAPE, IMAGE_KEYS, LABEL_DEFINITIONS_VERSION, LABEL_KEYS, SCHEMA, SCHEMA_VERSION

REQUIRED_ATTRS = ("schema_version", "simulator", "simulator_version", "scenario", "seed", "episode_index",
                  "dt_s", "n_frames", "cameras", "label_definitions_version", "complete")
# Chosen by measurement (docs/benchmarks.md, bench/bench_shards.py): one frame per chunk (random pair reads touch
# exactly two chunks), Blosc zstd level 1 with bit-shuffle (smallest of the fast codecs, fastest writes).
FRAMES_PER_CHUNK = 1
IMAGE_CODEC = {"cname": "zstd", "clevel": 1, "shuffle": "bitshuffle"}
LABEL_CODEC_LEVEL = 3  # labels: one chunk per array, zstd
TMP_PREFIX = ".tmp-"
SHARD_SUFFIX = ".zarr"


def shard_name(scenario: str, seed: int, episode_index: int) -> str:
    return f"{scenario}_{seed}_{episode_index}{SHARD_SUFFIX}"


def clean_stale_temporaries(output_dir: Path) -> list[Path]:
    """Remove ``.tmp-*`` shard directories whose writing process no longer runs; returns what was removed."""
    removed = []
    pattern = re.compile(rf"^{re.escape(TMP_PREFIX)}.*-(\d+)-[0-9a-f]+$")
    for entry in Path(output_dir).glob(f"{TMP_PREFIX}*"):
        match = pattern.match(entry.name)
        if entry.is_dir() and (match is None or not pid_alive(int(match.group(1)))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def is_complete(path: Path) -> bool:
    """True when ``path`` is a shard whose writer finished (cheap check of the ``complete`` attribute)."""
    meta = Path(path) / "zarr.json"
    try:
        return bool(json.loads(meta.read_text()).get("attributes", {}).get("complete", False))
    except (OSError, ValueError):
        return False


class ShardWriter:
    """Writes one episode shard atomically. Use as a context manager; call :meth:`commit` at the end."""

    def __init__(self, output_dir: str | os.PathLike, name: str, n_frames: int, attrs: dict[str, Any]):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.final_path = self.output_dir / name
        self.tmp_path = self.output_dir / f"{TMP_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}"
        self.n_frames = int(n_frames)
        self._attrs = dict(attrs)
        self._group = zarr.open_group(str(self.tmp_path), mode="w-")
        self._arrays = {}
        for key, spec in SCHEMA.items():
            shape, dtype = spec.shape, spec.dtype
            is_image = key in IMAGE_KEYS
            chunks = (FRAMES_PER_CHUNK,) + shape if is_image else (self.n_frames,) + shape
            codec = BloscCodec(**IMAGE_CODEC) if is_image else ZstdCodec(level=LABEL_CODEC_LEVEL)
            self._arrays[key] = self._group.create_array(
                key, shape=(self.n_frames,) + shape, chunks=chunks, dtype=dtype, compressors=codec, fill_value=0)
        self._committed = False

    def write_frames(self, start: int, frames: dict[str, np.ndarray]) -> None:
        """Write packed frames ``{'img': (n, 6, 128, 256), 'big_img': ...}`` at frames ``start:start+n``."""
        for key in IMAGE_KEYS:
            block = frames[key]
            assert block.shape[1:] == FRAME_SHAPE and block.dtype == np.uint8, (key, block.shape, block.dtype)
            self._arrays[key][start:start + len(block)] = block

    def write_labels(self, labels: dict[str, np.ndarray]) -> None:
        for key in LABEL_KEYS:
            value = np.asarray(labels[key])
            assert value.shape == (self.n_frames,) + SCHEMA[key].shape, (key, value.shape)
            self._arrays[key][...] = value.astype(SCHEMA[key].dtype)

    def update_attrs(self, attrs: dict[str, Any]) -> None:
        """Attributes known only after the episode ran (written at commit)."""
        self._attrs.update(attrs)

    def commit(self) -> Path:
        """Mark complete (the last attribute written) and move into place."""
        self._group.attrs.update({**self._attrs, "schema_version": SCHEMA_VERSION,
                                  "label_definitions_version": LABEL_DEFINITIONS_VERSION,
                                  "n_frames": self.n_frames})
        self._group.attrs["complete"] = True
        if self.final_path.exists():  # a stale incomplete shard of the same name (complete ones are skipped)
            shutil.rmtree(self.final_path)
        os.replace(self.tmp_path, self.final_path)
        self._committed = True
        return self.final_path

    def abort(self) -> None:
        shutil.rmtree(self.tmp_path, ignore_errors=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self.abort()


@dataclass
class Shard:
    """A validated, opened shard (lazy zarr arrays; open again in each DataLoader worker)."""

    path: Path
    attrs: dict[str, Any]
    arrays: dict[str, Any]

    @property
    def n_frames(self) -> int:
        return int(self.attrs["n_frames"])


def open_shard(path: str | os.PathLike) -> Shard:
    """Open and validate a shard; ShardFormatError names the shard, the key, found vs expected."""
    path = Path(path)
    if not path.is_dir():
        raise ShardFormatError(f"{path}: no such shard directory (expected <scenario>_<seed>_<episode>.zarr)")
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:
        raise ShardFormatError(f"{path}: not a readable Zarr v3 group ({exc}); delete it and collect again") \
            from None
    missing = [a for a in REQUIRED_ATTRS if a not in attrs]
    if missing or attrs.get("complete") is not True:
        raise ShardFormatError(f"{path}: incomplete shard (missing attributes {missing or ['complete']}); "
                               f"it was not finished - delete it and rerun the collect command")
    if attrs["schema_version"] != SCHEMA_VERSION:
        raise ShardFormatError(f"{path}: schema_version {attrs['schema_version']}, expected {SCHEMA_VERSION}; "
                               f"collect it again with this version")
    T = int(attrs["n_frames"])
    arrays = {}
    for key, spec in SCHEMA.items():
        shape, dtype = spec.shape, spec.dtype
        try:
            arr = group[key]
        except KeyError:
            raise ShardFormatError(f"{path}: key {key!r} missing; expected {dtype} {(T,) + shape}") from None
        if tuple(arr.shape) != (T,) + shape or str(arr.dtype) != dtype:
            raise ShardFormatError(f"{path}: key {key!r} is {arr.dtype} {tuple(arr.shape)}, expected {dtype} "
                                   f"{(T,) + shape}")
        arrays[key] = arr
    return Shard(path=path, attrs=attrs, arrays=arrays)


def read_labels(shard: Shard) -> dict[str, np.ndarray]:
    """All label arrays of a shard in memory; ShardFormatError if a chunk is missing or corrupt."""
    out = {}
    for key in LABEL_KEYS:
        out[key] = _read(shard, key, slice(None))
    return out


def _read(shard: Shard, key: str, index) -> np.ndarray:
    try:
        return np.asarray(shard.arrays[key][index])
    except Exception as exc:
        raise ShardFormatError(f"{shard.path}: cannot read {key!r} ({type(exc).__name__}: {exc}); the shard is "
                               f"corrupt - delete it and collect again") from None


def read_frames(shard: Shard, key: str, frames: np.ndarray | list[int]) -> np.ndarray:
    """(n, 6, 128, 256) uint8 packed frames at the given indices."""
    idx = np.asarray(frames, dtype=np.int64)
    try:
        return np.asarray(shard.arrays[key].oindex[idx])  # decodes only the chunks holding these frames
    except Exception as exc:
        raise ShardFormatError(f"{shard.path}: cannot read {key!r} frames {idx.tolist()} ({type(exc).__name__}: "
                               f"{exc}); the shard is corrupt - delete it and collect again") from None


def read_frame_pairs(shard: Shard, key: str, ts) -> np.ndarray:
    """(n, 12, 128, 256) uint8 vision inputs ``key`` at frames ``ts``: frames t-4 and t, zeros before the start
    (the one pairing of the contract, :func:`contract.inputs.frame_pairs`)."""
    return frame_pairs(lambda idx: read_frames(shard, key, idx), ts)


def find_shards(paths: str | os.PathLike | list) -> list[Path]:
    """Shard directories under a directory (or a list of directories/shards), sorted; hidden temporaries skipped."""
    items = paths if isinstance(paths, (list, tuple)) else [paths]
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if p.suffix == SHARD_SUFFIX and p.is_dir():
            found.append(p)
        elif p.is_dir():
            found += sorted(q for q in p.glob(f"*{SHARD_SUFFIX}") if not q.name.startswith("."))
    return sorted(set(found))
