"""The install smoke test through the checkout's own loading code: its ``modeld.py`` model-state class and parser.

Child side (``python -m sunnypilot_training.integration.checkout_modeld CHECKOUT --profile P --camera WxH --report
R``, with ``DEV`` set and the checkout's ``tinygrad_repo`` first on ``PYTHONPATH``): the checkout becomes the
``openpilot`` package, only native-code modules are stood in (``native_standins``), and
``openpilot.selfdrive.modeld.modeld`` is imported from the checkout. Its ``ModelState(cam_w, cam_h[, False])`` (the
third argument of the 2026 forms picks the USB-GPU model: no) opens the installed files from the checkout's own
models folder; ``run`` is called for a few frames of NV12 camera buffers with warp matrices, a desire pulse,
right-hand traffic and typical action delays - the arguments its ``main()`` passes - and what its own ``Parser``
returns must hold every head of the profile with the contract's parsed shape and finite values.

One fact its build writes is supplied when absent: ``models/tg_input_devices.json`` (which tinygrad device the inputs
go to; the SConscript writes it) - the helpers are pointed at a file naming ``DEV``. Nothing of the checkout changes.

Parent side: ``run_checkout_modeld``. When the checkout's ``modeld.py`` cannot be imported in this process (a
module or a tinygrad API it needs is missing here) or holds no ``ModelState``, the report says so and why
(``ran: false``): the release harness has proven the files then. Any failure after the import - constructing the
model state on the installed files, running it, parsing - is an InstallError.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from sunnypilot_training.contract.nv12 import nv12_layout
from sunnypilot_training.contract.profiles import Profile, get_profile
from sunnypilot_training.contract.runtimes import COMBINED
from sunnypilot_training.errors import InstallError
from sunnypilot_training.integration.native_standins import BUILD_OUTPUT, StandinModule, install_standins
from sunnypilot_training.integration.smoke_test import parsed_head_problems, use_checkout_as_openpilot

MODULE = "sunnypilot_training.integration.checkout_modeld"
MODELD_MODULE = "openpilot.selfdrive.modeld.modeld"
HELPERS_MODULE = "openpilot.selfdrive.modeld.helpers"
NOT_RUN_EXIT = 3
FRAMES = 4
PULSE_FRAME = 2  # a lane-change-left desire rises on this frame
TIMEOUT_S = 900
DRIVEN_PROFILES = ("op-0.11.1", "op-2026.07", "op-2026.09")  # the ModelState of selfdrive/modeld/modeld.py


# --- parent side -------------------------------------------------------------------------------------------------
def run_checkout_modeld(checkout: Path, profile_id: str, device: str, camera: tuple[int, int],
                        timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """Drive the installed files with the checkout's own ModelState in a child process; its report."""
    if profile_id not in DRIVEN_PROFILES:
        return {"ran": False, "reason": f"{profile_id}: its model state (sunnypilot's modeld_v2) is not driven by "
                                        f"the smoke test; the release harness proved the files"}
    with tempfile.TemporaryDirectory(prefix="sptrain-checkout-") as work:
        report = Path(work) / "report.json"
        cmd = [sys.executable, "-m", MODULE, str(checkout), "--profile", profile_id, "--camera",
               f"{camera[0]}x{camera[1]}", "--report", str(report)]
        env = {**os.environ, "DEV": device}
        repo = checkout / "tinygrad_repo"
        if (repo / "tinygrad").is_dir():  # the checkout's own tinygrad, as its modeld imports it
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH", "")]))
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, cwd=work)
        except subprocess.TimeoutExpired:
            raise InstallError(f"smoke test: the checkout's own modeld did not finish within {timeout_s:.0f} s") \
                from None
        if result.returncode in (0, NOT_RUN_EXIT) and report.is_file():
            return json.loads(report.read_text(encoding="utf-8"))
    last = (result.stderr.strip() or result.stdout.strip() or "(no output)").splitlines()[-1]
    raise InstallError(f"smoke test: the checkout's own {MODELD_MODULE}.ModelState could not run the installed "
                       f"{profile_id} files (DEV={device}): {last}")


# --- child side --------------------------------------------------------------------------------------------------
class CameraBuffer:
    """What ModelState.run reads of a VisionBuf: ``data`` (the NV12 bytes) and the frame size."""

    def __init__(self, width: int, height: int, size: int):
        self.width, self.height = width, height
        self.data = np.zeros(size, np.uint8)


def import_modeld(checkout: Path) -> tuple[Any, dict[str, str]]:
    """The checkout's modeld module, native modules stood in; (module, {stood-in module: why})."""
    standins = install_standins()
    use_checkout_as_openpilot(checkout)
    module = importlib.import_module(MODELD_MODULE)
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


def drive(state: Any, camera: tuple[int, int], frames: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``state.run`` over ``frames`` frames, the way modeld's main loop calls it; the parsed outputs."""
    size = nv12_layout(*camera).size
    bufs = {key: CameraBuffer(camera[0], camera[1], size) for key in ("img", "big_img")}
    tfm = np.array([[2.0, 0.0, 150.25], [0.0, 2.0, 120.25], [0.0, 0.0, 1.0]], np.float32)
    extra = {"prepare_only": False} if "prepare_only" in inspect.signature(state.run).parameters else {}
    outputs = []
    for i in range(frames):
        for buf in bufs.values():  # a ring buffer refilled in place, as visionipc does
            buf.data[:] = rng.integers(0, 256, size, dtype=np.uint8)
        desire = np.zeros(8, np.float32)
        desire[3] = 1.0 if i == PULSE_FRAME else 0.0
        inputs = {"desire_pulse": desire, "traffic_convention": np.array([1.0, 0.0], np.float32),
                  "action_t": np.array([0.25, 0.45], np.float32)}
        outputs.append(state.run(bufs, {"img": tfm.copy(), "big_img": tfm.copy()}, inputs, **extra))
    return outputs


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


def smoke(checkout: Path, profile_id: str, camera: tuple[int, int], work: Path) -> dict[str, Any]:
    from tinygrad import Device  # child process: after DEV is set

    profile = get_profile(profile_id)
    try:
        modeld, standins = import_modeld(checkout)
    except Exception as exc:  # noqa: BLE001 - any import failure means: not run here, and why
        return {"ran": False, "reason": f"importing {MODELD_MODULE} from {checkout} failed: "
                                        f"{type(exc).__name__}: {exc}"}
    if isinstance(modeld, StandinModule):
        return {"ran": False, "reason": f"{checkout} has no {MODELD_MODULE.replace('.', '/')}.py"}
    if not inspect.isclass(getattr(modeld, "ModelState", None)):
        return {"ran": False, "reason": f"{modeld.__file__} has no ModelState class"}
    supplied = supply_input_devices(modeld, Device.DEFAULT, work)
    start = time.perf_counter()
    try:
        state = build_model_state(modeld, camera)
        loaded_s = time.perf_counter() - start
        outputs = drive(state, camera, FRAMES, np.random.default_rng(0))
        heads = check_outputs(profile, outputs)
    except Exception as exc:
        missing = sorted(name for name, why in standins.items() if why == BUILD_OUTPUT)
        hint = f" (stood in as absent from the checkout: {', '.join(missing)})" if missing else ""
        raise RuntimeError(f"{type(exc).__name__}: {exc}{hint}") from exc
    return {"ran": True, "modeld": str(modeld.__file__), "model_state": f"{MODELD_MODULE}.ModelState",
            "profile": profile_id, "device": Device.DEFAULT, "frames": len(outputs),
            "heads": heads, "standins": standins, "supplied": supplied,
            "load_s": round(loaded_s, 3), "total_s": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Run installed model files through a "
                                     "checkout's own modeld ModelState and parser, native modules stood in.")
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--camera", required=True, help="WIDTHxHEIGHT")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    camera = tuple(int(v) for v in args.camera.lower().split("x"))
    try:
        report = smoke(args.checkout.resolve(), args.profile, camera, args.report.parent)
    except SystemExit:
        raise
    except Exception as exc:  # one line for the installer; the traceback helps only us
        traceback.print_exc()
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if report["ran"] else NOT_RUN_EXIT


if __name__ == "__main__":
    sys.exit(main())
