"""What ``sptrain collect`` and ``sptrain pipeline`` decide alike: the simulator behind ``--simulator auto`` and the
seed of validation episodes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..collector.carla_backend.client import ServerAddress, carla_module, wait_for_server
from ..errors import SimulatorError

VAL_SEED_OFFSET = 1_000_003  # validation episodes use seeds the training episodes never use
TEST_SEED_OFFSET = 2_000_003  # the pipeline's held-out test episodes: seeds neither training nor validation use
ON_POLICY_SEED_OFFSET = 3_000_017  # round k of on-policy episodes uses seed + k * this (new roads every round)
VALIDATION_FOLDERS = ("val", "valid", "validation")  # an output folder of these names holds validation episodes


def resolve_simulator(args: argparse.Namespace, prefix: str = "carla-", can_start: bool = True) -> tuple[str, str]:
    """(simulator, note). ``auto``: CARLA when a server answers or (``can_start``: the pipeline starts servers) a
    CARLA folder is known, else the built-in simulator, with a note that says why. ``prefix``: the CARLA flags'
    prefix ('carla-': --carla-host/--carla-port of the pipeline; '': --host/--port of collect)."""
    if args.simulator != "auto":
        return args.simulator, ""
    host, port = (getattr(args, (prefix + name).replace("-", "_")) for name in ("host", "port"))
    try:
        carla_module()
    except SimulatorError:  # no CARLA client installed
        return "builtin", ("--simulator auto: using the BUILT-IN simulator (the CARLA Python client is not "
                           "installed: pip install -e .[carla], or windows/setup_env.ps1 -CarlaRoot DIR)")
    if wait_for_server(ServerAddress(host, port), 0.0) is not None:
        return "carla", f"--simulator auto: using CARLA (a server answers at {host}:{port})"
    root = getattr(args, "carla_root", None) or os.environ.get("CARLA_ROOT")
    if can_start and root:
        return "carla", "--simulator auto: using CARLA (started from --carla-root / CARLA_ROOT)"
    if root:
        return "builtin", (f"--simulator auto: using the BUILT-IN simulator: no CARLA server answers at {host}:{port} "
                           f"although CARLA is set up (CARLA_ROOT={root}); start it first (sptrain carla start --port "
                           f"{port}; PowerShell: Invoke-Carla -Port {port}) and collect again, or pass --simulator "
                           f"builtin to mean it")
    return "builtin", (f"--simulator auto: using the BUILT-IN simulator (no CARLA server answers at {host}:{port} "
                       f"and neither --carla-root nor CARLA_ROOT is set)")


def collect_seed(output: str | os.PathLike, seed: int | None) -> tuple[int, str]:
    """(seed, note): the given seed; without one, 0, or VAL_SEED_OFFSET for an output folder named val / valid /
    validation, so that validation episodes are never training episodes (as in the pipeline)."""
    if seed is not None:
        return seed, ""
    name = Path(output).name.lower()
    if name in VALIDATION_FOLDERS:
        return VAL_SEED_OFFSET, (f"no --seed for the validation folder {output}: using seed {VAL_SEED_OFFSET} (the "
                                 f"pipeline's validation seed) so that its episodes differ from the training "
                                 f"episodes of seed 0; pass --seed to choose")
    return 0, ""
