"""``sptrain doctor``: what this machine offers the toolkit, honestly.

Exit 0 with warnings for anything optional that is missing (no GPU, no CARLA client, no clang); non-zero only
when the package itself is broken (the contract does not load or disagrees with itself).

``sptrain doctor --torch-index [--compute-capability X.Y | --cpu]`` prints only the pip index URL of the torch build
for this machine's GPU (see cli/torch_index.py); it runs before torch and numpy are installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import os
import platform
import shutil
import sys
from pathlib import Path

from .. import __version__
from ..errors import ConfigError
from .commands import help_of
from .torch_index import torch_index_url

NAME = "doctor"
MIN_FREE_DISK_GB = 10.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Report what this machine offers the toolkit; warn about what is missing.")
    parser.add_argument("--output-dir", default="artifacts", help="where outputs go (free disk is checked there)")
    index = parser.add_argument_group("torch wheel index (for installers: prints one URL, nothing else)")
    index.add_argument("--torch-index", action="store_true", help="print the pip index URL of the torch build for "
                       "this GPU (read with nvidia-smi; no GPU: the CPU build) and exit")
    which = index.add_mutually_exclusive_group()
    which.add_argument("--compute-capability", metavar="X.Y", help="with --torch-index: the GPU's compute capability "
                       "(e.g. 8.6 or 12.0) instead of asking nvidia-smi")
    which.add_argument("--cpu", action="store_true", help="with --torch-index: the CPU build")
    parser.set_defaults(func=run)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _torch_lines() -> tuple[list[str], list[str]]:
    lines, warnings = [], []
    try:
        torch = importlib.import_module("torch")
    except ImportError as exc:
        return [f"torch: not importable ({exc})"], ["torch is missing: reinstall the project (pip install -e .)"]
    lines.append(f"torch: {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            lines.append(f"  cuda:{i}: {torch.cuda.get_device_name(i)}, compute capability {major}.{minor}")
    else:
        lines.append("  device: CPU only")
        warnings.append("no CUDA device: training runs on the CPU (use --preset quick / model=tiny)")
    return lines, warnings


def _tinygrad_lines() -> tuple[list[str], list[str]]:
    version = _version("tinygrad")
    clang = shutil.which("clang")
    lines = [f"tinygrad: {version or 'not installed'}; CPU compiler clang: {clang or 'not found'}"]
    warnings = []
    if version is None:
        warnings.append("tinygrad is missing: export cannot build *_tinygrad.pkl (pip install -e .)")
    if clang is None:
        warnings.append("clang not found: tinygrad's CPU backend (DEV=CPU) cannot compile; install clang")
    return lines, warnings


def _carla_lines() -> tuple[list[str], list[str]]:
    version = _version("carla")
    root = os.environ.get("CARLA_ROOT")
    lines = [f"CARLA client: {version or 'not installed'}", f"CARLA_ROOT: {root or 'not set'}"]
    warnings = []
    if version is None:
        warnings.append("CARLA client not installed: only the built-in simulator is available "
                        "(pip install -e .[carla])")
    if root and not Path(root).is_dir():
        warnings.append(f"CARLA_ROOT={root} is not a directory")
    return lines, warnings


def _disk_lines(output_dir: str) -> tuple[list[str], list[str]]:
    path = Path(output_dir).resolve()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_gb = shutil.disk_usage(probe).free / 1e9
    warnings = []
    if free_gb < MIN_FREE_DISK_GB:
        warnings.append(f"only {free_gb:.1f} GB free at {probe}; shards and checkpoints need more")
    return [f"free disk at {path}: {free_gb:.1f} GB"], warnings


def _contract_check() -> str | None:
    """None when the contract loads and is self-consistent, else what is broken."""
    try:  # numpy may not be installed yet: the contract is imported only here, where a failure is reported
        from ..contract.metadata import build_metadata  # numpy may be missing: see the line above
        from ..contract.profiles import PROFILES  # numpy may be missing: see the line above

        for profile in PROFILES.values():
            for spec in profile.models.values():
                meta = build_metadata(spec, "doctor")
                last = list(meta["output_slices"].values())[-2]
                if last.stop + spec.pad_width != spec.output_width:
                    return f"{profile.id}/{spec.name}: slices end at {last.stop}, width {spec.output_width}"
    except Exception as exc:  # the package itself is broken
        return f"{type(exc).__name__}: {exc}"
    return None


def _print_torch_index(args: argparse.Namespace) -> int:
    if not args.torch_index:
        given = "--cpu" if args.cpu else "--compute-capability"
        raise ConfigError(f"{given} only applies with --torch-index (sptrain doctor --torch-index {given} ...)")
    print(torch_index_url(args.compute_capability, cpu=args.cpu))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.torch_index or args.cpu or args.compute_capability is not None:
        return _print_torch_index(args)
    print(f"sunnypilot-training {__version__}")
    print(f"Python: {sys.version.split()[0]} ({platform.system()} {platform.machine()})")
    warnings: list[str] = []
    if sys.version_info[:2] != (3, 11):
        warnings.append(f"Python {sys.version_info[0]}.{sys.version_info[1]}: the toolkit is tested on 3.11")
    for probe in (_torch_lines, _tinygrad_lines, _carla_lines):
        lines, warns = probe()
        print("\n".join(lines))
        warnings += warns
    lines, warns = _disk_lines(args.output_dir)
    print("\n".join(lines))
    warnings += warns
    broken = _contract_check()
    for w in warnings:
        print(f"warning: {w}")
    if broken:
        print(f"error: the package is broken: {broken}; reinstall it (pip install -e .)", file=sys.stderr)
        return 1
    print("ok" if not warnings else f"ok with {len(warnings)} warning(s)")
    return 0
