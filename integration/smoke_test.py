"""Smoke test of installed models, run in a child process so a crashing pickle cannot take the installer down.

The child (``python -m sunnypilot_training.integration.smoke_test MODELS_DIR --profile ID [--checkout ROOT]``, with
``DEV`` set to the pickles' device) does what modeld does: loads ``driving_vision_metadata.pkl`` /
``driving_policy_metadata.pkl`` (with the restricted loader) and the two tinygrad pickles, runs the vision model on
uint8 images, slices the flat output with the metadata's ``output_slices`` (``{k: out[np.newaxis, v]}``), parses it,
feeds ``hidden_state`` into the policy's ``features_buffer`` (desire pulse, traffic convention ``[1, 0]``), runs and
parses the policy, and checks that every head is there with the contract's shape and finite values.

With a checkout the parser is the checkout's own ``selfdrive/modeld/parse_model_outputs.py``, imported with the
checkout aliased as the ``openpilot`` package (as a real checkout is imported, whatever its folder is called);
otherwise it is ``contract.outputs.parse_outputs``. The child imports numpy, tinygrad and our contract only.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sunnypilot_training.contract.metadata import load_metadata
from sunnypilot_training.contract.outputs import parse_outputs
from sunnypilot_training.contract.profiles import POLICY_MODEL, VISION_MODEL, HeadKind, ModelSpec, get_profile
from sunnypilot_training.errors import InstallError

MODULE = "sunnypilot_training.integration.smoke_test"
TIMEOUT_S = 600


# --- parent side -------------------------------------------------------------------------------------------------
def child_env(device: str, checkout: Path | None) -> dict[str, str]:
    """The environment of a child that runs installed pickles: ``DEV``, and the checkout's own ``tinygrad_repo``
    first on ``PYTHONPATH`` where it has one (as its modeld imports it)."""
    env = {**os.environ, "DEV": device}
    repo = checkout / "tinygrad_repo" if checkout is not None else None
    if repo is not None and (repo / "tinygrad").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH", "")]))
    return env


def run_smoke_test(models_dir: Path, profile_id: str, device: str, checkout: Path | None,
                   timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """Run the child; its JSON report, or InstallError with the reason (the child's last lines)."""
    work = Path(tempfile.mkdtemp(prefix="sptrain-smoke-"))
    report = work / "report.json"
    cmd = [sys.executable, "-m", MODULE, str(models_dir), "--profile", profile_id, "--report", str(report)]
    if checkout is not None:
        cmd += ["--checkout", str(checkout)]
    env = child_env(device, checkout)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, cwd=work)
        if result.returncode != 0 or not report.is_file():
            lines = (result.stderr.strip() or result.stdout.strip() or "(no output)").splitlines()
            raise InstallError(f"smoke test of the installed models failed (exit code {result.returncode}, DEV="
                               f"{device}): {lines[-1]}")
        return json.loads(report.read_text())
    except subprocess.TimeoutExpired:
        raise InstallError(f"smoke test of the installed models did not finish within {timeout_s:.0f} s") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- child side --------------------------------------------------------------------------------------------------
def use_checkout_as_openpilot(root: Path) -> None:
    """Make the checkout importable as the ``openpilot`` package, as a real checkout is imported: ``R/openpilot``
    (the layout since 2026-06-21) on ``sys.path``, else ``R`` itself under that name, whatever its folder is called."""
    for name in [m for m in sys.modules if m == "openpilot" or m.startswith("openpilot.")]:
        del sys.modules[name]
    if (root / "openpilot" / "selfdrive" / "modeld").is_dir():
        sys.path.insert(0, str(root))
        return
    init = root / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location("openpilot", init, submodule_search_locations=[str(root)])
    else:  # no __init__.py: a namespace package rooted at the checkout
        spec = importlib.machinery.ModuleSpec("openpilot", None, is_package=True)
        spec.submodule_search_locations = [str(root)]
    package = importlib.util.module_from_spec(spec)
    sys.modules["openpilot"] = package
    if spec.loader is not None:
        spec.loader.exec_module(package)


def import_checkout_parser(root: Path):
    """The checkout's ``Parser`` class, importing the checkout as the ``openpilot`` package."""
    use_checkout_as_openpilot(root)
    module = importlib.import_module("openpilot.selfdrive.modeld.parse_model_outputs")
    return module.Parser


def slice_outputs(flat: np.ndarray, output_slices: dict[str, slice]) -> dict[str, np.ndarray]:
    """modeld's slicing of the flat (W,) output: ``{k: flat[np.newaxis, v]}``."""
    return {k: flat[np.newaxis, v] for k, v in output_slices.items()}


def _run(run, inputs: dict[str, Any]) -> np.ndarray:
    return run(**inputs).contiguous().realize().uop.base.buffer.numpy().copy()


def _vision_inputs(metadata: dict, rng: np.random.Generator) -> dict[str, Any]:
    from tinygrad import Tensor, dtypes  # child process: after DEV is set

    return {name: Tensor(rng.integers(0, 256, size=shape, dtype=np.uint8), dtype=dtypes.uint8).realize()
            for name, shape in metadata["input_shapes"].items()}


def _policy_arrays(metadata: dict, hidden: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, shape in metadata["input_shapes"].items():
        value = np.zeros(shape, np.float32)
        if name in ("desire", "desire_pulse"):
            value[0, -1, 3] = 1.0  # a lane-change-left pulse in the newest slot
        elif name == "traffic_convention":
            value[0] = [1.0, 0.0]  # right-hand traffic
        elif name == "features_buffer":
            value[:] = rng.standard_normal(shape).astype(np.float32)
            value[0, -1] = hidden.reshape(-1)[: shape[-1]]  # the newest entry is this frame's hidden_state
        elif name == "lateral_control_params":
            value[0] = [20.0, 0.2]
        out[name] = value
    return out


def _check_parsed(spec: ModelSpec, parsed: dict[str, np.ndarray], flat: np.ndarray) -> dict[str, list[int]]:
    problems = []
    if flat.size != spec.output_width or not np.isfinite(flat).all():
        problems.append(f"raw output has {flat.size} values (expected {spec.output_width}), finite: "
                        f"{bool(np.isfinite(flat).all())}")
    shapes, head_problems = parsed_head_problems(spec, parsed)
    problems += head_problems
    if problems:
        raise SystemExit(f"{spec.name}: " + "; ".join(problems))
    return shapes


def parsed_head_problems(spec: ModelSpec, parsed: dict[str, Any]) -> tuple[dict[str, list[int]], list[str]]:
    """Every head of ``spec`` (and ``<head>_stds`` of MDN heads) in a parser's output, with the contract's parsed
    shape and finite values: ``({name: shape}, [problems])``."""
    problems, shapes = [], {}
    for head in spec.heads:
        expected = head.parsed_shape(1) if head.kind is HeadKind.MDN else (1,) + head.shape
        for name in [head.name] + ([head.name + "_stds"] if head.kind is HeadKind.MDN else []):
            value = parsed.get(name)
            if value is None:
                problems.append(f"{name} missing")
                continue
            value = np.asarray(value)
            shapes[name] = list(value.shape)
            if value.shape != expected:
                problems.append(f"{name} has shape {value.shape}, expected {expected}")
            elif not np.isfinite(value).all():
                problems.append(f"{name} has non-finite values")
    return shapes, problems


def smoke(models_dir: Path, profile_id: str, checkout: Path | None) -> dict[str, Any]:
    from tinygrad import Device, Tensor  # child process: after DEV is set

    profile = get_profile(profile_id)
    meta = {m: load_metadata(models_dir / f"{m}_metadata.pkl") for m in (VISION_MODEL, POLICY_MODEL)}
    parser = import_checkout_parser(checkout)() if checkout is not None else None
    start = time.perf_counter()
    runs = {}
    for m in (VISION_MODEL, POLICY_MODEL):
        path = models_dir / f"{m}_tinygrad.pkl"
        try:
            with open(path, "rb") as f:
                runs[m] = pickle.load(f)  # executes the pickle: this is why the smoke test is a child process
        except Exception as exc:
            raise SystemExit(f"{path.name} cannot be loaded ({type(exc).__name__}: {exc}); it is damaged or was "
                             f"pickled by another tinygrad version - re-export it") from None
    loaded_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    vision_flat = _run(runs[VISION_MODEL], _vision_inputs(meta[VISION_MODEL], rng))
    sliced = slice_outputs(vision_flat, meta[VISION_MODEL]["output_slices"])
    vision = parser.parse_vision_outputs(sliced) if parser else parse_outputs(profile.vision, vision_flat)
    arrays = _policy_arrays(meta[POLICY_MODEL], np.asarray(vision["hidden_state"]), rng)
    policy_flat = _run(runs[POLICY_MODEL], {k: Tensor(v, device="NPY").realize() for k, v in arrays.items()})
    sliced = slice_outputs(policy_flat, meta[POLICY_MODEL]["output_slices"])
    policy = parser.parse_policy_outputs(sliced) if parser else parse_outputs(profile.policy, policy_flat)
    shapes = {VISION_MODEL: _check_parsed(profile.vision, vision, vision_flat),
              POLICY_MODEL: _check_parsed(profile.policy, policy, policy_flat)}
    parser_name = str(checkout / "selfdrive/modeld/parse_model_outputs.py") if checkout else "contract.outputs"
    return {"device": Device.DEFAULT, "profile": profile_id, "parser": parser_name, "shapes": shapes,
            "load_s": round(loaded_s, 3), "total_s": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Load installed tinygrad pickles and "
                                     "metadata like modeld, run them on synthetic inputs and check the parsed outputs.")
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--checkout", type=Path, default=None, help="parse with this checkout's modeld parser")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        report = smoke(args.models_dir, args.profile, args.checkout)
    except SystemExit:
        raise
    except Exception as exc:  # one line for the installer; the traceback helps only us
        import traceback

        traceback.print_exc()
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None
    args.report.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
