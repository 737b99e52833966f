"""The feature cache equals the model's features on dataset frame pairs, and is keyed by the weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sunnypilot_training.training import features
from sunnypilot_training.training.checkpoint import weights_hash
from sunnypilot_training.training.data import ShardSet

from spt_testutil import write_fake_shard


class _PairProbe(torch.nn.Module):
    """features = the mean of each input channel's first pixel: reveals which frames were paired."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def features(self, img, big_img):
        x = torch.cat([img[:, :, 0, 0], big_img[:, :, 0, 0]], dim=1).float() * self.w  # (B, 24)
        return torch.nn.functional.pad(x, (0, 512 - 24))


def test_cache_matches_frame_pairs_and_is_reused(tmp_path: Path) -> None:
    write_fake_shard(tmp_path / "d", "s_0_0.zarr", T=70)
    shards = ShardSet([tmp_path / "d" / "s_0_0.zarr"])
    model = _PairProbe()
    key = weights_hash(model)
    directory = features.cache_dir(tmp_path / "out", key)
    feats = features.load_or_compute(model, shards, directory, torch.device("cpu"))[0]
    assert feats.shape == (70, 512)
    for t in (0, 3, 4, 37, 69):
        pair = torch.from_numpy(shards.frame_pairs(0, "img", [t]))
        big = torch.from_numpy(shards.frame_pairs(0, "big_img", [t]))
        np.testing.assert_array_equal(feats[t], model.features(pair, big)[0].detach().numpy())
    assert feats[2, 0] == 0 and feats[37, 0] == 33 and feats[37, 6] == 37  # t-4 first, zeros before the start
    files = list(directory.iterdir())
    assert len(files) == 1
    again = features.load_or_compute(model, shards, directory, torch.device("cpu"), compute=False)[0]
    np.testing.assert_array_equal(again, feats)
    with torch.no_grad():
        model.w.fill_(2.0)
    assert weights_hash(model) != key
