"""Collection speed of the built-in simulator on one core, with the profile of where time goes.

Usage: python bench/bench_collect.py [--scenario highway_follow] [--episodes 2] [--seconds 30]

Runs the real collector (simulate, label, render both cameras, NV12 pack, write shards) in this process and prints
frames/s and the share of each stage.
"""

from __future__ import annotations

import argparse
import tempfile

from sunnypilot_training.collector.collect import collect, schedule_episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="highway_follow")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        specs = schedule_episodes("builtin", args.scenario, args.episodes, out, seed=1, duration_s=args.seconds)
        summary = collect(specs, workers=1, progress=False)
        print(summary.format())
        totals = summary.stage_totals()
        frames = summary.frames
        print("| stage | ms per frame | share |\n|---|---|---|")
        busy = sum(totals.values())
        for stage, seconds in totals.items():
            print(f"| {stage} | {1e3 * seconds / frames:.2f} | {100 * seconds / busy:.0f} % |")
        print(f"| total | {1e3 * busy / frames:.2f} | {frames / summary.wall_s:.0f} frames/s |")


if __name__ == "__main__":
    main()
