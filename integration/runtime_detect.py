"""Which modeld runtime a checkout runs, read from its own code: the contract profile an install must match.

The checks (docs/contract.md, "Which runtime a checkout runs") look for what each release's ``modeld.py`` reads, in
this order; the first that fits wins. ``R`` is the checkout root; ``M`` is ``R/openpilot/selfdrive/modeld`` (the
layout since 2026-06-21) or ``R/selfdrive/modeld``. File names alone cannot tell the eras apart
(``driving_tinygrad.pkl`` is the name of three different artifacts), and ``common/version.h`` reads 0.11.1 for all
of March-May 2026 master, so only code markers are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InstallError

# sunnypilot's model_adapters.py dispatches on the artifact's keys: one flat 'input_specs' artifact (sp-2026.10) or
# per-camera 'variants' (a form no profile covers)
FLAT_ARTIFACT = re.compile(r"""['"]input_specs['"]\s+(?:not\s+)?in\s+(?:self\.)?jits""")
VARIANTS_ARTIFACT = re.compile(r"""\[['"]variants['"]\]""")
SUNNYPILOT_V2 = (Path("openpilot") / "sunnypilot" / "modeld_v2", Path("sunnypilot") / "modeld_v2")
MODELD_DIRS = (Path("openpilot") / "selfdrive" / "modeld", Path("selfdrive") / "modeld")


@dataclass(frozen=True)
class DetectedRuntime:
    """The profile a checkout runs; ``None`` when its modeld.py is missing (a bare model tree: split files)."""

    profile_id: str | None
    modeld_dir: Path
    models_dir: Path
    evidence: str
    sunnypilot_v2_dir: Path | None = None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def modeld_dir_of(root: Path) -> Path:
    for rel in MODELD_DIRS:
        if (root / rel).is_dir():
            return root / rel
    found = sorted(p.name for p in root.iterdir())[:8] if root.is_dir() else "no such folder"
    raise InstallError(f"--sunnypilot-root {root} does not look like a sunnypilot/openpilot checkout: neither "
                       f"{MODELD_DIRS[0]} nor {MODELD_DIRS[1]} exists (found {found}); pass the checkout's root "
                       f"folder, or use --models-dir for a plain model folder")


def _sunnypilot(root: Path) -> tuple[Path, str] | None:
    for rel in SUNNYPILOT_V2:
        text = _read(root / rel / "modeld.py")
        if "COMBINED_MODEL_PKL" in text:
            adapters = _read(root / rel / "model_adapters.py")
            if FLAT_ARTIFACT.search(adapters) or FLAT_ARTIFACT.search(text):
                return root / rel, f"{rel}/modeld.py reads COMBINED_MODEL_PKL and loads 'input_specs' artifacts"
            if VARIANTS_ARTIFACT.search(adapters):
                raise InstallError(f"{root / rel}: sunnypilot's modeld_v2 reads COMBINED_MODEL_PKL but its native "
                                   f"adapter takes per-camera jits['variants'] artifacts (model_adapters.py); no "
                                   f"profile covers that form (sp-2026.10 writes one flat 'input_specs' artifact) - "
                                   f"install into --models-dir and compile the exported driving_supercombo.onnx with "
                                   f"the checkout's own modeld_v2 compiler")
            raise InstallError(f"{root / rel}: sunnypilot's modeld_v2 reads COMBINED_MODEL_PKL but neither modeld.py "
                               f"nor model_adapters.py loads tinygrad 'input_specs' artifacts (found an older "
                               f"modeld_v2); expected the native adapter of autumn 2026 (profile sp-2026.10) - "
                               f"update the checkout, or compile with its own modeld_v2/compile_modeld.py")
    return None


def _openpilot(modeld: Path) -> tuple[str, str] | None:
    text = _read(modeld / "modeld.py")
    helpers = _read(modeld / "helpers.py")
    if "['input_specs']['new_img']" in text and "driving_warp_" in text:
        return "op-2026.09", "modeld.py reads jits['input_specs']['new_img'] and driving_warp_{w}x{h}_tinygrad.pkl"
    if "['metadata']['on_policy']" in text:
        raise InstallError(f"{modeld / 'modeld.py'}: the split vision + on_policy runtime of early June 2026 "
                           f"(driving_on_policy.onnx with action_t); no profile covers it - update the checkout to "
                           f"openpilot master of July 2026 or later (profile op-2026.07)")
    if "jits['run_policy']" in text and "action_t" in text:
        if "load_oob" in text or "load_oob" in helpers:
            return "op-2026.07", "modeld.py loads driving_tinygrad.pkl with load_oob and calls jits['run_policy']"
        raise InstallError(f"{modeld / 'modeld.py'}: a supercombo runtime of June 2026 that reads a plain pickle "
                           f"(before the out-of-band format of 2026-07-01); no profile covers it - update the "
                           f"checkout to openpilot master of July 2026 or later")
    if "['metadata']['vision']" in text and "driving_tinygrad.pkl" in text:
        return "op-0.11.1", "modeld.py reads driving_tinygrad.pkl and jits['metadata']['vision']"
    if "driving_vision_tinygrad.pkl" in text or "_metadata.pkl" in text or "vision_metadata" in text:
        if "lateral_control_params" in text or "prev_desired_curv" in text:
            return "op-0.10.0", "modeld.py reads split pickles and feeds lateral_control_params"
        return "op-0.10.1", "modeld.py reads driving_{vision,policy}_{tinygrad,metadata}.pkl"
    return None


def detect_runtime(root: str | Path) -> DetectedRuntime:
    """The runtime of the checkout at ``root`` (InstallError when its modeld is of no known profile)."""
    root = Path(root)
    modeld = modeld_dir_of(root)
    found = _sunnypilot(root)
    if found is not None:
        v2_dir, evidence = found
        return DetectedRuntime("sp-2026.10", modeld, v2_dir / "models", evidence, v2_dir)
    if not (modeld / "modeld.py").is_file():
        return DetectedRuntime(None, modeld, modeld / "models", f"{modeld / 'modeld.py'} is missing: a model tree "
                               f"that takes the split files")
    known = _openpilot(modeld)
    if known is None:
        raise InstallError(f"{modeld / 'modeld.py'}: matches no known modeld runtime (looked for the split pickles, "
                           f"driving_tinygrad.pkl with jits['metadata']['vision'], jits['run_policy'] with load_oob, "
                           f"and jits['input_specs']['new_img']); see `sptrain contract list` for the runtimes "
                           f"covered - install into --models-dir and load the files by hand, or update the checkout")
    profile_id, evidence = known
    return DetectedRuntime(profile_id, modeld, modeld / "models", evidence)
