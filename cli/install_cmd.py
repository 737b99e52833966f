"""``sptrain install``: put exported models into a sunnypilot checkout or a model folder (backup, smoke test, undo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..integration.installer import install, restore
from ..integration.target import SLOTS, files_in_dir, resolve_target
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
                    "puts the originals back. --restore undoes the newest install.")
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
        restore(resolve_target(args.sunnypilot_root, args.models_dir), dry_run=args.dry_run)
        return 0
    if args.from_dir is not None:
        if any(given.values()):
            raise ConfigError("give either --from-dir or the single file flags, not both")
        given = files_in_dir(args.from_dir)
    target = resolve_target(args.sunnypilot_root, args.models_dir)
    install(target, validate_files(given), dry_run=args.dry_run)
    return 0
