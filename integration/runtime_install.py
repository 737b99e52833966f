"""Install an export of a 2026 runtime profile where that runtime reads it, after checking the checkout runs it.

An export folder of such a profile carries ``sptrain_export.json`` (profile, runtime files, cameras). The checkout's
runtime is read from its code (``runtime_detect``); a folder made for another profile is refused with both names.
Placement (docs/contract.md, "Installing"):

* op-0.11.1, op-2026.07, op-2026.09: the runtime files into ``<modeld>/models/`` (``driving_tinygrad.pkl``, the
  ONNX, the warps). A ``driving_tinygrad.pkl.chunkmanifest`` and its chunks there are backed up and removed: the
  runtime reads the chunks whenever the manifest exists.
* sp-2026.10: ``sptrain_driving_tinygrad.pkl`` and the warps into ``<sunnypilot>/modeld_v2/models/``; modeld_v2
  loads it when ``COMBINED_MODEL_PKL`` names it (printed at the end).

Every replaced or removed file is backed up first (``backup``); the smoke test drives the installed files with the
release's harness in a child process and, for a checkout, with the checkout's own modeld ``ModelState`` and parser
(``checkout_modeld``); any failure puts everything back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..contract.nv12 import nv12_layout
from ..contract.profiles import get_profile
from ..errors import InstallError
from ..fileio import atomic_copy, sha256_file
from .backup import INSTALLED, INSTALLING, ROLLED_BACK, FileChange, create_backup, put_back, set_status
from .checkout_modeld import run_checkout_modeld
from .runtime_detect import DetectedRuntime
from .smoke_test import child_env
from .target import InstallTarget

MANIFEST = "sptrain_export.json"
SP_PICKLE = "sptrain_driving_tinygrad.pkl"
HARNESS_MODULE = "sunnypilot_training.export.runtime_harness"
SMOKE_FRAMES = 4
PULSE_FRAME = 1  # a lane-change-left desire rises on this frame
Log = Callable[[str], None]


@dataclass(frozen=True)
class RuntimeExport:
    folder: Path
    profile_id: str
    packaging: str
    files: tuple[str, ...]
    device: str
    cameras: tuple[str, ...]


def read_runtime_export(folder: str | os.PathLike) -> RuntimeExport | None:
    """The runtime export in ``folder``, or None for a split export (no ``sptrain_export.json``)."""
    folder = Path(folder).expanduser().resolve()
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        export = RuntimeExport(folder, str(data["profile"]), str(data["packaging"]), tuple(data["runtime_files"]),
                               str(data["device"]), tuple(data["cameras"]))
        get_profile(export.profile_id)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InstallError(f"{path}: unreadable export manifest ({exc}); expected the sptrain_export.json `sptrain "
                           f"export --profile P` writes - re-export the checkpoint") from None
    missing = [n for n in export.files if not (folder / n).is_file()]
    if missing:
        raise InstallError(f"{folder}: {MANIFEST} lists {missing} but they are missing; re-export the checkpoint")
    return export


def refuse_mismatch(export_profile: str, detected: DetectedRuntime, folder: Path) -> None:
    """InstallError naming both profiles when the export is not for the checkout's runtime."""
    if detected.profile_id == export_profile or (detected.profile_id is None and export_profile == "op-0.10.1"):
        return
    runs = detected.profile_id or "split vision + policy files (no modeld.py found)"
    releases = get_profile(detected.profile_id).releases if detected.profile_id else "a bare model tree"
    raise InstallError(f"{folder} was exported for profile {export_profile} ({get_profile(export_profile).releases}) "
                       f"but the checkout runs {runs} ({releases}; {detected.evidence}); its modeld would not load "
                       f"these files - re-export for it: sptrain export CKPT --out-dir DIR --profile "
                       f"{detected.profile_id or 'op-0.10.1'}")


def placement(export: RuntimeExport) -> dict[str, str]:
    """installed name -> file of the export folder."""
    names = {name: name for name in export.files}
    if get_profile(export.profile_id).runtime.pickle_env:  # installed beside the runtime's own, under our name
        names = {(SP_PICKLE if n == "driving_tinygrad.pkl" else n): n for n in export.files}
    if export.packaging == "combined":
        names.update({n: n for n in ("driving_vision.onnx", "driving_policy.onnx")})
    return names


def _chunk_files(models_dir: Path, names: list[str]) -> list[str]:
    """Chunked forms of files we install: the runtime would read those instead of our plain file."""
    found = []
    for name in names:
        if (models_dir / f"{name}.chunkmanifest").is_file():
            found += sorted(p.name for p in models_dir.glob(f"{name}.chunk*"))
    return found


def plan_runtime(export: RuntimeExport, target: InstallTarget) -> tuple[list[FileChange], list[str]]:
    names = placement(export)
    changes = []
    for dest_name, source_name in names.items():
        source, dest = export.folder / source_name, target.models_dir / dest_name
        changes.append(FileChange(name=dest_name, existed=dest.is_file(),
                                  original_sha256=sha256_file(dest) if dest.is_file() else None,
                                  installed_sha256=sha256_file(source), source=str(source)))
    removed = _chunk_files(target.models_dir, list(names))
    changes += [FileChange(name=n, existed=True, original_sha256=sha256_file(target.models_dir / n)) for n in removed]
    return changes, removed


def smoke_runtime(models_dir: Path, export: RuntimeExport, checkout: Path | None) -> dict[str, Any]:
    """Drive the installed files with the release's harness in a child process for a few frames."""
    camera = tuple(int(v) for v in export.cameras[0].split("x"))
    layout = nv12_layout(*camera)
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="sptrain-smoke-"))
    frames = work / "frames.npz"
    tfm = np.array([[2.0, 0, 150.25], [0, 2.0, 120.25], [0, 0, 1]], np.float32)
    desire = np.zeros((SMOKE_FRAMES, 8), np.float32)
    desire[PULSE_FRAME, 3] = 1.0
    np.savez(frames, road=rng.integers(0, 256, (SMOKE_FRAMES, layout.size), dtype=np.uint8),
             wide=rng.integers(0, 256, (SMOKE_FRAMES, layout.size), dtype=np.uint8),
             tfm=np.stack([tfm] * SMOKE_FRAMES), big_tfm=np.stack([tfm] * SMOKE_FRAMES),
             desire=desire, traffic_convention=np.array([1, 0], np.float32),
             action_t=np.array([0.25, 0.45], np.float32), camera=np.array(camera))
    cmd = [sys.executable, "-m", HARNESS_MODULE, export.packaging, str(models_dir), "--frames", str(frames),
           "--outputs", str(work / "out.npz"), "--report", str(work / "report.json")]
    if get_profile(export.profile_id).runtime.pickle_env:
        cmd += ["--pickle", SP_PICKLE]
    env = child_env(export.device, checkout)
    try:
        report = _run_smoke(cmd, env, work, export)
        if checkout is not None:  # the checkout's own modeld ModelState and parser on the same frames
            env_pkl = models_dir / SP_PICKLE if get_profile(export.profile_id).runtime.pickle_env else None
            report["checkout_modeld"] = run_checkout_modeld(checkout, export.profile_id, export.device, frames,
                                                            np.load(work / "out.npz")["outputs"],
                                                            combined_pkl=env_pkl)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _run_smoke(cmd: list[str], env: dict[str, str], work: Path, export: RuntimeExport) -> dict[str, Any]:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=work)
    except subprocess.TimeoutExpired:
        raise InstallError(f"smoke test: the {export.profile_id} harness did not finish within 900 s") from None
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "(no output)").splitlines()[-1]
        compile_hint = get_profile(export.profile_id).runtime.device_compile
        raise InstallError(f"smoke test: the {export.profile_id} harness could not run the installed files "
                           f"(DEV={export.device}): {last}; if the checkout's tinygrad differs from the one that "
                           f"compiled them, compile on the checkout: {compile_hint}")
    outputs = np.load(work / "out.npz")["outputs"]
    if not np.isfinite(outputs).all():
        raise InstallError(f"smoke test: the installed {export.profile_id} model gives non-finite outputs")
    return {"profile": export.profile_id, "frames": int(len(outputs)), "harness": export.packaging,
            **json.loads((work / "report.json").read_text(encoding="utf-8"))}


def install_runtime(export: RuntimeExport, target: InstallTarget, detected: DetectedRuntime | None,
                    dry_run: bool = False, log: Log = print) -> dict[str, Any]:
    """Check, back up, copy, verify and smoke-test; any failure after the first change is undone."""
    if detected is not None:
        refuse_mismatch(export.profile_id, detected, export.folder)
    changes, removed = plan_runtime(export, target)
    where = f"{target.describe()}" + (f" (runtime {detected.profile_id}: {detected.evidence})" if detected else "")
    log(f"{'dry run: would install' if dry_run else 'installing'} profile {export.profile_id} into {where}")
    for c in changes:
        verb = "remove (chunked form the runtime would read instead)" if c.name in removed else (
            "replace" if c.existed else "add")
        log(f"  {c.name:<40} {verb}" + (f" <- {c.source}" if c.source else ""))
    if dry_run:
        log("  nothing was changed")
        return {"dry_run": True, "changes": changes}
    target.models_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = create_backup(target, changes, INSTALLING, profile=export.profile_id)
    try:
        for name in removed:
            (target.models_dir / name).unlink()
        for c in changes:
            if c.source is not None and atomic_copy(Path(c.source), target.models_dir / c.name) != c.installed_sha256:
                raise InstallError(f"{c.source} changed while it was being installed; run the install again")
        smoke = smoke_runtime(target.models_dir, export, target.checkout)
    except BaseException as exc:
        for line in put_back(target, backup_dir):
            log(f"  {line}")
        set_status(backup_dir, ROLLED_BACK, reason=str(exc))
        if isinstance(exc, InstallError):
            raise InstallError(f"install failed and was undone (originals are back; copies in {backup_dir}): "
                               f"{exc}") from None
        raise
    set_status(backup_dir, INSTALLED, smoke_test=smoke)
    log(f"  smoke test passed: the {export.profile_id} harness ran {smoke['frames']} frames on {smoke['device']}")
    own = smoke.get("checkout_modeld")
    if own is not None and own["ran"]:
        log(f"  and the checkout's own {own['model_state']} ran {own['frames']} frames through its parser "
            f"({len(own['standins'])} native module(s) stood in)")
    elif own is not None:
        log(f"  the checkout's own modeld was not run: {own['reason']}")
    result = {"dry_run": False, "backup": str(backup_dir), "smoke_test": smoke, "changes": changes}
    env = get_profile(export.profile_id).runtime.pickle_env
    if env:
        pkl = target.models_dir / SP_PICKLE
        result["env"] = f"{env}={pkl}"
        log(f"  select it in sunnypilot's modeld_v2: export {env}={pkl} before modeld starts "
            f"(docs/contract.md: Installing on a device)")
    log(f"installed {len(changes) - len(removed)} file(s) into {target.models_dir}; undo with --restore")
    return result
