"""``sptrain train [key=value ...]``: staged training with the Hydra configs of training/configs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train the vision model and the diffusion policy",
                            description="Train (vision -> feature cache -> policy) with Hydra overrides, e.g. "
                                        "`sptrain train dataset.train_path=data/train dataset.val_path=data/val "
                                        "training.vision_epochs=3 model=base`. Under torchrun use "
                                        "`torchrun --nproc_per_node=N training/train.py ...`.")
    parser.add_argument("--config-name", default="default", help="config file in training/configs (default: default)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_config
    from ..training.session import run_training

    run_training(load_config(args.overrides, args.config_name))
    return 0
