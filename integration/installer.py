"""Install exported models into a checkout or model folder - with a backup, a smoke test and an undo.

``install``: validate the files -> plan -> (dry run: print the plan and stop) -> back up every file that will be
replaced -> copy atomically -> verify sha256 -> smoke test in a child process. Any failure (or Ctrl-C) after the
first change puts the originals back and removes files the install added, then raises InstallError with the reason.
``restore``: undo the newest install still in effect, after snapshotting the current files (nothing is lost).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InstallError
from ..fileio import atomic_copy, sha256_file
from .backup import (
    INSTALLED,
    INSTALLING,
    PRE_RESTORE,
    RESTORED,
    ROLLED_BACK,
    FileChange,
    create_backup,
    latest_undoable,
    put_back,
    read_manifest,
    set_status,
)
from .smoke_test import run_smoke_test
from .target import SLOTS, InstallTarget, slot_filename
from .validate import ValidatedFiles

Log = Callable[[str], None]


def plan_changes(target: InstallTarget, files: ValidatedFiles) -> list[FileChange]:
    """One change per file to install, in slot order, with what is there now."""
    changes = []
    for slot in SLOTS:
        if slot not in files.files:
            continue
        source = files.files[slot]
        dest = target.models_dir / slot_filename(slot)
        existed = dest.is_file()
        changes.append(FileChange(name=dest.name, existed=existed,
                                    original_sha256=sha256_file(dest) if existed else None,
                                    installed_sha256=sha256_file(source), source=str(source)))
    return changes


def format_plan(target: InstallTarget, files: ValidatedFiles, changes: list[FileChange], dry_run: bool) -> str:
    lines = [f"{'dry run: would install' if dry_run else 'installing'} profile {files.profile_id} models into "
             f"{target.describe()}"]
    if not target.models_dir.exists():
        lines.append(f"  {target.models_dir} does not exist yet: {'would be' if dry_run else 'is'} created")
    for c in changes:
        what = f"replace (sha256 {c.original_sha256[:12]}...)" if c.existed else "add (new file)"
        same = "  [identical content]" if c.original_sha256 == c.installed_sha256 else ""
        lines.append(f"  {c.name:<30} {what:<34} <- {c.source}{same}")
    replaced = [c.name for c in changes if c.existed]
    lines.append(f"  backup of {len(replaced)} replaced file(s) into {target.backups_dir}/<UTC timestamp>/ "
                 f"(+ manifest.json); smoke test with DEV={files.device} and "
                 + ("the checkout's own parse_model_outputs.py" if target.checkout else "the contract parser"))
    if dry_run:
        lines.append("  nothing was changed")
    return "\n".join(lines)


def _copy_and_verify(target: InstallTarget, changes: list[FileChange]) -> None:
    for c in changes:
        dest = target.models_dir / c.name
        sha = atomic_copy(Path(c.source), dest)
        if sha != c.installed_sha256:
            raise InstallError(f"{c.source} changed while it was being installed (sha256 {sha[:12]}..., expected "
                               f"{c.installed_sha256[:12]}...); run the install again")
    for c in changes:  # read back what landed on disk
        dest = target.models_dir / c.name
        if sha256_file(dest) != c.installed_sha256:
            raise InstallError(f"{dest}: sha256 after copying differs from {c.source}; the target file system "
                               f"did not store the file faithfully")


def install(target: InstallTarget, files: ValidatedFiles, dry_run: bool = False, log: Log = print) -> dict[str, Any]:
    """Install ``files`` into ``target`` (see the module docstring); returns a summary dict."""
    changes = plan_changes(target, files)
    log(format_plan(target, files, changes, dry_run))
    if dry_run:
        return {"dry_run": True, "changes": changes}
    target.models_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = create_backup(target, changes, INSTALLING, profile=files.profile_id)
    log(f"  backed up the originals into {backup_dir}")
    try:
        _copy_and_verify(target, changes)
        log(f"  copied and verified {len(changes)} file(s); smoke test (child process, DEV={files.device}) ...")
        smoke = run_smoke_test(target.models_dir, files.profile_id, files.device, target.checkout)
    except BaseException as exc:
        actions = put_back(target, backup_dir)
        reason = str(exc) if isinstance(exc, InstallError) else f"{type(exc).__name__}: {exc}"
        set_status(backup_dir, ROLLED_BACK, reason=reason)
        for line in actions:
            log(f"  {line}")
        if isinstance(exc, InstallError):
            raise InstallError(f"install failed and was undone (the original files are back; their copies stay in "
                               f"{backup_dir}): {reason}") from None
        raise
    set_status(backup_dir, INSTALLED, smoke_test=smoke)
    log(f"  smoke test passed with {smoke['parser']} on {smoke['device']} (models loaded in {smoke['load_s']:.1f} s)")
    log(f"installed {len(changes)} file(s) into {target.models_dir}; undo with --restore")
    return {"dry_run": False, "backup": str(backup_dir), "smoke_test": smoke, "changes": changes}


def restore(target: InstallTarget, dry_run: bool = False, log: Log = print) -> dict[str, Any]:
    """Put back the files the newest install in effect replaced (and remove the ones it added)."""
    backup_dir = latest_undoable(target)
    if backup_dir is None:
        raise InstallError(f"nothing to restore in {target.models_dir}: no install recorded in {target.backups_dir} "
                           f"is still in effect")
    manifest = read_manifest(backup_dir)
    log(f"{'dry run: would restore' if dry_run else 'restoring'} {target.describe()} from {backup_dir} "
        f"(install of {manifest.get('created_utc')}, status {manifest['status']})")
    for c in manifest["files"]:
        log(f"  {c.name:<30} {'put back the original' if c.existed else 'remove (added by the install)'}")
    if dry_run:
        log("  nothing was changed")
        return {"dry_run": True, "backup": str(backup_dir)}
    current = [FileChange(name=c.name, existed=(target.models_dir / c.name).is_file(),
                            original_sha256=sha256_file(target.models_dir / c.name)
                            if (target.models_dir / c.name).is_file() else None) for c in manifest["files"]]
    snapshot = create_backup(target, current, PRE_RESTORE, restores=str(backup_dir))
    log(f"  snapshot of the current files in {snapshot}")
    for line in put_back(target, backup_dir):
        log(f"  {line}")
    set_status(backup_dir, RESTORED, snapshot=str(snapshot))
    log(f"restored {target.models_dir} to its state before {manifest.get('created_utc')}")
    return {"dry_run": False, "backup": str(backup_dir), "snapshot": str(snapshot)}
