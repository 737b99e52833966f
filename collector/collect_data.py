"""Script form of ``sptrain collect``: ``python collector/collect_data.py --scenario NAME --episodes N --output DIR``.

Runs from the repository root once the project is installed (``pip install -e .``); same flags, same exit codes.
"""

from __future__ import annotations

import sys

from sunnypilot_training.cli.collect_cmd import build_parser, run
from sunnypilot_training.errors import run_guarded


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded("collect_data.py", run, args)


if __name__ == "__main__":
    sys.exit(main())
