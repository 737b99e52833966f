"""Can the camera's height be read from lane widths? A parameter-free reading of the road camera's frames.

A lane boundary at lateral offset X crosses row r of the calibrated model frame (``y = r - cy`` rows below the
horizon) at column ``cx + f * psi + X * y / h`` for a camera at height h and heading psi to the lane, so on every
row two boundaries W apart are ``W * y / h`` columns apart, whatever the heading, the lateral offset or (to first
order, near the car) the curvature. For each row the high-passed luma is correlated with itself shifted by
``k * y`` columns, for each k (lane width per metre of height); summed over the rows of the near road, the best k
gives ``h = W / k`` with the lane width W assumed. Nothing is learnt, so it measures what the frames hold.

Usage: python bench/height_probe.py SHARD_DIR [--stride 20] [--lane-width 3.55] [--rows 14 70]
(the package importable as ``sunnypilot_training``)
"""

from __future__ import annotations

import argparse

import numpy as np

from sunnypilot_training.contract.camera import MODEL_CAMERAS
from sunnypilot_training.contract.constants import IMG_SHAPE
from sunnypilot_training.episodes.shards import find_shards, open_shard, read_frames

K_GRID = np.arange(1.2, 5.0, 0.05)  # lane width per metre of camera height: 3.0 m at 2.5 m to 3.9 m at 0.8 m
MAX_LAG_PX = 200  # lags up to this many of the sub-grid's 256 columns (longer ones compare too few pixels)


def lane_spacing_curve(luma: np.ndarray, cy: float, rows: tuple[int, int], half_window: int = 15) -> np.ndarray:
    """(len(K_GRID),) mean normalised autocorrelation of the high-passed rows ``rows`` (below the horizon) of one
    luma sub-grid (H, W) at lag ``k * y`` for every k of K_GRID."""
    kernel = np.ones(2 * half_window + 1) / (2 * half_window + 1)
    total, count = np.zeros(len(K_GRID)), np.zeros(len(K_GRID))
    for y in range(rows[0], rows[1], 2):
        r = int(round(cy + y))
        if r >= luma.shape[0]:
            break
        p = luma[r].astype(np.float64)
        p = p - np.convolve(np.pad(p, half_window, mode="edge"), kernel, mode="valid")
        energy = (p * p).mean() + 1e-3
        for i, lag in enumerate(np.rint(K_GRID * (r - cy)).astype(int)):
            if 0 < lag < MAX_LAG_PX:
                total[i] += (p[:-lag] * p[lag:]).mean() / energy
                count[i] += 1
    return total / np.maximum(count, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards")
    ap.add_argument("--stride", type=int, default=20, help="every n-th frame of each shard")
    ap.add_argument("--lane-width", type=float, default=3.55, help="assumed lane width (m)")
    ap.add_argument("--rows", type=int, nargs=2, default=(14, 70), help="rows below the horizon (Y sub-grid)")
    args = ap.parse_args()
    _, _, cy = MODEL_CAMERAS["img"].intrinsics_at(IMG_SHAPE[3])  # the horizon row of the luma sub-grid
    scenario, height, reading = [], [], []
    for path in find_shards([args.shards]):
        shard = open_shard(path)
        frames = read_frames(shard, "img", np.arange(8, shard.n_frames, args.stride))
        for frame in frames:  # (6, H/2, W/2): channel 0 is the luma sub-grid the motion volume reads
            scenario.append(shard.attrs["scenario"])
            height.append(float(shard.attrs["cameras"]["height_m"]))
            reading.append(args.lane_width / K_GRID[lane_spacing_curve(frame[0], cy, args.rows).argmax()])
    scenario, height, reading = np.asarray(scenario), np.asarray(height), np.asarray(reading)
    guess = np.median(height)
    print(f"camera height (m) over {len(height)} frames, |error|: median, mean "
          f"(lane width {args.lane_width} m assumed, rows {args.rows[0]}..{args.rows[1]} below the horizon)")
    for name in [*sorted(set(scenario)), "all"]:
        m = np.ones(len(height), bool) if name == "all" else scenario == name
        err, base = np.abs(reading[m] - height[m]), np.abs(guess - height[m])
        print(f"  {name:20s} read {np.median(err):.3f} {err.mean():.3f}   guessing {guess:.2f} m: "
              f"{np.median(base):.3f} {base.mean():.3f}   within 0.05 m: {np.mean(err < 0.05):.2f}")


if __name__ == "__main__":
    main()
