"""Is the car's speed in frames t-4 and t? A parameter-free reading of the motion volume (training/models/motion.py):
for each probed frame, the speed ratio q = delta / h whose moved frame t-4 best matches frame t (each band's costs
normalised to best 0 and mean about 1, then averaged over the bands used), turned into a speed with the camera's true
mounting height and with one assumed height (the middle of the training range), against the true speed; over
every band, and over the near road (without the farthest band, where leads and the horizon sit). Nothing is
learnt, so it measures what the frames hold, not a model.

Usage: python bench/motion_sweep.py SHARD_DIR [--assumed-height 1.3] [--stride 25] [--max-shift 28] [--row-stride 2]
       [--col-stride 1] [--shift-step 1] [--ratios 41]   (a coarser grid: what it loses, and its cost per frame)
(the package importable as ``sunnypilot_training``)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sunnypilot_training.contract.camera import MODEL_CAMERAS
from sunnypilot_training.contract.constants import IMG_SHAPE
from sunnypilot_training.contract.inputs import frame_pairs
from sunnypilot_training.episodes.shards import find_shards, open_shard, read_frames, read_labels
from sunnypilot_training.training.models.motion import PAIR_DT_S, MotionGrid, MotionVolume, normalised
from sunnypilot_training.training.models.vision import IMG_OFFSET, IMG_SCALE

READINGS = {"every band": slice(None), "near road": slice(1, None)}


def sweep(volume: MotionVolume, path, stride: int) -> dict[str, np.ndarray]:
    """Per probed frame of one shard: true speed, camera height and the best ratio q of each reading."""
    shard = open_shard(path)
    ts = np.arange(8, shard.n_frames, stride)
    pairs = frame_pairs(lambda idx: read_frames(shard, "img", np.asarray(idx)), ts)
    x = (torch.from_numpy(pairs).float() - IMG_OFFSET) * IMG_SCALE
    start = time.perf_counter()
    with torch.no_grad():
        cost = volume.volume(x)  # (n, Q, S, bands)
    seconds = time.perf_counter() - start
    norm, _ = normalised(cost)
    out = {"seconds": np.full(len(ts), seconds / len(ts)), "speed": read_labels(shard)["ego_speed"][ts],
           "height": np.full(len(ts), float(shard.attrs["cameras"]["height_m"]))}
    for name, bands in READINGS.items():
        out[name] = volume.ratios[norm[..., bands].mean(dim=-1).amin(dim=2).argmin(dim=1).numpy()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards")
    ap.add_argument("--assumed-height", type=float, default=1.3)
    ap.add_argument("--stride", type=int, default=25)
    ap.add_argument("--max-shift", type=int, default=MotionGrid.max_shift_px, help="yaw shifts searched (px)")
    ap.add_argument("--row-stride", type=int, default=MotionGrid.row_stride)
    ap.add_argument("--col-stride", type=int, default=MotionGrid.col_stride)
    ap.add_argument("--shift-step", type=int, default=MotionGrid.shift_step)
    ap.add_argument("--ratios", type=int, default=MotionGrid.ratios)
    args = ap.parse_args()
    grid = MotionGrid(max_shift_px=args.max_shift, margin_px=max(args.max_shift, MotionGrid.margin_px),
                      row_stride=args.row_stride, col_stride=args.col_stride, shift_step=args.shift_step,
                      ratios=args.ratios)
    torch.set_num_threads(1)  # a steady cost per frame
    volume = MotionVolume(MODEL_CAMERAS["img"], IMG_SHAPE[2:], out_dim=1, hidden_dim=1, grid=grid)
    rows = []
    for path in find_shards([args.shards]):
        r = sweep(volume, path, args.stride)
        rows.append(r)
        errors = "  ".join(f"{name} {np.median(np.abs(r[name] * r['height'] / PAIR_DT_S - r['speed'])):5.2f}"
                           for name in READINGS)
        print(f"{path.stem:34s} height {r['height'][0]:.2f} m  speed {r['speed'].mean():5.1f} m/s  "
              f"median |error| with the true height: {errors}", flush=True)
    all_ = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    print(f"|speed error| (m/s) over {len(all_['speed'])} frames of {len(rows)} shards: median, mean")
    for name in READINGS:
        for label, h in (("true height", all_["height"]), (f"assumed height {args.assumed_height} m",
                                                           args.assumed_height)):
            err = np.abs(all_[name] * h / PAIR_DT_S - all_["speed"])
            print(f"  {name:11s} {label:22s} {np.median(err):5.2f}  {err.mean():5.2f}   "
                  f"read as standing still: {np.mean(all_[name] == 0):.2f}")
    print(f"  volume cost: {1e3 * all_['seconds'].mean():.1f} ms per frame on one thread")
    guess = np.abs(all_["speed"] - np.median(all_["speed"]))
    print(f"  {'the median speed, for every frame':34s} {np.median(guess):5.2f}  {guess.mean():5.2f}")


if __name__ == "__main__":
    main()
