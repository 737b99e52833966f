"""Per-release harnesses: load an export folder the way each 2026 runtime's modeld does and drive it frame by frame.

Written by us from reading each release's ``modeld.py`` (commits in docs/contract.md and ``contract.runtimes``); no
upstream code. Each harness opens the files that release opens, reads the keys it reads, builds its queues and
host buffers with its dtypes and devices, feeds raw NV12 camera buffers with their warp matrices, feeds state
outputs back the way it does, and returns the flat model output of every frame:

* ``combined`` (openpilot 0.11.1, master 6941a913a): ``pickle.loads`` of ``driving_tinygrad.pkl``; metadata from
  ``['metadata']['vision'|'policy']``; queues ``img_q``/``big_img_q`` (5, 6, 128, 256) uint8, ``feat_q`` (97, 1,
  512), ``desire_q`` (100, 1, 8) on the device, ``desire``/``traffic_convention``/``tfm``/``big_tfm`` as NPY
  tensors over numpy arrays; ``jits[(w, h)]['run_policy'](**queues, frame=, big_frame=)`` -> (vision, policy).
* ``supercombo`` (master e04fd3c7, 2026-07-23): out-of-band ``driving_tinygrad.pkl``; ``jits['metadata']``;
  ``warp = jits[(w, h)]``; the host buffer ``packed_npy_inputs = [desire | traffic_convention | action_t |
  prev_feat]``; ``warped = warp(tfm=, big_tfm=, frame=, big_frame=)``; ``outs, = run_policy(..., warped=)``; then
  ``prev_feat`` = this frame's ``hidden_state``.
* ``stateful`` (commaai 4d6e8b3 / fe8961e, 2026-09): out-of-band ``driving_tinygrad.pkl`` with ``input_specs``,
  ``output_specs`` and base64 ``output_slices`` in ``['metadata']['metadata']``; state pairs are the inputs X with
  an output ``next_X``, whose output buffer is a view of the state input's buffer (a distinct tensor, as the runtime
  builds it); float32 host inputs; ``new_img`` from
  ``driving_warp_{w}x{h}_tinygrad.pkl``'s ``run(input_frame=(2, copy_size) uint8, M_inv=(2, 3, 3))``;
  ``run(output_buffers=outputs, **inputs)``; ``outputs['outputs']``.

``python -m sunnypilot_training.export.runtime_harness PACKAGING MODELS_DIR --frames FRAMES.npz --outputs OUT.npz``
runs one in a fresh process (``DEV`` set); FRAMES.npz holds ``road``/``wide`` (n, size) uint8 buffers, ``tfm``/
``big_tfm`` (n, 3, 3), ``desire`` (n, 8), ``traffic_convention`` (2,), ``action_t`` (2,) and ``camera`` (w, h).
"""

from __future__ import annotations

import argparse
import base64
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from sunnypilot_training.contract.nv12 import nv12_layout
from sunnypilot_training.export.oob import load_oob
from sunnypilot_training.export.runtime_build import buffer_view, combined_queues, supercombo_queues

MODULE = "sunnypilot_training.export.runtime_harness"
RISING_EDGE = 0.99
HOST_ALIGN_BYTES = 128


class Pulse:
    """The desire pulse every release computes: index 0 zeroed, kept on its rising edge only."""

    def __init__(self) -> None:
        self.prev = np.zeros(8, np.float32)

    def __call__(self, desire: np.ndarray) -> np.ndarray:
        desire = np.asarray(desire, np.float32).copy()
        desire[0] = 0
        pulse = np.where(desire - self.prev > RISING_EDGE, desire, 0).astype(np.float32)
        self.prev[:] = desire
        return pulse


def _device_frame(buffer: np.ndarray):
    from tinygrad import Tensor  # child process: after DEV is set

    return Tensor(np.ascontiguousarray(buffer, np.uint8)).realize()


def run_combined(models_dir: Path, frames: dict[str, np.ndarray]) -> list[np.ndarray]:
    from tinygrad import Device  # child process: after DEV is set

    with open(models_dir / "driving_tinygrad.pkl", "rb") as f:
        jits = pickle.loads(f.read())  # noqa: S301 - our own export
    vision_md, policy_md = jits["metadata"]["vision"], jits["metadata"]["policy"]
    queues, npy = combined_queues(vision_md["input_shapes"], policy_md["input_shapes"], Device.DEFAULT)
    camera = tuple(int(v) for v in frames["camera"])
    run_policy = jits[camera]["run_policy"]
    pulse, outputs = Pulse(), []
    for i in range(len(frames["road"])):
        npy["desire"][:] = pulse(frames["desire"][i])
        npy["traffic_convention"][:] = frames["traffic_convention"]
        npy["tfm"][:, :] = frames["tfm"][i]
        npy["big_tfm"][:, :] = frames["big_tfm"][i]
        vision, policy = run_policy(**queues, frame=_device_frame(frames["road"][i]),
                                    big_frame=_device_frame(frames["wide"][i]))
        outputs.append(np.concatenate([vision.numpy().reshape(-1), policy.numpy().reshape(-1)]))
    return outputs


def run_supercombo(models_dir: Path, frames: dict[str, np.ndarray]) -> list[np.ndarray]:
    from tinygrad import Device  # child process: after DEV is set

    with open(models_dir / "driving_tinygrad.pkl", "rb") as f:
        jits = load_oob(f)
    metadata = jits["metadata"]
    output_slices = metadata["output_slices"]
    queues, npy = supercombo_queues(metadata["input_shapes"], Device.DEFAULT)
    camera = tuple(int(v) for v in frames["camera"])
    warp, run_policy = jits[camera], jits["run_policy"]
    pulse, outputs = Pulse(), []
    for i in range(len(frames["road"])):
        npy["desire"][:] = pulse(frames["desire"][i])
        npy["traffic_convention"][:] = frames["traffic_convention"]
        npy["action_t"][:] = frames["action_t"]
        npy["tfm"][:, :] = frames["tfm"][i]
        npy["big_tfm"][:, :] = frames["big_tfm"][i]
        warped = warp(tfm=queues["tfm"], big_tfm=queues["big_tfm"], frame=_device_frame(frames["road"][i]),
                      big_frame=_device_frame(frames["wide"][i]))
        outs, = run_policy(**{k: queues[k] for k in ("img_q", "big_img_q", "feat_q", "desire_q",
                                                     "packed_npy_inputs")}, warped=warped)
        model_output = outs.numpy()[0]
        npy["prev_feat"][:] = model_output[output_slices["hidden_state"]]
        outputs.append(model_output.copy())
    return outputs


class StatefulRunner:
    """The September-2026 runtime's model state for one camera size."""

    def __init__(self, models_dir: Path, camera: tuple[int, int], pickle_name: str = "driving_tinygrad.pkl"):
        from tinygrad import Tensor  # child process: after DEV is set

        with open(models_dir / pickle_name, "rb") as f:
            jits = load_oob(f)
        specs = jits["input_specs"]
        self.device = specs["new_img"][2]
        self.shapes = {name: (tuple(shape), np.dtype(dtype)) for name, (shape, dtype, _) in specs.items()}
        self.state_pairs = {n: f"next_{n}" for n in self.shapes if f"next_{n}" in jits["metadata"]["output_shapes"]}
        self.output_slices = pickle.loads(base64.b64decode(jits["metadata"]["metadata"]["output_slices"]))  # noqa: S301
        self.copy_size = nv12_layout(*camera).copy_size
        with open(models_dir / f"driving_warp_{camera[0]}x{camera[1]}_tinygrad.pkl", "rb") as f:
            self.run_warp = pickle.load(f)["run"]  # noqa: S301 - our own export
        self.run_model = jits["run"]
        self.inputs = {n: Tensor(np.zeros(s, d), device=self.device).realize() for n, (s, d) in self.shapes.items()
                       if n in self.state_pairs}
        self.outputs = {n: Tensor(np.zeros(s, np.dtype(d)), device=dev).realize()
                        for n, (s, d, dev) in jits["output_specs"].items() if n not in self.state_pairs.values()}
        for name, next_name in self.state_pairs.items():
            self.outputs[next_name] = buffer_view(self.inputs[name])  # next_X: a view of X's buffer
        host = {"tfm": (2, 3, 3)} | {n: s for n, (s, _) in self.shapes.items()
                                     if n not in self.state_pairs and n != "new_img"}
        offsets, offset = {}, 0
        for name, shape in host.items():
            offsets[name] = offset
            size = int(np.prod(shape)) * 4
            offset += -(-size // HOST_ALIGN_BYTES) * HOST_ALIGN_BYTES
        self.packed = np.zeros(offset + 2 * self.copy_size, np.uint8)
        self.npy = {n: np.ndarray(s, np.float32, buffer=self.packed, offset=offsets[n]) for n, s in host.items()}
        self.frames = self.packed[offset:].reshape(2, self.copy_size)
        self.pulse = Pulse()

    def step(self, road: np.ndarray, wide: np.ndarray, tfm: np.ndarray, big_tfm: np.ndarray, desire: np.ndarray,
             traffic_convention: np.ndarray, action_t: np.ndarray) -> np.ndarray:
        from tinygrad import Tensor  # child process: after DEV is set

        for i, (buffer, transform) in enumerate(((road, tfm), (wide, big_tfm))):
            np.copyto(self.frames[i], np.asarray(buffer, np.uint8)[: self.copy_size])
            self.npy["tfm"][i] = transform
        self.npy["desire"][:] = self.pulse(desire)
        self.npy["traffic_convention"][:] = traffic_convention
        self.npy["action_t"][:] = action_t
        host = {n: Tensor(v.copy(), device=self.device).realize() for n, v in self.npy.items() if n != "tfm"}
        new_img = self.run_warp(input_frame=Tensor(self.frames.copy(), device=self.device).realize(),
                                M_inv=Tensor(self.npy["tfm"].copy(), device=self.device).realize())
        self.run_model(output_buffers=self.outputs, new_img=new_img, **host, **self.inputs)
        return self.outputs["outputs"].numpy()[0].copy()


def run_stateful(models_dir: Path, frames: dict[str, np.ndarray],
                 pickle_name: str = "driving_tinygrad.pkl") -> list[np.ndarray]:
    """sunnypilot's modeld_v2 (sp-2026.10) loads the same artifact from COMBINED_MODEL_PKL: ``pickle_name``."""
    runner = StatefulRunner(models_dir, tuple(int(v) for v in frames["camera"]), pickle_name)
    return [runner.step(frames["road"][i], frames["wide"][i], frames["tfm"][i], frames["big_tfm"][i],
                        frames["desire"][i], frames["traffic_convention"], frames["action_t"])
            for i in range(len(frames["road"]))]


HARNESSES = {"combined": run_combined, "supercombo": run_supercombo, "stateful": run_stateful}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Run an export folder the way a "
                                     "2026 runtime's modeld runs it, frame by frame, in this process.")
    parser.add_argument("packaging", choices=sorted(HARNESSES))
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--outputs", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--pickle", default=None, help="stateful: the artifact's file name (sunnypilot: the file "
                        "COMBINED_MODEL_PKL names)")
    args = parser.parse_args(argv)
    from tinygrad import Device  # child process: after DEV is set

    start = time.perf_counter()
    with np.load(args.frames) as data:
        frames = {k: data[k] for k in data.files}
    extra = {"pickle_name": args.pickle} if args.pickle else {}
    outputs = HARNESSES[args.packaging](args.models_dir, frames, **extra)
    np.savez(args.outputs, outputs=np.stack(outputs))
    args.report.write_text(json.dumps({"device": Device.DEFAULT, "frames": len(outputs),
                                       "child_s": round(time.perf_counter() - start, 2)}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
