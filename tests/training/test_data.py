"""Datasets build samples as modeld builds its inputs; bad shards give clear errors or are skipped."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sunnypilot_training.contract.actions import curvature_from_plan
from sunnypilot_training.contract.inputs import (
    LATERAL_DELAY_S,
    desire_pulse_at,
    desire_rising_edges,
    features_buffer_at,
)
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


def test_vision_samples_of_every_frame_flag_the_ones_with_a_future(shard_dir: Path) -> None:
    shards = ShardSet(resolve_shards(shard_dir))
    ds = VisionDataset(shards, every_frame=True)
    assert len(ds) == (260 - 4) + (230 - 4)
    frames = {(int(ds[k]["shard_index"]), int(ds[k]["frame"])): bool(ds[k]["future"]) for k in range(0, len(ds), 7)}
    for (i, t), future in frames.items():
        assert t >= 4 and future == bool(shards.labels[i]["valid"][t])
    assert any(frames.values()) and not all(frames.values())
    assert all(bool(VisionDataset(shards)[k]["future"]) for k in range(0, len(VisionDataset(shards)), 5))


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


def test_op_0_10_0_samples_feed_back_the_labels_curvature_of_earlier_frames(shard_dir: Path) -> None:
    """op-0.10.0's prev_desired_curv: modeld feeds the model's own desired_curvature of frames t-97, t-93, ...,
    t-1; training stands in the labels' (lag-adjusted) curvature of those frames - nothing of frame t or later."""
    shards = ShardSet(resolve_shards(shard_dir))
    plan = shards.labels[0]["plan"]
    plan[:, :, 11] = np.linspace(0.0, 0.05, plan.shape[0])[:, None] * np.linspace(0.0, 1.0, plan.shape[1])[None]
    plan[:, 0, 14] = np.linspace(-0.01, 0.01, plan.shape[0])
    feats = [np.zeros((shards.n_frames(i), 512), np.float32) for i in range(len(shards))]
    names = ("desire", "traffic_convention", "lateral_control_params", "prev_desired_curv", "features_buffer")
    ds = PolicyDataset(shards, feats, names)
    k = next(k for k in range(len(ds)) if int(ds[k]["shard_index"]) == 0 and int(ds[k]["frame"]) == 50)
    hist = ds[k]["prev_desired_curv"].numpy()[:, 0]  # (25,)
    frames = 50 - 97 + 4 * np.arange(25)
    expected = curvature_from_plan(plan[frames[frames >= 0]], plan[frames[frames >= 0], 0, 3], LATERAL_DELAY_S)
    np.testing.assert_allclose(hist[frames >= 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(hist[frames < 0], 0)
    assert np.abs(hist[-3:]).min() > 0
    plan[50:] += 7.0  # labels of frame t and later do not enter
    np.testing.assert_array_equal(PolicyDataset(shards, feats, names)[k]["prev_desired_curv"].numpy()[:, 0], hist)


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


def test_split_for_stacking_keeps_policy_episodes_from_the_vision_model(tmp_path) -> None:
    from pathlib import Path

    from sunnypilot_training.training.data import split_for_stacking

    paths = [Path(f"{sc}_0_{k}.zarr") for sc in ("curvy_road", "highway_follow") for k in range(6)]
    vision, policy = split_for_stacking(paths, 0.5)
    assert not set(vision) & set(policy) and set(vision) | set(policy) == set(paths)
    for sc in ("curvy_road", "highway_follow"):  # every scenario on both sides, alternating episodes
        assert [p.stem for p in policy if p.stem.startswith(sc)] == [f"{sc}_0_{k}" for k in (1, 3, 5)]
    vision, policy = split_for_stacking(paths, 1 / 3)
    assert len(policy) == 4 and len(vision) == 8
    assert split_for_stacking(paths, 0.0) == (paths, paths)  # 0: both models train on every episode
    with pytest.raises(ConfigError, match="policy_split"):
        split_for_stacking(paths[:1], 0.5)


def test_frame_cache_gives_the_same_samples_within_its_budget(shard_dir: Path) -> None:
    plain = VisionDataset(ShardSet(resolve_shards(shard_dir)))
    cached_set = ShardSet(resolve_shards(shard_dir), cache_gb=1.0)
    cached = VisionDataset(cached_set)
    for k in (0, 7, len(plain) - 1):
        for key in ("img", "big_img"):
            assert torch.equal(plain[k][key], cached[k][key])
    assert len(cached_set._frames) == 4  # both shards, both cameras, read whole
    small = ShardSet(resolve_shards(shard_dir), cache_gb=1e-9)
    assert torch.equal(VisionDataset(small)[3]["img"], plain[3]["img"]) and not small._frames


def test_exposure_augmentation_changes_light_not_geometry(shard_dir: Path) -> None:
    from sunnypilot_training.training.data import PAIR_UV_CHANNELS as UV_CHANNELS
    from sunnypilot_training.training.data import PAIR_Y_CHANNELS as Y_CHANNELS
    from sunnypilot_training.training.data import augment_exposure

    pair = np.random.default_rng(0).integers(30, 220, (12, 128, 256), dtype=np.uint8)
    same = augment_exposure([pair, pair], np.array([0.5, 0.5, 0.5]))  # gain 1, offset 0, colour 1
    assert all(np.array_equal(p, pair) for p in same)
    brighter, wide = augment_exposure([pair, pair[::-1].copy()], np.array([1.0, 1.0, 0.5]))
    y = pair[Y_CHANNELS].astype(float)
    np.testing.assert_allclose(brighter[Y_CHANNELS], np.clip(np.rint(y * 1.3 + 20), 0, 255))
    np.testing.assert_array_equal(brighter[UV_CHANNELS], pair[UV_CHANNELS])
    np.testing.assert_allclose(wide[Y_CHANNELS], np.clip(np.rint(pair[::-1][Y_CHANNELS] * 1.3 + 20), 0, 255))
    torch.manual_seed(0)
    a = VisionDataset(ShardSet(resolve_shards(shard_dir)), augment=True)[3]["img"]
    torch.manual_seed(0)
    b = VisionDataset(ShardSet(resolve_shards(shard_dir)), augment=True)[3]["img"]
    assert torch.equal(a, b)  # drawn from torch's generator: a resumed run draws the same
