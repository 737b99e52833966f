"""Self-describing checkpoints: written atomically, loadable with ``torch.load(..., weights_only=True)``.

A checkpoint is one dict (nanoGPT style) holding everything to continue exactly: the arguments that rebuild both
models (``model_args``), model and EMA weights (with their normalisers, which live in the state dicts), optimiser /
scheduler / grad-scaler states, the stage, epoch and step, every RNG state, the resolved config and the contract
profile. Only tensors, containers and plain
Python values go in, so ``weights_only=True`` loads it.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..fileio import atomic_writer
from .models import model_args_from_config

# 2: adds "model_args"; format 1 is still read (its model_args are derived from its config).
# 3: GroupNorm backbones and calibrated stds; formats 1-2 are still read (BatchNorm backbones, uncalibrated stds).
# 4: the vision stem also sees the frame difference; formats 1-3 are still read (their stems do not).
FORMAT_VERSION = 4
READABLE_FORMATS = (1, 2, 3, 4)
CALIBRATION_SUFFIX = "std_scale"  # buffers set by training/calibration.py after training
REQUIRED_KEYS = ("format_version", "vision", "policy", "stage", "epoch", "step", "config", "profile", "run_id")


def checkpoint_path(output_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"epoch_{epoch:04d}.pt"


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """torch.save into a temporary file beside ``path``, fsync, then rename over it."""
    with atomic_writer(path) as f:
        torch.save(obj, f)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load with ``weights_only=True``; ConfigError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; pass checkpoint=<output_dir>/checkpoints/epoch_XXXX.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc}); it is truncated or not "
                          f"a sunnypilot-training checkpoint") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ConfigError(f"checkpoint {path} lacks {missing}; it is not a sunnypilot-training checkpoint")
    if ckpt["format_version"] not in READABLE_FORMATS:
        raise ConfigError(f"checkpoint {path} has format_version {ckpt['format_version']}, this version reads "
                          f"{list(READABLE_FORMATS)}; use the sunnypilot-training version that wrote it")
    if "model_args" not in ckpt:
        ckpt["model_args"] = model_args_from_config(ckpt["config"])
    if ckpt["format_version"] < 3:
        ckpt["model_args"] = _vision_size_args(ckpt["model_args"], norm="batch")
    if ckpt["format_version"] < 4:
        ckpt["model_args"] = _vision_size_args(ckpt["model_args"], frame_difference=False)
    return ckpt


def _vision_size_args(model_args: dict[str, Any], **older: Any) -> dict[str, Any]:
    """model_args of an older checkpoint, its vision size pinned to what that format built (``older``: the size
    fields that were different then, e.g. norm="batch" before format 3)."""
    vision = dict(model_args["vision"])
    size = vision.get("size", "tiny")
    vision["size"] = {"preset": size, **older} if isinstance(size, str) else {**size, **older}
    return {**model_args, "vision": vision}


def load_weights(model: torch.nn.Module, state: dict[str, Any]) -> None:
    """``model.load_state_dict(state)``, where a state without calibration buffers (a checkpoint from before
    calibration, or one not yet calibrated) keeps the model's own (1: uncalibrated). RuntimeError otherwise."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.endswith(CALIBRATION_SUFFIX)]
    if bad or unexpected:
        raise RuntimeError(f"state dict does not fit the model: missing {bad[:5]}, unexpected {list(unexpected)[:5]}")


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 (16 hex digits) over a model's state dict, names and values in order: the identity of its weights.
    Calibration buffers do not count (they scale reported stds, never the features or means)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if name.endswith(CALIBRATION_SUFFIX):
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = sorted((Path(output_dir) / "checkpoints").glob("epoch_*.pt"))
    return found[-1] if found else None


def capture_rng() -> dict[str, Any]:
    """Every RNG state as weights_only-safe values."""
    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    out = {
        "python": [version, list(state), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
