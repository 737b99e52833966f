"""The install smoke test through the checkout's own loading code: its ``modeld.py`` model-state class and parser.

Child side (``python -m sunnypilot_training.integration.checkout_modeld CHECKOUT --profile P --frames FRAMES.npz
--outputs HEADS.npz --report R``, with ``DEV`` set and the checkout's ``tinygrad_repo`` first on ``PYTHONPATH``): the
checkout becomes the ``openpilot`` package, only native-code modules are stood in (``native_standins``), and the
runtime's modeld is imported from the checkout (``MODELD_MODULES``: ``openpilot.selfdrive.modeld.modeld``, for
sunnypilot's ``sp-2026.10`` ``openpilot.sunnypilot.modeld_v2.modeld``). Its ``ModelState(cam_w, cam_h[, False])``
(the third argument of the 2026 forms picks the USB-GPU model: no) opens the installed files from the checkout's own
models folder (modeld_v2: the pickle ``COMBINED_MODEL_PKL`` names, set by the parent, and the warps from its
``models`` folder); ``run`` is called over the release harness's frames (NV12 camera buffers, warp matrices, a desire
pulse, right-hand traffic, action delays) with the arguments its ``main()`` passes, and what its own ``Parser``
returns must hold every head of the profile with the contract's parsed shape and finite values. The heads every
parser passes through unchanged (``hidden_state``, ``action``) must then equal the harness's on the same frames:
the same pickles fed the checkout's way and the harness's way give the same numbers, or the feeding differs.

One fact its build writes is supplied when absent: ``models/tg_input_devices.json`` (which tinygrad device the inputs
go to; the SConscript writes it) - the helpers are pointed at a file naming ``DEV``. Nothing of the checkout changes.

Parent side: ``run_checkout_modeld``. When the checkout's ``modeld.py`` cannot be imported in this process (a
module or a tinygrad API it needs is missing here) or holds no ``ModelState``, the report says so and why
(``ran: false``): the release harness has proven the files then. Any failure after the import - constructing the
model state on the installed files, running it, parsing, a difference from the harness - is an InstallError.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from sunnypilot_training.contract.nv12 import nv12_layout
from sunnypilot_training.contract.profiles import HeadKind, Profile, get_profile
from sunnypilot_training.contract.runtimes import COMBINED, WIDE_NAME_MARK
from sunnypilot_training.errors import InstallError
from sunnypilot_training.integration.native_standins import BUILD_OUTPUT, StandinModule, install_standins
from sunnypilot_training.integration.smoke_test import (
    child_env,
    parsed_head_problems,
    use_checkout_as_openpilot,
)

MODULE = "sunnypilot_training.integration.checkout_modeld"
MODELD_MODULE = "openpilot.selfdrive.modeld.modeld"
SUNNYPILOT_MODELD_MODULE = "openpilot.sunnypilot.modeld_v2.modeld"
HELPERS_MODULE = "openpilot.selfdrive.modeld.helpers"
NOT_RUN_EXIT = 3
RAW_HEADS = ("hidden_state", "action")  # passed through by every parser: comparable with the harness's flat output
MATCH_ATOL, MATCH_RTOL = 1e-4, 1e-3  # the same pickles on the same device: only the feeding may differ
TIMEOUT_S = 900
# the module whose ModelState the smoke test drives, per profile
MODELD_MODULES = {"op-0.11.1": MODELD_MODULE, "op-2026.07": MODELD_MODULE, "op-2026.09": MODELD_MODULE,
                  "sp-2026.10": SUNNYPILOT_MODELD_MODULE}


# --- parent side -------------------------------------------------------------------------------------------------
def run_checkout_modeld(checkout: Path, profile_id: str, device: str, frames: Path,
                        harness_outputs: np.ndarray | None = None, timeout_s: float = TIMEOUT_S,
                        combined_pkl: Path | None = None) -> dict[str, Any]:
    """Drive the installed files with the checkout's own ModelState over ``frames`` (the harness's frames file) in a
    child process; its report. With ``harness_outputs`` (the release harness's flat outputs on the same frames) the
    raw heads the parser passes through (``hidden_state``, ``action``) must equal them frame by frame.
    ``combined_pkl``: the installed pickle sunnypilot's modeld_v2 is pointed at (``COMBINED_MODEL_PKL``)."""
    if profile_id not in MODELD_MODULES:
        return {"ran": False, "reason": f"{profile_id}: no model state of its runtime is driven by the smoke test; "
                                        f"the release harness proved the files"}
    module = MODELD_MODULES[profile_id]
    with tempfile.TemporaryDirectory(prefix="sptrain-checkout-") as work:
        report, outputs = Path(work) / "report.json", Path(work) / "heads.npz"
        cmd = [sys.executable, "-m", MODULE, str(checkout), "--profile", profile_id, "--frames", str(frames),
               "--outputs", str(outputs), "--report", str(report)]
        env = child_env(device, checkout)
        if combined_pkl is not None:  # the variable the runtime reads it from (sunnypilot: COMBINED_MODEL_PKL)
            env[get_profile(profile_id).runtime.pickle_env] = str(combined_pkl)
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, cwd=work)
        except subprocess.TimeoutExpired:
            raise InstallError(f"smoke test: the checkout's own modeld did not finish within {timeout_s:.0f} s") \
                from None
        if result.returncode in (0, NOT_RUN_EXIT) and report.is_file():
            found = json.loads(report.read_text(encoding="utf-8"))
            if found["ran"] and harness_outputs is not None:
                with np.load(outputs) as heads:
                    found["vs_harness"] = compare_with_harness(get_profile(profile_id), dict(heads), harness_outputs)
            return found
    last = (result.stderr.strip() or result.stdout.strip() or "(no output)").splitlines()[-1]
    raise InstallError(f"smoke test: the checkout's own {module}.ModelState could not run the installed "
                       f"{profile_id} files (DEV={device}): {last}")


def raw_head_slices(profile: Profile) -> dict[str, slice]:
    """Where the heads a parser passes through unchanged sit in the harness's flat output of one frame; for an MDN
    ``action`` (sp-2026.10) the means its parser returns."""
    spec = profile.vision if profile.runtime.packaging == COMBINED else profile.graph
    found = {}
    for name, where in spec.output_slices().items():
        if name in RAW_HEADS:
            head = spec.head(name)
            found[name] = slice(where.start, where.start + head.n_values) if head.kind is HeadKind.MDN else where
    return found


def compare_with_harness(profile: Profile, heads: dict[str, np.ndarray], harness: np.ndarray) -> dict[str, float]:
    """Max |difference| per raw head between the checkout's run and the harness's; InstallError past tolerance."""
    out = {}
    for name, where in raw_head_slices(profile).items():
        mine, theirs = heads[name], harness[:, where]
        if mine.shape != theirs.shape:
            raise InstallError(f"smoke test: the checkout's own ModelState gave {name} of shape {mine.shape} over the "
                               f"frames, the release harness {theirs.shape}")
        diff = float(np.abs(mine.astype(np.float64) - theirs).max())
        if diff > MATCH_ATOL + MATCH_RTOL * float(np.abs(theirs).max()):
            raise InstallError(f"smoke test: on the same frames the checkout's own ModelState computes another "
                               f"{name} than the release harness (max |difference| {diff:.3g}): it feeds the model "
                               f"differently - the export does not fit this checkout's runtime")
        out[name] = diff
    return out


# --- child side --------------------------------------------------------------------------------------------------
class CameraBuffer:
    """What ModelState.run reads of a VisionBuf: ``data`` (the NV12 bytes) and the frame size."""

    def __init__(self, width: int, height: int, size: int):
        self.width, self.height = width, height
        self.data = np.zeros(size, np.uint8)


def import_modeld(checkout: Path, name: str = MODELD_MODULE) -> tuple[Any, dict[str, str]]:
    """The checkout's modeld module ``name``, native modules stood in; (module, {stood-in module: why})."""
    standins = install_standins()
    use_checkout_as_openpilot(checkout)
    module = importlib.import_module(name)
    return module, standins.answered


def supply_input_devices(modeld: Any, device: str, work: Path) -> str | None:
    """Point the checkout's helpers at a ``tg_input_devices.json`` naming ``device`` when its build wrote none."""
    helpers = sys.modules.get(HELPERS_MODULE)
    path = getattr(helpers, "TG_INPUT_DEVICES_PATH", None)
    reader = getattr(helpers, "get_tg_input_devices", None)
    if path is None or reader is None or Path(path).is_file():
        return None
    process = getattr(modeld, "PROCESS_NAME", MODELD_MODULE)
    per_flag = len(inspect.signature(reader).parameters) > 1  # (process, usbgpu): {'default': {...}, 'usbgpu': ...}
    names = {"WARP_DEV": device, "QUEUE_DEV": device, "DEV": device}
    entry = {"default": names, "usbgpu": names} if per_flag else device
    supplied = work / "tg_input_devices.json"
    supplied.write_text(json.dumps({process: entry}), encoding="utf-8")
    helpers.TG_INPUT_DEVICES_PATH = supplied
    return str(supplied)


def build_model_state(modeld: Any, camera: tuple[int, int]) -> Any:
    """``ModelState(cam_w, cam_h)`` plus ``False`` for every further required argument (the USB-GPU flag)."""
    params = list(inspect.signature(modeld.ModelState).parameters.values())
    flags = [False for p in params[2:] if p.default is inspect.Parameter.empty]
    return modeld.ModelState(camera[0], camera[1], *flags)


def camera_names(state: Any, sunnypilot: bool) -> dict[str, str]:
    """Which camera (``road``/``wide``) each input name of ``run``'s bufs and transforms gets, as main() builds them:
    openpilot ``img``/``big_img``; sunnypilot's modeld_v2 every name of ``state.vision_input_names``, the wide camera
    for a name holding "big"."""
    names = list(state.vision_input_names) if sunnypilot else ["img", "big_img"]
    return {name: "wide" if WIDE_NAME_MARK in name else "road" for name in names}


def host_inputs(state: Any, frames: dict[str, np.ndarray], i: int, sunnypilot: bool) -> dict[str, np.ndarray]:
    """``run``'s inputs for frame ``i`` as main() passes them (sunnypilot: under ``state.desire_key``, ``action_t``
    only when the model state has such an input)."""
    desire_key = state.desire_key if sunnypilot else "desire_pulse"
    inputs = {desire_key: frames["desire"][i].astype(np.float32).copy(),
              "traffic_convention": frames["traffic_convention"].astype(np.float32).copy()}
    if not sunnypilot or "action_t" in state.numpy_inputs:
        inputs["action_t"] = frames["action_t"].astype(np.float32).copy()
    return inputs


def drive(state: Any, frames: dict[str, np.ndarray], sunnypilot: bool = False) -> list[dict[str, Any]]:
    """``state.run`` over the frames, the way modeld's main loop calls it; the parsed outputs."""
    camera = tuple(int(v) for v in frames["camera"])
    size = max(nv12_layout(*camera).size, frames["road"].shape[1])
    cameras = {name: CameraBuffer(camera[0], camera[1], size) for name in ("road", "wide")}
    transform_keys = {"road": "tfm", "wide": "big_tfm"}
    names = camera_names(state, sunnypilot)
    extra = {"prepare_only": False} if "prepare_only" in inspect.signature(state.run).parameters else {}
    outputs = []
    for i in range(len(frames["road"])):
        for name, buf in cameras.items():  # a ring buffer refilled in place, as visionipc
            buf.data[: frames[name].shape[1]] = frames[name][i]
        bufs = {key: cameras[which] for key, which in names.items()}
        transforms = {key: frames[transform_keys[which]][i].astype(np.float32) for key, which in names.items()}
        outputs.append(state.run(bufs, transforms, host_inputs(state, frames, i, sunnypilot), **extra))
    return outputs


def raw_heads(profile: Profile, outputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """(frames, width) per head the parser passes through, for the comparison with the harness."""
    return {name: np.stack([np.asarray(o[name], np.float32).reshape(-1) for o in outputs])
            for name in raw_head_slices(profile)}


def check_outputs(profile: Profile, outputs: list[dict[str, Any]]) -> dict[str, list[int]]:
    specs = [profile.vision, profile.policy] if profile.runtime.packaging == COMBINED else [profile.graph]
    shapes: dict[str, list[int]] = {}
    for t, parsed in enumerate(outputs):
        if not isinstance(parsed, dict):
            raise SystemExit(f"ModelState.run returned {type(parsed).__name__} at frame {t}, expected the parsed dict")
        for spec in specs:
            found, problems = parsed_head_problems(spec, parsed)
            if problems:
                raise SystemExit(f"the checkout's parser output at frame {t} ({spec.name}): " + "; ".join(problems))
            shapes.update(found)
    return shapes


def smoke(checkout: Path, profile_id: str, frames: dict[str, np.ndarray], work: Path,
          heads_npz: Path) -> dict[str, Any]:
    from tinygrad import Device  # child process: after DEV is set

    profile = get_profile(profile_id)
    name = MODELD_MODULES[profile_id]
    sunnypilot = name == SUNNYPILOT_MODELD_MODULE
    try:
        modeld, standins = import_modeld(checkout, name)
    except Exception as exc:  # noqa: BLE001 - any import failure means: not run here, and why
        return {"ran": False, "reason": f"importing {name} from {checkout} failed: {type(exc).__name__}: {exc}"}
    if isinstance(modeld, StandinModule):
        return {"ran": False, "reason": f"{checkout} has no {name.replace('.', '/')}.py"}
    if not inspect.isclass(getattr(modeld, "ModelState", None)):
        return {"ran": False, "reason": f"{modeld.__file__} has no ModelState class"}
    supplied = supply_input_devices(modeld, Device.DEFAULT, work)
    start = time.perf_counter()
    try:
        state = build_model_state(modeld, tuple(int(v) for v in frames["camera"]))
        loaded_s = time.perf_counter() - start
        outputs = drive(state, frames, sunnypilot)
        heads = check_outputs(profile, outputs)
        np.savez(heads_npz, **raw_heads(profile, outputs))
    except Exception as exc:
        missing = sorted(name for name, why in standins.items() if why == BUILD_OUTPUT)
        hint = f" (stood in as absent from the checkout: {', '.join(missing)})" if missing else ""
        raise RuntimeError(f"{type(exc).__name__}: {exc}{hint}") from exc
    return {"ran": True, "modeld": str(modeld.__file__), "model_state": f"{name}.ModelState",
            "profile": profile_id, "device": Device.DEFAULT, "frames": len(outputs),
            "heads": heads, "standins": standins, "supplied": supplied,
            "load_s": round(loaded_s, 3), "total_s": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Run installed model files through a "
                                     "checkout's own modeld ModelState and parser, native modules stood in.")
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--frames", type=Path, required=True, help="the release harness's frames file (road, wide, "
                        "tfm, big_tfm, desire, traffic_convention, action_t, camera)")
    parser.add_argument("--outputs", type=Path, required=True, help="npz of the raw heads per frame")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    with np.load(args.frames) as data:
        frames = {k: data[k] for k in data.files}
    try:
        report = smoke(args.checkout.resolve(), args.profile, frames, args.report.parent, args.outputs)
    except SystemExit:
        raise
    except Exception as exc:  # one line for the installer; the traceback helps only us
        traceback.print_exc()
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if report["ran"] else NOT_RUN_EXIT


if __name__ == "__main__":
    sys.exit(main())
