"""``sptrain collect``: simulate episodes into Zarr shards (also ``python collector/collect_data.py``).

Also the CARLA server flags (``--host``, ``--port``, ...), which ``sptrain pipeline`` shares with a ``carla-``
prefix.
"""

from __future__ import annotations

import argparse
import sys

from ..collector.carla_backend.carla_backend import CarlaOptions
from ..collector.carla_backend.client import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_S, DEFAULT_TM_PORT, PORT_STRIDE
from ..collector.collect import DEFAULT_EPISODE_SECONDS, SIMULATORS, collect, schedule_episodes
from ..collector.scenarios import scenario_names
from ..driving.on_policy import on_policy_backend
from ..errors import ConfigError
from .collect_choices import collect_seed, resolve_simulator
from .commands import help_of

NAME = "collect"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Simulate driving episodes and write one Zarr shard per episode. "
                                        "Complete shards are skipped when the command is run again.")
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--simulator", default="builtin", choices=(*SIMULATORS, "auto"),
                        help="simulator backend (auto: CARLA when a server answers at --host/--port, else the "
                             "built-in one, with a warning)")
    parser.add_argument("--scenario", required=True, help=f"scenario: {', '.join(scenario_names())}")
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (one shard each)")
    parser.add_argument("--output", required=True, help="directory for the shards")
    parser.add_argument("--seed", type=int, default=None,
                        help="base seed; episode k of seed S is reproducible (default 0; for an output folder named "
                             "val, valid or validation 1000003, the pipeline's validation seed)")
    parser.add_argument("--episode-seconds", type=float, default=DEFAULT_EPISODE_SECONDS,
                        help=f"seconds each episode records (default {DEFAULT_EPISODE_SECONDS:g}; without a label "
                             f"tail its last 10 s hold no plan label)")
    parser.add_argument("--label-tail-seconds", type=float, default=0.0,
                        help="seconds the world runs on after the last recorded frame, unrendered, so that the labels "
                             "looking ahead hold on every recorded frame (default 0; 10 labels every frame: the "
                             "plan looks 10 s ahead)")
    parser.add_argument("--workers", type=int, default=1,
                        help="parallel processes (default 1); with CARLA, one server per worker")
    parser.add_argument("--driver", default="expert",
                        help="who drives: expert (default), or model:EXPORT_DIR - on-policy episodes of the built-in "
                             "simulator: the exported model drives, the expert takes over when the car strays and "
                             "labels every frame with what it would drive from there (DAgger; docs/models.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_carla_arguments(parser)


def add_carla_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The CARLA server options: --host, --port, ... (``prefix`` 'carla-': --carla-host, ... for the pipeline);
    the timeout is --carla-timeout either way."""
    group = parser.add_argument_group("CARLA server (with --simulator carla)")
    group.add_argument(f"--{prefix}host", default=DEFAULT_HOST, help=f"CARLA host (default {DEFAULT_HOST})")
    group.add_argument(f"--{prefix}port", type=int, default=DEFAULT_PORT,
                       help=f"CARLA RPC port (default {DEFAULT_PORT})")
    group.add_argument(f"--{prefix}tm-port", type=int, default=DEFAULT_TM_PORT,
                       help=f"Traffic Manager port (default {DEFAULT_TM_PORT}); worker i uses this + i")
    group.add_argument(f"--{prefix}base-port", type=int, default=None,
                       help=f"with --workers N: the servers listen on this, +{PORT_STRIDE}, +{2 * PORT_STRIDE}, "
                            f"... (default: the port)")
    group.add_argument("--carla-timeout", type=float, default=DEFAULT_TIMEOUT_S,
                       help=f"seconds to wait for the server's answers (default {DEFAULT_TIMEOUT_S:g})")
    group.add_argument(f"--{prefix}retries", type=int, default=2,
                       help="times a failed episode is run again after a lost connection (default 2)")


def carla_options(args: argparse.Namespace, workers: int, prefix: str = "") -> CarlaOptions:
    """CarlaOptions from the parsed flags of :func:`add_carla_arguments` (same ``prefix``)."""

    def flag(name: str):
        return getattr(args, (prefix + name).replace("-", "_"))

    base, retries = flag("base-port"), flag("retries")
    if retries < 0:
        raise ConfigError(f"--{prefix}retries {retries}; expected 0 or more")
    return CarlaOptions(host=flag("host"), base_port=flag("port") if base is None else base, tm_port=flag("tm-port"),
                        workers=workers, timeout_s=args.carla_timeout, retries=retries)


def run(args: argparse.Namespace) -> int:
    args.simulator, note = resolve_simulator(args, prefix="", can_start=False)
    if note:
        print(f"{'WARNING' if args.simulator == 'builtin' else 'NOTE'}: {note}", file=sys.stderr)
    args.seed, note = collect_seed(args.output, args.seed)
    if note:
        print(f"WARNING: {note}", file=sys.stderr)
    specs = schedule_episodes(args.simulator, args.scenario, args.episodes, args.output, args.seed,
                              args.episode_seconds, args.label_tail_seconds)
    options = carla_options(args, args.workers) if args.simulator == "carla" else None
    backend = on_policy_backend(args.driver)
    if backend is not None and args.simulator != "builtin":
        raise ConfigError(f"--driver {args.driver}: on-policy episodes need --simulator builtin (the expert labels "
                          f"them from the built-in world's truth)")
    if backend is not None and args.label_tail_seconds:
        raise ConfigError(f"--driver {args.driver} with --label-tail-seconds {args.label_tail_seconds:g}: the model "
                          f"needs every frame to drive, so on-policy episodes have no unrendered tail; drop the flag")
    summary = collect(specs, workers=args.workers, progress=not args.no_progress, options=options, backend=backend)
    print(summary.format())
    summary.raise_for_failures()
    return 0


def build_parser(prog: str = "collect_data.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Collect simulated driving episodes into Zarr shards.")
    add_arguments(parser)
    return parser
