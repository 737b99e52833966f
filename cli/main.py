"""``sptrain``: one entry point, one sub-command per job.

Exit codes: 0 ok, 2 usage or validation error (one line on stderr), 1 unexpected error (traceback).
Sub-command modules expose ``register(subparsers)`` which adds a parser whose ``func`` runs the command;
heavy imports (torch, zarr, tinygrad) happen inside the command, so ``sptrain --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import run_guarded

# sub-command modules, in help order; imported when the parser is built (`doctor --torch-index` builds only its
# own, so it runs before numpy and torch are installed: windows/setup_env.ps1 asks it which torch build to get)
COMMANDS = ("contract_cmd", "doctor_cmd", "collect_cmd", "inspect_cmd", "viz_cmd", "train_cmd", "export_cmd",
            "install_cmd", "pipeline_cmd", "carla_cmd")


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sptrain",
        description="Train driving models for sunnypilot/openpilot modeld: simulate, train, export, install.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    light = argv[:1] == ["doctor"] and "--torch-index" in argv
    parser = build_parser(("doctor_cmd",) if light else COMMANDS)
    args = parser.parse_args(argv)  # argparse exits 2 on usage errors
    args.argv = argv  # for reports: the exact command
    return run_guarded(f"sptrain {args.command}", args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
