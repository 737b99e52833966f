"""Shard schema, atomic writing, and clear errors for broken shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sunnypilot_training.episodes.shards import (
    FRAME_SHAPE,
    IMAGE_KEYS,
    LABEL_KEYS,
    SCHEMA_VERSION,
    ShardWriter,
    clean_stale_temporaries,
    find_shards,
    is_complete,
    open_shard,
    read_frames,
    read_labels,
)
from sunnypilot_training.errors import ShardFormatError

from spt_testutil import REPO_ROOT, write_fake_shard


def test_roundtrip(tmp_path: Path) -> None:
    path = write_fake_shard(tmp_path, T=120)
    shard = open_shard(path)
    assert shard.n_frames == 120 and shard.attrs["complete"] is True
    assert shard.attrs["schema_version"] == SCHEMA_VERSION
    frames = read_frames(shard, "img", [7, 3])
    assert frames.shape == (2,) + FRAME_SHAPE and frames[0, 0, 0, 0] == 7 and frames[1, 5, 9, 9] == 3
    labels = read_labels(shard)
    assert set(labels) == set(LABEL_KEYS) and labels["plan"].shape == (120, 33, 15)
    assert [p.name for p in find_shards(tmp_path)] == [path.name]
    assert not list(tmp_path.glob(".tmp-*"))


def test_error_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, "x_0_0.zarr", 10, {}) as writer:
            writer.write_frames(0, {k: np.zeros((2,) + FRAME_SHAPE, np.uint8) for k in IMAGE_KEYS})
            raise RuntimeError("simulated crash")
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_leaves_no_visible_shard_and_temp_is_cleaned(tmp_path: Path) -> None:
    code = (
        "import os, signal, numpy as np\n"
        "from sunnypilot_training.episodes import shards\n"
        f"w = shards.ShardWriter({str(tmp_path)!r}, 'k_0_0.zarr', 50, {{}})\n"
        "w.write_frames(0, {k: np.ones((10,) + shards.FRAME_SHAPE, np.uint8) for k in shards.IMAGE_KEYS})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT)
    assert proc.returncode == -9
    assert find_shards(tmp_path) == []  # nothing visible
    temps = list(tmp_path.glob(".tmp-*"))
    assert len(temps) == 1
    assert clean_stale_temporaries(tmp_path) == temps and not temps[0].exists()


def test_live_writer_temporaries_are_kept(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "live_0_0.zarr", 5, {})
    assert clean_stale_temporaries(tmp_path) == [] and writer.tmp_path.exists()
    writer.abort()


def test_truncated_chunk_names_shard_and_key(tmp_path: Path) -> None:
    path = write_fake_shard(tmp_path, T=60)
    chunk = next(p for p in (path / "plan").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:20])
    shard = open_shard(path)
    with pytest.raises(ShardFormatError, match=r"fake_0_0\.zarr.*'plan'"):
        read_labels(shard)


def test_missing_key_and_wrong_shape(tmp_path: Path) -> None:
    path = write_fake_shard(tmp_path, T=60)
    meta = json.loads((path / "lead" / "zarr.json").read_text())
    meta["shape"] = [60, 3, 6]
    meta["chunk_grid"]["configuration"]["chunk_shape"] = [60, 3, 6]
    (path / "lead" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ShardFormatError, match=r"'lead' is float32 \(60, 3, 6\), expected float32 \(60, 3, 6, 4\)"):
        open_shard(path)
    import shutil

    shutil.rmtree(path / "lead")
    with pytest.raises(ShardFormatError, match="key 'lead' missing"):
        open_shard(path)


def test_incomplete_shard_is_refused(tmp_path: Path) -> None:
    path = write_fake_shard(tmp_path, T=30)
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["complete"]
    (path / "zarr.json").write_text(json.dumps(meta))
    assert not is_complete(path)
    with pytest.raises(ShardFormatError, match="incomplete shard"):
        open_shard(path)
    with pytest.raises(ShardFormatError, match="no such shard"):
        open_shard(tmp_path / "nope.zarr")


def test_not_a_zarr_directory(tmp_path: Path) -> None:
    bad = tmp_path / "bad_0_0.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{not json")
    with pytest.raises(ShardFormatError, match="bad_0_0.zarr"):
        open_shard(bad)
    assert os.path.isdir(bad)  # nothing deleted on our side
