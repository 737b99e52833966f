"""Backups of replaced model files, atomic copies, and putting a backup back.

Each install writes ``<models dir>/.sptrain_backups/<UTC timestamp>/`` holding a copy of every file it replaces and
``manifest.json``: per file its name, whether it existed, the sha256 of the original and of what was installed, and
the source path; plus a ``status``: ``installing`` (in progress or interrupted), ``installed``, ``rolled_back`` (the
install failed and was undone), ``restored`` (undone by ``--restore``) or ``pre_restore`` (a snapshot taken by
``--restore`` before it put older files back, so nothing is ever lost).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InstallError
from ..fileio import atomic_copy, atomic_write_text, sha256_file
from .target import InstallTarget

MANIFEST = "manifest.json"
INSTALLING, INSTALLED, ROLLED_BACK, RESTORED, PRE_RESTORE = (
    "installing", "installed", "rolled_back", "restored", "pre_restore")
UNDOABLE = (INSTALLING, INSTALLED)  # what --restore may undo (an interrupted install included)


@dataclass
class FileChange:
    """One file of the models folder an install (or restore) writes."""

    name: str
    existed: bool
    original_sha256: str | None = None
    installed_sha256: str | None = None
    source: str | None = None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def write_manifest(backup_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(backup_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = backup_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        manifest["files"] = [FileChange(**f) for f in manifest["files"]]
        return manifest
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InstallError(f"{path}: unreadable backup manifest ({exc}); the backup folder {backup_dir} still holds "
                           f"the original files - copy them back by hand") from None


def set_status(backup_dir: Path, status: str, **extra: Any) -> None:
    manifest = read_manifest(backup_dir)
    manifest.update(status=status, **extra)
    manifest[f"{status}_utc"] = utc_now()
    manifest["files"] = [asdict(f) for f in manifest["files"]]
    write_manifest(backup_dir, manifest)


def _new_backup_dir(target: InstallTarget) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
    for n in range(100):
        path = target.backups_dir / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise InstallError(f"cannot create a backup folder in {target.backups_dir}")


def create_backup(target: InstallTarget, changes: list[FileChange], status: str, **extra: Any) -> Path:
    """Copy every existing file of ``changes`` into a new backup folder and write its manifest."""
    backup_dir = _new_backup_dir(target)
    for change in changes:
        if change.existed:
            sha = atomic_copy(target.models_dir / change.name, backup_dir / change.name)
            if sha != change.original_sha256:
                raise InstallError(f"{target.models_dir / change.name} changed while it was being backed up; run the "
                                   f"install again when nothing else writes to {target.models_dir}")
    manifest = {"status": status, "created_utc": utc_now(), "models_dir": str(target.models_dir),
                "checkout": str(target.checkout) if target.checkout else None, **extra,
                "files": [asdict(c) for c in changes]}
    write_manifest(backup_dir, manifest)
    return backup_dir


def backups(target: InstallTarget) -> list[Path]:
    """Backup folders, oldest first (timestamps sort as text)."""
    if not target.backups_dir.is_dir():
        return []
    return sorted(p for p in target.backups_dir.iterdir() if p.is_dir() and (p / MANIFEST).is_file())


def latest_undoable(target: InstallTarget) -> Path | None:
    """The newest backup whose install is still in effect (``installed``, or an interrupted ``installing``)."""
    for backup_dir in reversed(backups(target)):
        if read_manifest(backup_dir)["status"] in UNDOABLE:
            return backup_dir
    return None


def put_back(target: InstallTarget, backup_dir: Path) -> list[str]:
    """Make the models folder hold what it held before the backup's install: originals copied back (sha256
    checked), files the install added removed. Returns one line per action."""
    actions = []
    for change in read_manifest(backup_dir)["files"]:
        dest = target.models_dir / change.name
        if change.existed:
            sha = sha256_file(backup_dir / change.name)  # check the copy before it replaces anything
            if sha != change.original_sha256:
                raise InstallError(f"{backup_dir / change.name}: backup copy has sha256 {sha[:12]}..., the manifest "
                                   f"says {str(change.original_sha256)[:12]}...; the backup is damaged and "
                                   f"{dest} was left as it is")
            atomic_copy(backup_dir / change.name, dest)
            actions.append(f"restored {dest}")
        elif dest.exists():
            dest.unlink()
            actions.append(f"removed {dest} (it did not exist before)")
    return actions
