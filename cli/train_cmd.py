"""``sptrain train [key=value ...]``: staged training with the Hydra configs of training/configs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.config import load_config, path_override
from ..training.trainer import run_training
from .commands import help_of

NAME = "train"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Train (vision -> feature cache -> policy) with Hydra overrides, e.g. "
                                        "`sptrain train dataset.train_path=data/train dataset.val_path=data/val "
                                        "training.vision_epochs=3 model=base`. Under torchrun use "
                                        "`torchrun --nproc_per_node=N training/train.py ...`.")
    parser.add_argument("--config-name", default="default", help="config file in training/configs (default: default)")
    parser.add_argument("--data", help="a folder holding train/ and val/ shard folders (sets dataset.train_path and "
                                       "dataset.val_path)")
    parser.add_argument("--output-dir", help="where the run goes (sets output_dir)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the newest checkpoint in the output folder exactly "
                             "(training.resume=true checkpoint=latest)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides key=value (given last, they win)")
    parser.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The Hydra overrides the flags stand for (paths quoted for Hydra), then the explicit ones."""
    out = []
    if args.data:
        out += [path_override("dataset.train_path", Path(args.data) / "train"),
                path_override("dataset.val_path", Path(args.data) / "val")]
    if args.output_dir:
        out.append(path_override("output_dir", args.output_dir))
    if args.resume:
        out += ["training.resume=true", "checkpoint=latest"]
    return out + list(args.overrides)


def run(args: argparse.Namespace) -> int:
    run_training(load_config(overrides_from(args), args.config_name))
    return 0
