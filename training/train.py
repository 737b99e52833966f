"""Script form of ``sptrain train``: ``python training/train.py --config-name default [key=value ...]``.

Hydra composes ``training/configs/<config-name>.yaml`` with the overrides; works the same under ``torchrun``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from sunnypilot_training.errors import run_guarded
from sunnypilot_training.training.trainer import run_training


def _train(cfg: DictConfig) -> int:
    run_training(cfg)
    return 0


@hydra.main(config_path="configs", config_name="default", version_base="1.3")
def main(cfg: DictConfig) -> None:
    code = run_guarded("train.py", _train, cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
