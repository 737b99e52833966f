"""``sptrain inspect PATH``: describe a shard (more artifact kinds arrive with export)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("inspect", help="describe a shard", description="Describe a Zarr shard: keys, "
                            "shapes, dtypes, attributes, duration and label statistics.")
    parser.add_argument("path", help="a shard directory (*.zarr)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.suffix == ".zarr" or (path / "zarr.json").exists():
        from ..collector.shard_report import shard_report

        print(shard_report(path))
        return 0
    raise ConfigError(f"{path}: not a shard (*.zarr directory); inspect takes a shard")
