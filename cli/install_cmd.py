"""``sptrain install``: put exported models into a sunnypilot checkout or a model folder (backup, smoke test, undo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, InstallError
from ..integration.installer import install, restore
from ..integration.runtime_detect import DetectedRuntime, detect_runtime
from ..integration.runtime_install import install_runtime, read_runtime_export, refuse_mismatch
from ..integration.target import SLOTS, InstallTarget, files_in_dir, resolve_target
from ..integration.validate import validate_files
from .commands import help_of

NAME = "install"

FILE_FLAGS = tuple(SLOTS)  # vision_tinygrad ... policy_onnx -> --vision-tinygrad ... --policy-onnx


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help=help_of(NAME),
        description="Install driving_{vision,policy}_tinygrad.pkl and _metadata.pkl (and optionally the ONNX files) "
                    "into a sunnypilot/openpilot checkout (selfdrive/modeld/models/) or a model folder. The files are "
                    "validated first; every replaced file is backed up into <models dir>/.sptrain_backups/<UTC "
                    "timestamp>/ with a manifest; copies are atomic and sha256-verified; a smoke test in a child "
                    "process runs the installed models like modeld (with the checkout's own parser). Any failure "
                    "puts the originals back. --restore undoes the newest install. With --sunnypilot-root the "
                    "checkout's runtime is read from its modeld code (sptrain contract list shows the runtimes) "
                    "and an export made for another runtime is refused; an export of a 2026 profile (its "
                    "sptrain_export.json) is placed where that runtime reads it and smoke-tested with the "
                    "release's harness.")
    files = parser.add_argument_group("files to install (or --from-dir)")
    for slot in FILE_FLAGS:
        model, kind = slot.split("_")
        files.add_argument("--" + slot.replace("_", "-"), dest=slot, type=Path, metavar="PATH",
                           help=f"driving_{model}{'.onnx' if kind == 'onnx' else f'_{kind}.pkl'}"
                                + (" (optional: lets the device rebuild its own pickle)" if kind == "onnx" else ""))
    files.add_argument("--from-dir", type=Path, metavar="EXPORT_DIR", help="take the modeld-named files from a "
                       "`sptrain export --out-dir` folder (the ONNX files too when present)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--sunnypilot-root", type=Path, metavar="DIR", help="root of a sunnypilot/openpilot checkout "
                       "(Linux, WSL via \\\\wsl$\\..., or a share); files go to selfdrive/modeld/models/")
    where.add_argument("--models-dir", type=Path, metavar="DIR", help="a plain model folder (created if missing), "
                       "e.g. ~/.comma/media/0/models")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; change nothing")
    parser.add_argument("--restore", action="store_true", help="undo the newest install (put the backed-up files "
                        "back, remove the files it added); takes no files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    given = {slot: getattr(args, slot) for slot in FILE_FLAGS}
    if args.restore:
        if args.from_dir or any(given.values()):
            raise ConfigError("--restore takes no files: it puts back what the newest install replaced")
        detected = detect_runtime(args.sunnypilot_root.expanduser().resolve()) if args.sunnypilot_root else None
        split = detected is None or detected.profile_id in (None, "op-0.10.1", "op-0.10.0")
        target = resolve_target(args.sunnypilot_root, args.models_dir) if split else _runtime_target(args, detected)
        restore(target, dry_run=args.dry_run)
        return 0
    detected = detect_runtime(args.sunnypilot_root.expanduser().resolve()) if args.sunnypilot_root else None
    if detected is not None:
        print(f"checkout {args.sunnypilot_root} runs {detected.profile_id or 'split files'}: {detected.evidence}")
    if args.from_dir is not None:
        if any(given.values()):
            raise ConfigError("give either --from-dir or the single file flags, not both")
        runtime_export = read_runtime_export(args.from_dir)
        if runtime_export is not None:
            target = _runtime_target(args, detected)
            install_runtime(runtime_export, target, detected, dry_run=args.dry_run)
            return 0
        given = files_in_dir(args.from_dir)
    if detected is not None:  # split files: only a split runtime reads them
        profile = validate_files(given).profile_id
        refuse_mismatch(profile, detected, Path(args.from_dir or given["vision_tinygrad"]).expanduser().resolve())
    target = resolve_target(args.sunnypilot_root, args.models_dir)
    install(target, validate_files(given), dry_run=args.dry_run)
    return 0


def _runtime_target(args: argparse.Namespace, detected: DetectedRuntime | None) -> InstallTarget:
    """Where the runtime reads its files: the detected checkout's models folder, or --models-dir."""
    if detected is None:
        path = args.models_dir.expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise InstallError(f"--models-dir {path} is a file; expected a folder (it is created if missing)")
        return InstallTarget(models_dir=path, checkout=None)
    return InstallTarget(models_dir=detected.models_dir, checkout=args.sunnypilot_root.expanduser().resolve())
