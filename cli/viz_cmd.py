"""``sptrain viz SHARD --frame N --out file.png``: labels drawn on the frames."""

from __future__ import annotations

import argparse

from ..episodes.pictures import render_viz
from .commands import help_of

NAME = "viz"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Draw lane lines, road edges, the plan path and lead boxes on the road "
                                        "(img) and wide (big_img) frames of a shard.")
    parser.add_argument("shard", help="a shard directory (*.zarr)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--frame", type=int, help="one frame index (default 0)")
    group.add_argument("--frames", help="a strip of frames a:b[:step] (at most 12 rows are drawn)")
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = render_viz(args.shard, args.out, frame=args.frame, frames=args.frames)
    print(f"wrote {out}")
    return 0
