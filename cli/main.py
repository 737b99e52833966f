"""``sptrain``: one entry point, one sub-command per job.

Exit codes: 0 ok, 2 usage or validation error (one line on stderr), 1 unexpected error (traceback).
The sub-commands are listed in ``cli/commands.py``; each module there has ``register(subparsers)``, which adds its
parser with a ``func`` that runs the command. Only the chosen command's module is imported (it imports what it
needs at its top), so ``sptrain --help`` stays fast and ``sptrain doctor`` runs before numpy and torch exist
(``windows/setup_env.ps1`` asks ``sptrain doctor --torch-index`` which torch build to install).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import run_guarded
from .commands import COMMANDS


def build_parser(command: str | None = None, only_listed: bool = False) -> argparse.ArgumentParser:
    """The parser with every sub-command configured, or only ``command`` (the others listed by name and help);
    ``only_listed``: none configured (for ``sptrain --help``)."""
    parser = argparse.ArgumentParser(
        prog="sptrain",
        description="Train driving models for sunnypilot/openpilot modeld: simulate, train, export, install.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        if only_listed or (command is not None and name != command):
            sub.add_parser(name, help=help_text)
        else:
            # the chosen command's module only: its imports (torch, zarr, ...) are that command's
            importlib.import_module(f"{__package__}.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    known = command in COMMANDS
    parser = build_parser(command if known else None, only_listed=not known)
    args = parser.parse_args(argv)  # argparse exits 2 on usage errors
    args.argv = argv  # for reports: the exact command
    return run_guarded(f"sptrain {args.command}", args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
