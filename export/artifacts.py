"""Where exported files go: modeld's file names, a staging folder, atomic moves, hashes and JSON sidecars.

For a model ``X`` (``driving_vision`` or ``driving_policy``) an export writes ``X.onnx``, ``X_metadata.pkl``,
``X_tinygrad.pkl`` and the sidecar ``X_tinygrad.json`` (tinygrad version, device, inputs, parity numbers, the ONNX
sha256). Everything is written into a staging folder beside the destination first and moved into place only when
every check passed, so a failed export never leaves a half-written set behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.profiles import MODEL_NAMES, POLICY_MODEL, VISION_MODEL
from ..errors import ConfigError
from ..fileio import atomic_copy, atomic_write_text

# short names used on the command line -> modeld model names
MODEL_ALIASES = {"vision": VISION_MODEL, "policy": POLICY_MODEL}
ONNX_SUFFIX = ".onnx"
METADATA_SUFFIX = "_metadata.pkl"
TINYGRAD_SUFFIX = "_tinygrad.pkl"
SIDECAR_SUFFIX = "_tinygrad.json"


@dataclass(frozen=True)
class ArtifactPaths:
    """The three files modeld reads for one model, plus the JSON sidecar of the tinygrad pickle."""

    onnx: Path
    tinygrad: Path
    metadata: Path

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.tinygrad)

    @classmethod
    def in_dir(cls, directory: str | os.PathLike, model_name: str) -> ArtifactPaths:
        d = Path(directory)
        return cls(onnx=d / f"{model_name}{ONNX_SUFFIX}", tinygrad=d / f"{model_name}{TINYGRAD_SUFFIX}",
                   metadata=d / f"{model_name}{METADATA_SUFFIX}")

    def files(self) -> dict[str, Path]:
        """kind -> path for every file of the set (sidecar included)."""
        return {"onnx": self.onnx, "tinygrad": self.tinygrad, "metadata": self.metadata, "sidecar": self.sidecar}


def sidecar_path(tinygrad_pickle: str | os.PathLike) -> Path:
    """``X_tinygrad.pkl`` -> ``X_tinygrad.json`` (any other name: the same name with ``.json``)."""
    return Path(tinygrad_pickle).with_suffix(".json")


def resolve_model_names(text: str) -> list[str]:
    """``"vision,policy"`` (or modeld names) -> modeld model names, in contract order, without duplicates."""
    wanted = []
    for part in (p.strip() for p in text.split(",")):
        name = MODEL_ALIASES.get(part, part)
        if name not in MODEL_NAMES:
            raise ConfigError(f"--models: unknown model {part!r}; use a comma-separated list of "
                              f"{list(MODEL_ALIASES)} (or {list(MODEL_NAMES)})")
        wanted.append(name)
    if not wanted:
        raise ConfigError("--models is empty; use vision, policy or vision,policy")
    return [n for n in MODEL_NAMES if n in wanted]


def make_staging_dir(near: str | os.PathLike) -> Path:
    """A fresh hidden folder inside ``near`` (created if missing): same file system as the destination."""
    parent = Path(near).resolve()  # absolute: the tinygrad children run with the staging folder as their cwd
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".sptrain-export-", dir=parent))


def move_into_place(moves: list[tuple[Path, Path]]) -> None:
    """Move each staged file onto its destination (``os.replace``; a copy + replace across file systems)."""
    for src, dst in moves:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dst)
        except OSError:  # another file system: copy beside the destination, then rename over it
            atomic_copy(src, dst)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
