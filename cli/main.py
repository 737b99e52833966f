"""``sptrain``: one entry point, one sub-command per job.

Exit codes: 0 ok, 2 usage or validation error (one line on stderr), 1 unexpected error (traceback).
Sub-command modules expose ``register(subparsers)`` which adds a parser whose ``func`` runs the command;
heavy imports (torch, zarr, tinygrad) happen inside the command, so ``sptrain --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import USER_ERRORS
from . import contract_cmd, doctor_cmd

COMMANDS = (contract_cmd, doctor_cmd)

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2


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
    try:
        code = args.func(args)
    except USER_ERRORS as exc:
        print(f"sptrain {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"sptrain {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: show everything
        traceback.print_exc()
        print(f"sptrain {args.command}: unexpected error (a bug); the traceback is above", file=sys.stderr)
        return EXIT_UNEXPECTED
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
