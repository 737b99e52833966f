"""``sptrain collect``: simulate episodes into Zarr shards."""

from __future__ import annotations

import argparse

from ..collector import collect


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("collect", help="simulate driving episodes into Zarr shards",
                            description="Simulate driving episodes and write one Zarr shard per episode. "
                                        "Complete shards are skipped when the command is run again.")
    collect.add_arguments(parser)
    parser.set_defaults(func=collect.run)
