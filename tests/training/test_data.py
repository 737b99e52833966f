"""Datasets build samples as modeld builds its inputs; bad shards give clear errors or are skipped."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sunnypilot_training.contract.inputs import desire_pulse_at, desire_rising_edges, features_buffer_at
from sunnypilot_training.errors import ConfigError, ShardFormatError
from sunnypilot_training.training.data import PolicyDataset, ShardSet, VisionDataset, desire_pred_target, resolve_shards

from spt_testutil import write_fake_shard


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    write_fake_shard(tmp_path, "a_0_0.zarr", T=260)
    write_fake_shard(tmp_path, "a_0_1.zarr", T=230)
    return tmp_path


def test_vision_sample_frame_pair_and_targets(shard_dir: Path) -> None:
    shards = ShardSet(resolve_shards(shard_dir))
    ds = VisionDataset(shards)
    assert len(ds) == (260 - 200 - 4) + (230 - 200 - 4)
    sample = ds[10]
    t = int(sample["frame"])
    assert sample["img"].shape == (12, 128, 256) and sample["img"].dtype == torch.uint8
    assert int(sample["img"][0, 0, 0]) == (t - 4) % 251 and int(sample["img"][6, 0, 0]) == t % 251  # t-4 first
    assert int(sample["big_img"][11, 5, 5]) == (t + 100) % 251
    labels = shards.labels[int(sample["shard_index"])]
    np.testing.assert_array_equal(sample["lane_lines"].numpy(), labels["lane_lines"][t])
    assert sample["desire_pred"].shape == (4, 8)


def test_desire_pred_looks_ahead() -> None:
    desire = np.zeros((300, 8), np.float32)
    desire[:, 0] = 1
    desire[150:, 0], desire[150:, 3] = 0, 1
    target = desire_pred_target(desire, 100)  # +0, +2, +4, +6 s = frames 100, 140, 180, 220
    assert target.argmax(axis=1).tolist() == [0, 0, 3, 3]


def test_policy_sample_inputs_follow_modeld(shard_dir: Path) -> None:
    shards = ShardSet(resolve_shards(shard_dir))
    feats = [np.random.default_rng(i).normal(size=(shards.n_frames(i), 512)).astype(np.float32)
             for i in range(len(shards))]
    ds = PolicyDataset(shards, feats, ("desire_pulse", "traffic_convention", "features_buffer"))
    sample = next(ds[k] for k in range(len(ds)) if int(ds[k]["shard_index"]) == 0 and int(ds[k]["frame"]) == 50)
    np.testing.assert_array_equal(sample["features_buffer"].numpy(), features_buffer_at(feats[0], 50))
    pulses = desire_rising_edges(shards.labels[0]["desire"])
    np.testing.assert_array_equal(sample["desire_pulse"].numpy(), desire_pulse_at(pulses, 50))
    assert set(sample) == {"features_buffer", "traffic_convention", "plan", "desire_state", "desire_pulse",
                           "shard_index", "frame"}  # no label among the inputs but the declared ones


def test_dataloader_with_two_workers(shard_dir: Path) -> None:
    ds = VisionDataset(ShardSet(resolve_shards(shard_dir)))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    seen = 0
    for batch in loader:
        assert batch["img"].shape[1:] == (12, 128, 256)
        frames = batch["frame"].numpy()
        np.testing.assert_array_equal(batch["img"][:, 6, 0, 0].numpy(), frames % 251)
        seen += len(frames)
    assert seen == len(ds)


def test_missing_or_empty_paths_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset.val_path.*does not exist"):
        resolve_shards(tmp_path / "nope", key="dataset.val_path")
    with pytest.raises(ConfigError, match="dataset.train_path.*no \\*.zarr shards"):
        resolve_shards(tmp_path)
    with pytest.raises(ConfigError, match="dataset.train_path is empty"):
        resolve_shards([])


def test_on_corrupt_skip_and_error(shard_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.rmtree(shard_dir / "a_0_1.zarr" / "plan")
    paths = resolve_shards(shard_dir)
    with pytest.raises(ShardFormatError, match="a_0_1.zarr"):
        ShardSet(paths, on_corrupt="error")
    with caplog.at_level(logging.WARNING):
        shards = ShardSet(paths, on_corrupt="skip")
    assert [p.name for p in shards.paths] == ["a_0_0.zarr"] and "a_0_1.zarr" in caplog.text
    with pytest.raises(ConfigError, match="on_corrupt"):
        ShardSet(paths, on_corrupt="ignore")
