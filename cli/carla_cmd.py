"""``sptrain carla start|stop|status``: the CARLA server launcher."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..collector.carla_backend import launcher
from ..collector.carla_backend.client import DEFAULT_HOST, DEFAULT_PORT, PORT_STRIDE
from ..collector.carla_backend.launcher import DEFAULT_START_TIMEOUT_S, QUALITIES
from .commands import help_of

NAME = "carla"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help=help_of(NAME),
        description="Start CARLA off-screen (CarlaUE4 / CarlaUnreal under CARLA_ROOT or --carla-root) and wait "
                    "until it answers; stop the servers this command started; or show what answers.")
    parser.add_argument("action", choices=("start", "stop", "status"), help="what to do")
    parser.add_argument("--carla-root", help="the CARLA folder (default: the CARLA_ROOT environment variable)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"server host (default {DEFAULT_HOST}; start: local only)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"RPC port of the first server (default {DEFAULT_PORT}); stop: only this port if given")
    parser.add_argument("--workers", type=int, default=1,
                        help=f"number of servers, on port, port+{PORT_STRIDE}, ... (as `collect --workers`)")
    parser.add_argument("--quality", default="Low", choices=QUALITIES, help="rendering quality (default Low)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT_S,
                        help=f"seconds to wait for a started server to answer (default {DEFAULT_START_TIMEOUT_S:g})")
    parser.add_argument("--state-dir", help="where started servers are recorded (default: the user cache folder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    port = DEFAULT_PORT if args.port is None else args.port
    state_dir = Path(args.state_dir) if args.state_dir else None
    if args.action == "start":
        lines, _ = launcher.start(args.carla_root, args.host, port, args.workers, args.quality, args.timeout,
                                  state_dir)
    elif args.action == "stop":
        lines = launcher.stop(args.port, state_dir)
    else:
        lines = launcher.status(args.host, port, args.workers, state_dir)
    print("\n".join(lines))
    return 0
