"""``sptrain pipeline``: the one-shot main job (collect -> train -> export -> evaluate -> install)."""

from __future__ import annotations

import argparse

from ..collector.scenarios import scenario_names
from ..contract.profiles import profile_ids
from .collect_cmd import add_carla_arguments
from .commands import help_of
from .pipeline import PRESETS, QUICK_SCENARIOS, run_pipeline

NAME = "pipeline"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help=help_of(NAME),
        description="The main job: simulate episodes, train the vision model and the diffusion policy, export "
                    "modeld-ready artifacts, evaluate them on held-out episodes against baselines, optionally "
                    "install them, and write REPORT.md. Re-running reuses what exists.")
    parser.add_argument("--simulator", default="builtin", choices=("builtin", "carla", "auto"),
                        help="simulator backend (auto: CARLA when a server answers or a CARLA folder is known, "
                             "else the built-in one, said loudly)")
    parser.add_argument("--scenario", nargs="+", choices=scenario_names(), metavar="NAME",
                        help=f"scenarios to train and test on (default: the preset's mix; quick: "
                             f"{', '.join(QUICK_SCENARIOS)}; full: all); one of {', '.join(scenario_names())}")
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                        help="quick: sized for a 2-core CPU (minutes); full: the base models, for a GPU (hours)")
    parser.add_argument("--train-episodes", type=int, help="training episodes per scenario (default: the preset's)")
    parser.add_argument("--val-episodes", type=int,
                        help="validation episodes per scenario: validation and std calibration (default: the preset's)")
    parser.add_argument("--test-episodes", type=int,
                        help="held-out test episodes per scenario, reported in REPORT.md (default: the preset's)")
    parser.add_argument("--unseen-look-episodes", type=int,
                        help="test episodes per scenario drawn again in the held-out look (built-in simulator; "
                             "0: none; default: the preset's)")
    parser.add_argument("--episode-seconds", type=float,
                        help="seconds each episode of every split records (default: the preset's: quick 10, "
                             "full 50, test episodes 10 and 30)")
    parser.add_argument("--label-tail-seconds", type=float,
                        help="seconds each episode runs on after its last recorded frame, unrendered, so that the "
                             "labels looking 10 s ahead hold on every recorded frame (default: the preset's, 10; "
                             "0: the last 10 s of each episode hold no plan label)")
    parser.add_argument("--workers", type=int,
                        help="collection processes (default: the preset's; CARLA: 1, one server per worker)")
    parser.add_argument("--output-dir", default="artifacts/pipeline", help="everything goes here")
    parser.add_argument("--export-dir", help="where the modeld-named artifacts go (default <output-dir>/export)")
    parser.add_argument("--checkpoint", help="export from this checkpoint (no training)")
    parser.add_argument("--skip-collect", action="store_true", help="use the shards already in <output-dir>/data")
    parser.add_argument("--skip-train", action="store_true", help="use the last checkpoint in <output-dir>/train")
    parser.add_argument("--skip-export", action="store_true", help="stop after training")
    parser.add_argument("--skip-drive", action="store_true", help="no closed-loop road tests after the evaluation")
    parser.add_argument("--on-policy-rounds", type=int, default=0, metavar="K",
                        help="after the first export, K DAgger-style rounds: the latest models drive new training "
                             "episodes (the expert labels them and takes over when the car strays), then train, "
                             "export, evaluate and drive again on everything (built-in simulator; default 0)")
    parser.add_argument("--profile", choices=profile_ids(), default=None,
                        help="contract profile to export and install for (sptrain contract list): the 2026 profiles "
                             "add their runtime's files to the split set and install where that runtime reads them; "
                             "training builds the networks the profile packages (op-0.10.1 for every 2026 profile); "
                             "default: the trained checkpoint's own profile (op-0.10.1)")
    parser.add_argument("--install", action="store_true", help="install the exported models (with a smoke test)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--sunnypilot-root", help="install target: a sunnypilot checkout")
    target.add_argument("--models-dir", help="install target: a model directory")
    parser.add_argument("--seed", type=int, default=0,
                        help="base seed (validation uses seed + 1000003, the test episodes seed + 2000003)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_carla_arguments(parser, prefix="carla-")
    parser.add_argument("--carla-root", help="CARLA folder to start servers from when none answers "
                                             "(default: CARLA_ROOT)")
    parser.add_argument("--keep-carla-running", action="store_true",
                        help="leave the CARLA servers the pipeline started running afterwards")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to training (key=value)")
    parser.set_defaults(func=run_pipeline)
