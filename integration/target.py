"""Where models get installed: a sunnypilot/openpilot checkout or a plain model folder, and modeld's file names.

* a checkout (``--sunnypilot-root``): must look like one - ``selfdrive/modeld/`` with ``models/`` in it; files go to
  ``selfdrive/modeld/models/`` and the smoke test parses with the checkout's own ``parse_model_outputs.py``;
* a model folder (``--models-dir``, created if missing), e.g. ``~/.comma/media/0/models`` on a PC or
  ``/data/media/0/models`` on a device; the smoke test parses with our contract parser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..contract.profiles import POLICY_MODEL, VISION_MODEL
from ..errors import InstallError

MODELD_DIR = Path("selfdrive") / "modeld"
MODELS_SUBDIR = MODELD_DIR / "models"
PARSER_FILE = MODELD_DIR / "parse_model_outputs.py"
BACKUP_DIRNAME = ".sptrain_backups"

# install slot -> (model, file suffix); the slot names are also the CLI flags (--vision-tinygrad ...)
SLOTS: dict[str, tuple[str, str]] = {
    "vision_tinygrad": (VISION_MODEL, "_tinygrad.pkl"),
    "vision_metadata": (VISION_MODEL, "_metadata.pkl"),
    "policy_tinygrad": (POLICY_MODEL, "_tinygrad.pkl"),
    "policy_metadata": (POLICY_MODEL, "_metadata.pkl"),
    "vision_onnx": (VISION_MODEL, ".onnx"),
    "policy_onnx": (POLICY_MODEL, ".onnx"),
}
REQUIRED_SLOTS = ("vision_tinygrad", "vision_metadata", "policy_tinygrad", "policy_metadata")


def slot_filename(slot: str) -> str:
    """modeld's file name for a slot, e.g. ``vision_tinygrad`` -> ``driving_vision_tinygrad.pkl``."""
    model, suffix = SLOTS[slot]
    return model + suffix


def slot_flag(slot: str) -> str:
    return "--" + slot.replace("_", "-")


@dataclass(frozen=True)
class InstallTarget:
    models_dir: Path
    checkout: Path | None  # the sunnypilot/openpilot root when installing into a checkout

    @property
    def backups_dir(self) -> Path:
        return self.models_dir / BACKUP_DIRNAME

    def describe(self) -> str:
        if self.checkout is not None:
            return f"checkout {self.checkout} (models in {self.models_dir})"
        return f"model folder {self.models_dir}"


def _checkout_target(root: Path) -> InstallTarget:
    if not root.is_dir():
        raise InstallError(f"--sunnypilot-root {root}: no such folder; point it at the root of a sunnypilot or "
                           f"openpilot checkout (the folder that holds selfdrive/)")
    missing = [str(p) for p in (MODELD_DIR, MODELS_SUBDIR) if not (root / p).is_dir()]
    if missing:
        raise InstallError(f"--sunnypilot-root {root} does not look like a sunnypilot/openpilot checkout: "
                           f"{', '.join(missing)} missing (found {sorted(p.name for p in root.iterdir())[:8]}); "
                           f"pass the checkout's root folder, or use --models-dir for a plain model folder")
    return InstallTarget(models_dir=root / MODELS_SUBDIR, checkout=root)


def resolve_target(sunnypilot_root: str | os.PathLike | None, models_dir: str | os.PathLike | None) -> InstallTarget:
    """The install target from exactly one of ``--sunnypilot-root`` / ``--models-dir``."""
    if (sunnypilot_root is None) == (models_dir is None):
        raise InstallError("give exactly one of --sunnypilot-root DIR (a sunnypilot checkout) or --models-dir DIR "
                           "(a plain model folder such as ~/.comma/media/0/models)")
    if sunnypilot_root is not None:
        return _checkout_target(Path(sunnypilot_root).expanduser().resolve())
    path = Path(models_dir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise InstallError(f"--models-dir {path} is a file; expected a folder (it is created if missing)")
    return InstallTarget(models_dir=path, checkout=None)


def files_in_dir(directory: str | os.PathLike) -> dict[str, Path | None]:
    """slot -> file for the modeld-named files of an export folder (``sptrain export --out-dir``); the four pickles
    are required, the ONNX files are taken when present (None otherwise)."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise InstallError(f"--from-dir {directory}: no such folder; pass the --out-dir of `sptrain export`")
    found = {slot: directory / slot_filename(slot) for slot in SLOTS}
    missing = [p.name for s, p in found.items() if s in REQUIRED_SLOTS and not p.is_file()]
    if missing:
        raise InstallError(f"--from-dir {directory}: missing {missing}; expected the files `sptrain export --out-dir "
                           f"{directory}` writes")
    return {slot: path if path.is_file() else None for slot, path in found.items()}
