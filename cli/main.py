"""``sptrain``: one entry point, one sub-command per job.

Exit codes: 0 ok, 2 usage or validation error (one line on stderr), 1 unexpected error (traceback).
Sub-command modules expose ``register(subparsers)`` which adds a parser whose ``func`` runs the command;
heavy imports (torch, zarr, tinygrad) happen inside the command, so ``sptrain --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import run_guarded
from . import (
    carla_cmd,
    collect_cmd,
    contract_cmd,
    doctor_cmd,
    export_cmd,
    inspect_cmd,
    install_cmd,
    pipeline_cmd,
    train_cmd,
    viz_cmd,
)

COMMANDS = (contract_cmd, doctor_cmd, collect_cmd, inspect_cmd, viz_cmd, train_cmd, export_cmd, install_cmd,
            pipeline_cmd, carla_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sptrain",
        description="Train driving models for sunnypilot/openpilot modeld: simulate, train, export, install.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 on usage errors
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for reports: the exact command
    return run_guarded(f"sptrain {args.command}", args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
