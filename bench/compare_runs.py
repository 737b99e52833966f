"""Two pipeline runs on the same test episodes, compared episode by episode: for each metric the means, the mean
paired difference (B - A) with its standard error, and the share of episodes where B is better (lower). Paired
differences remove most of the spread between episodes, which the means ± standard deviations of REPORT.md keep.

Usage: python bench/compare_runs.py RUN_A RUN_B [--split test]   (RUN_* are pipeline output directories)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

METRICS = ("plan_ade_2s", "plan_ade_5s", "plan_ade_10s", "lane_left_err_10m", "lane_left_err_30m",
           "lane_left_err_60m", "lane_right_err_30m", "lane_right_err_60m", "plan_speed_err_mps", "pose_speed_err_mps",
           "action_lat_accel_err_mps2", "action_long_accel_err_mps2")


def episodes(run: Path, split: str) -> dict[str, dict]:
    path = run / "evaluation.json"
    if not path.is_file():
        sys.exit(f"{path}: not found; expected a pipeline output directory whose evaluate stage has run")
    data = json.loads(path.read_text())
    if split not in data:
        sys.exit(f"{path}: no split {split!r} (found {sorted(data)})")
    return {ep["shard"]: ep for ep in data[split]["episodes"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    a, b = episodes(args.run_a, args.split), episodes(args.run_b, args.split)
    shared = sorted(set(a) & set(b))
    if not shared:
        sys.exit(f"{args.run_a} and {args.run_b} share no {args.split} episode; compare runs on the same test seeds")
    print(f"{len(shared)} shared {args.split} episodes; B - A (negative: B better)")
    print(f"{'metric':22s} {'A':>7s} {'B':>7s} {'B - A':>8s} {'s.e.':>6s}  B better")
    for key in METRICS:
        x = np.array([a[s].get(key, np.nan) for s in shared], float)
        y = np.array([b[s].get(key, np.nan) for s in shared], float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 2:
            continue
        d = y[ok] - x[ok]
        se = d.std(ddof=1) / np.sqrt(ok.sum())
        print(f"{key:22s} {x[ok].mean():7.2f} {y[ok].mean():7.2f} {d.mean():+8.2f} {se:6.2f}"
              f"  {np.mean(d < 0):.2f} of {ok.sum()}")


if __name__ == "__main__":
    main()
