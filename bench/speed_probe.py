"""Does the vision model read the car's speed? Its pose speed against the true speed, per shard, and the camera's
mounting height (is the error a scale confusion?).

Usage: python bench/speed_probe.py EXPORT_DIR SHARD_DIR   (the package importable as ``sunnypilot_training``)
"""

from __future__ import annotations

import sys

import numpy as np

from sunnypilot_training.contract.inputs import frame_pairs
from sunnypilot_training.contract.outputs import parse_outputs
from sunnypilot_training.episodes.shards import find_shards, open_shard, read_frames, read_labels
from sunnypilot_training.evaluation.model_runner import ExportedModels

STRIDE = 25  # frames between probes


def probe(models: ExportedModels, path) -> tuple[float, float, float, float]:
    """(mounting height, mean true speed, mean signed error, mean ratio) of one shard."""
    shard = open_shard(path)
    labels = read_labels(shard)
    ts = np.arange(8, shard.n_frames, STRIDE)
    pairs = {key: frame_pairs(lambda idx, k=key: read_frames(shard, k, np.asarray(idx)), ts)
             for key in ("img", "big_img")}
    pred = np.array([parse_outputs(models.profile.vision, models.vision({k: v[j] for k, v in pairs.items()}))
                     ["pose"][0, 0] for j in range(len(ts))])
    true = labels["ego_speed"][ts]
    height = float(shard.attrs["cameras"]["height_m"])
    return height, float(true.mean()), float(np.mean(pred - true)), float(np.mean(pred / np.maximum(true, 1.0)))


def main() -> None:
    models = ExportedModels.load(sys.argv[1])
    rows = []
    for path in find_shards([sys.argv[2]]):
        rows.append(probe(models, path))
        h, v, err, ratio = rows[-1]
        print(f"{path.stem:34s} height {h:.2f} m  speed {v:5.1f}  error {err:+6.2f} m/s  ratio {ratio:.2f}", flush=True)
    r = np.array(rows)
    print(f"correlation of height with the signed error {np.corrcoef(r[:, 0], r[:, 2])[0, 1]:+.2f}, "
          f"with the ratio {np.corrcoef(r[:, 0], r[:, 3])[0, 1]:+.2f}")


if __name__ == "__main__":
    main()
