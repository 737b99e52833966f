"""``sptrain drive (EXPORT_DIR | --driver NAME) --suite SUITE --out DIR``: closed-loop road tests."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..driving.drive_report import write_drive_report
from ..driving.drivers import REFERENCE_DRIVERS
from ..driving.road_tests import driver_spec, run_road_tests, selected_suites, summary_line, write_drive_json
from ..driving.suites import suite_names
from ..errors import ConfigError
from ..evaluation.model_runner import RUNTIMES
from .commands import help_of

NAME = "drive"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help=help_of(NAME),
        description="Drive the built-in simulator in closed loop: an exported model (run as modeld runs it, through "
                    "openpilot-style controls) or a reference driver steers the car, the simulator renders what the "
                    "car then sees, and so on. Writes drive.json, DRIVE.md, a top-down plot per suite and videos of "
                    "the worst runs. The suites are described in docs/driving.md.")
    parser.add_argument("export_dir", nargs="?", help="an export folder (sptrain export --out-dir): the model to test")
    parser.add_argument("--driver", choices=REFERENCE_DRIVERS, help="a reference driver instead of a model")
    parser.add_argument("--suite", default="all", choices=(*suite_names(), "all"), help="which suite (default all)")
    parser.add_argument("--runs", type=int, help="the first N runs of each suite (default: all of them)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the runs' episodes (default 0)")
    parser.add_argument("--seconds", type=float, help="cut every run to this many seconds (default: the suite's)")
    parser.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES,
                        help="run the ONNX files with onnxruntime (default) or the tinygrad pickles")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel processes (default 1)")
    parser.add_argument("--videos", type=int, default=2, help="videos of the worst runs per suite (default 2)")
    parser.add_argument("--out", required=True, type=Path, help="folder for drive.json, DRIVE.md, plots, videos")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1 or args.videos < 0:
        raise ConfigError(f"--workers {args.workers} / --videos {args.videos}: expected >= 1 / >= 0")
    spec = driver_spec(args.export_dir, args.driver, args.runtime)
    start = time.perf_counter()
    report = run_road_tests(spec, selected_suites(args.suite), args.runs, args.seed, args.workers,
                            progress=not args.no_progress, duration_s=args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    write_drive_json(report, args.out)
    files = write_drive_report(report, spec, args.out, args.videos)
    print(f"{spec.label}: {summary_line(report)} ({time.perf_counter() - start:.0f} s)")
    print(f"wrote {args.out / 'drive.json'}, {args.out / 'DRIVE.md'}, {len(files['plots'])} plots, "
          f"{len(files['videos'])} videos")
    return 0
