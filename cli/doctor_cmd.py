"""``sptrain doctor``: what this machine offers the toolkit, honestly.

Exit 0 with warnings for anything optional that is missing (no GPU, no CARLA client, no clang); non-zero only
when the package itself is broken (the contract does not load or disagrees with itself).

The installer queries print one line each and run before torch and numpy are installed (windows/setup_env.ps1
asks them): ``--torch-index [--compute-capability X.Y [--driver-version V] | --cuda | --cpu]`` the pip index URL of
the torch build for this GPU and driver, ``--torch-requirement`` this package's torch requirement,
``--torch-matches URL`` whether the installed torch is that build (yes / no), ``--torch-verify URL`` (after
installing; imports torch) what is installed, and ``--carla-root DIR`` the CARLA folder's launcher, family and the
client to install, as JSON (see cli/torch_index.py and collector/carla_backend/client_choice.py).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import os
import platform
import shutil
import sys
from pathlib import Path

from .. import __version__
from ..collector.carla_backend.client_choice import choose_client
from ..errors import ConfigError, SunnypilotTrainingError
from .commands import help_of
from .torch_index import installed_torch, torch_index_url, torch_matches, torch_requirement, verify_torch

NAME = "doctor"
MIN_FREE_DISK_GB = 10.0
REPO_ROOT = Path(__file__).resolve().parents[1]  # the repository root is the package
# Without Windows long paths every path must stay under 260 characters; the deepest file of the venv (torch's
# licences) lies about 200 characters below the repository root, so the root must stay shorter than this.
LONG_PATH_ROOT_CHARS = 55
LONG_PATHS_KEY = r"SYSTEM\CurrentControlSet\Control\FileSystem"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Report what this machine offers the toolkit; warn about what is missing.")
    parser.add_argument("--output-dir", default="artifacts", help="where outputs go (free disk is checked there)")
    queries = parser.add_argument_group("installer queries (each prints one line and exits; no torch or numpy needed "
                                        "except --torch-verify)")
    query = queries.add_mutually_exclusive_group()
    query.add_argument("--torch-index", action="store_true", help="print the pip index URL of the torch build for "
                       "this GPU (compute capability and driver read with nvidia-smi; no GPU: the CPU build)")
    query.add_argument("--torch-requirement", action="store_true", help="print this package's torch requirement "
                       "(give it to pip with the index URL, so the build stays)")
    query.add_argument("--torch-matches", metavar="URL", help="print yes when the installed torch is the build of "
                       "this index URL (or tag: cpu, cu126, cu130) within the requirement, else no")
    query.add_argument("--torch-verify", metavar="URL", help="import torch and check it is that build (and, for a "
                       "CUDA build, sees a GPU); print what is installed, or exit 2 saying what is wrong")
    query.add_argument("--carla-root", metavar="DIR", help="print, as one JSON line, the CARLA launcher in DIR (or one "
                       "folder down), its family and release, and the client to install for this Python; exit 2 "
                       "with the fix when no client fits")
    which = queries.add_mutually_exclusive_group()
    which.add_argument("--compute-capability", metavar="X.Y", help="with --torch-index: the GPU's compute capability "
                       "(e.g. 8.6 or 12.0) instead of asking nvidia-smi")
    which.add_argument("--cuda", action="store_true", help="with --torch-index: a CUDA build is wanted; no usable GPU "
                       "is an error instead of the CPU build")
    which.add_argument("--cpu", action="store_true", help="with --torch-index: the CPU build")
    queries.add_argument("--driver-version", metavar="V", help="with --torch-index --compute-capability: the NVIDIA "
                         "driver version (e.g. 580.88), checked against the build's minimum")
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
    elif root:
        try:
            choice = choose_client(Path(root))
        except SunnypilotTrainingError as exc:
            warnings.append(f"CARLA_ROOT: {exc}")
        else:
            release = choice.as_dict()["version"]
            lines.append(f"  CARLA {release} ({choice.folder.family.engine}): {choice.folder.executable}")
            if version is not None and version.split("+")[0] != release:
                warnings.append(f"the CARLA client is {version} but the server in CARLA_ROOT is {release}: install "
                                f"its client (pip install --force-reinstall --no-deps {choice.requirement})")
    return lines, warnings


def long_paths_enabled() -> bool | None:
    """Windows: whether LongPathsEnabled is set (paths past 260 characters work); None elsewhere or unreadable."""
    if sys.platform != "win32":
        return None
    try:
        import winreg  # a Windows-only module

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, LONG_PATHS_KEY) as key:
            return bool(winreg.QueryValueEx(key, "LongPathsEnabled")[0])
    except OSError:
        return False  # the value is absent: long paths are off


def long_path_lines(enabled: bool | None, root: Path = REPO_ROOT) -> tuple[list[str], list[str]]:
    """What Windows' path length limit means here: a line, and a warning when the repository root is too long."""
    if enabled is None:
        return [], []
    if enabled:
        return ["Windows long paths: on (LongPathsEnabled=1)"], []
    lines = ["Windows long paths: off (paths must stay under 260 characters)"]
    if len(str(root)) <= LONG_PATH_ROOT_CHARS:
        return lines, []
    return lines, [f"the repository root {root} is {len(str(root))} characters long and Windows long paths are off: "
                   f"files in venv\\ (torch's deepest lie ~200 characters down) would pass 260 characters; move the "
                   f"repository to a short folder (under {LONG_PATH_ROOT_CHARS} characters, e.g. C:\\sp\\training) or "
                   f"turn long paths on (docs/windows.md, Before you start)"]


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


def _index_options(args: argparse.Namespace) -> list[str]:
    given = [("--cpu", args.cpu), ("--cuda", args.cuda), ("--compute-capability", args.compute_capability is not None),
             ("--driver-version", args.driver_version is not None)]
    return [flag for flag, present in given if present]


def _answer_query(args: argparse.Namespace) -> str | None:
    """The one line an installer query prints, or None when none was asked."""
    options = _index_options(args)
    if options and not args.torch_index:
        flag = options[0]
        raise ConfigError(f"{flag} only applies with --torch-index (sptrain doctor --torch-index {flag} ...)")
    if args.driver_version is not None and args.compute_capability is None:
        raise ConfigError("--driver-version goes with --compute-capability (without it nvidia-smi gives both)")
    if args.torch_index:
        for warning in long_path_lines(long_paths_enabled())[1]:  # installing torch is where long paths break
            print(f"sptrain doctor: warning: {warning}", file=sys.stderr)
        return torch_index_url(args.compute_capability, cpu=args.cpu, driver_version=args.driver_version,
                               require_gpu=args.cuda)
    if args.torch_requirement:
        return torch_requirement()
    if args.torch_matches is not None:
        matches, why = torch_matches(args.torch_matches, installed_torch(), torch_requirement())
        print(f"sptrain doctor: {why}", file=sys.stderr)
        return "yes" if matches else "no"
    if args.torch_verify is not None:
        return verify_torch(args.torch_verify)
    if args.carla_root is not None:
        choice = choose_client(Path(args.carla_root).expanduser().resolve())
        print(f"sptrain doctor: CARLA {choice.as_dict()['version']} ({choice.folder.family.engine}) at "
              f"{choice.folder.root}; client: {choice.requirement} ({choice.source})", file=sys.stderr)
        return json.dumps(choice.as_dict())
    return None


def run(args: argparse.Namespace) -> int:
    answer = _answer_query(args)
    if answer is not None:
        print(answer)
        return 0
    print(f"sunnypilot-training {__version__}")
    print(f"Python: {sys.version.split()[0]} ({platform.system()} {platform.machine()})")
    warnings: list[str] = []
    if sys.version_info[:2] != (3, 11):
        warnings.append(f"Python {sys.version_info[0]}.{sys.version_info[1]}: the toolkit is tested on 3.11")
    for probe in (_torch_lines, _tinygrad_lines, _carla_lines):
        lines, warns = probe()
        print("\n".join(lines))
        warnings += warns
    for lines, warns in (_disk_lines(args.output_dir), long_path_lines(long_paths_enabled())):
        if lines:
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
