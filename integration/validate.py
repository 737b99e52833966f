"""Check the files to install before anything is touched.

Every file must exist; the metadata pickles must load with the restricted loader and equal the metadata of one
contract profile (input names/order/shapes, output shape, slices); vision and policy must be of the same profile and
the policy's ``features_buffer`` width must equal the vision ``hidden_state`` width; tinygrad pickles must be
non-empty pickles (they are never loaded here - only the smoke test, in a child process, runs them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.metadata import load_metadata, match_metadata
from ..contract.profiles import PROFILES
from ..errors import ContractError, InstallError
from .target import REQUIRED_SLOTS, SLOTS, slot_filename, slot_flag

PICKLE_MAGIC = b"\x80"  # protocol 2+


@dataclass(frozen=True)
class ValidatedFiles:
    files: dict[str, Path]  # slot -> source file (only the slots given)
    profile_id: str
    device: str  # tinygrad device of the pickles (from their sidecars), for the smoke test's DEV


def _require_file(slot: str, path: Path) -> None:
    if not path.is_file():
        raise InstallError(f"{slot_flag(slot)} {path}: no such file; expected {slot_filename(slot)} as written by "
                           f"`sptrain export` - check the path")
    if path.stat().st_size == 0:
        raise InstallError(f"{slot_flag(slot)} {path}: the file is empty; re-export the models")


def _metadata_profile(slot: str, path: Path) -> tuple[str, dict[str, Any]]:
    model = SLOTS[slot][0]
    try:
        metadata = load_metadata(path)
    except ContractError as exc:
        raise InstallError(f"{slot_flag(slot)}: {exc}") from None
    match = match_metadata(metadata, model)
    if match is not None and match.exact:
        return match.profile_id, metadata
    shape = tuple(metadata.get("output_shapes", {}).get("outputs", ()))
    if match is not None:
        details = f"its output shape is {match.profile_id}'s but {match.problems[0][:300]}"
    else:
        details = f"output shape {shape}; a {model} outputs " + ", ".join(
            f"{p.model(model).output_shape} ({pid})" for pid, p in PROFILES.items())
    raise InstallError(f"{slot_flag(slot)} {path}: matches no contract profile ({details}); expected the metadata of a "
                       f"{model} exported by `sptrain export` - is it the other model's file?")


def _check_pickle(slot: str, path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(1)
    if head != PICKLE_MAGIC:
        raise InstallError(f"{slot_flag(slot)} {path}: does not start like a pickle (first byte {head!r}, expected "
                           f"{PICKLE_MAGIC!r}); expected {slot_filename(slot)} from `sptrain export`")


def _sidecar_device(files: dict[str, Path]) -> str:
    devices = set()
    for slot in ("vision_tinygrad", "policy_tinygrad"):
        sidecar = files[slot].with_suffix(".json")
        try:
            devices.add(str(json.loads(sidecar.read_text())["device"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if len(devices) > 1:
        raise InstallError(f"the tinygrad pickles were compiled for different devices {sorted(devices)} (their JSON "
                           f"sidecars say so); export both with the same --device")
    return devices.pop() if devices else os.environ.get("DEV", "CPU")


def validate_files(files: dict[str, str | os.PathLike | None]) -> ValidatedFiles:
    """InstallError naming the file, what was found, what was expected and what to do - or the validated set."""
    given = {slot: Path(p).expanduser().resolve() for slot, p in files.items() if p is not None}
    missing = [slot_flag(s) for s in REQUIRED_SLOTS if s not in given]
    if missing:
        raise InstallError(f"missing {', '.join(missing)}; give the four files (or --from-dir EXPORT_DIR with "
                           f"the files `sptrain export` wrote)")
    for slot, path in given.items():
        _require_file(slot, path)
    for slot in ("vision_tinygrad", "policy_tinygrad"):
        _check_pickle(slot, given[slot])
    vision_pid, vision_meta = _metadata_profile("vision_metadata", given["vision_metadata"])
    policy_pid, policy_meta = _metadata_profile("policy_metadata", given["policy_metadata"])
    if vision_pid != policy_pid:
        raise InstallError(f"the vision metadata is profile {vision_pid} but the policy metadata is profile "
                           f"{policy_pid}; modeld runs them together - install a vision and policy exported from the "
                           f"same checkpoint")
    if vision_meta["model_checkpoint"] != policy_meta["model_checkpoint"]:
        raise InstallError(f"the vision model comes from checkpoint {vision_meta['model_checkpoint']!r} and the policy "
                           f"from {policy_meta['model_checkpoint']!r}; a policy only works with the vision features it "
                           f"was trained on - install a vision and policy exported from the same checkpoint")
    hidden = vision_meta["output_slices"]["hidden_state"]
    hidden_width = len(range(*hidden.indices(vision_meta["output_shapes"]["outputs"][-1])))
    features = policy_meta["input_shapes"].get("features_buffer", (0,))[-1]
    if features != hidden_width:
        raise InstallError(f"the policy's features_buffer entries are {features} wide but the vision hidden_state is "
                           f"{hidden_width} wide; install a vision and policy exported from the same checkpoint")
    return ValidatedFiles(files=given, profile_id=vision_pid, device=_sidecar_device(given))
