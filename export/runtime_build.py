"""Child process: compile our ONNX into the pickle layout each 2026 runtime loads (our code, written from the facts).

``python -m sunnypilot_training.export.runtime_build PACKAGING OUT_DIR --onnx ... --cameras 1344x760 ...`` with
``DEV`` set. What it writes (docs/contract.md, "Runtimes"):

* ``combined`` (openpilot 0.11.1): ``driving_tinygrad.pkl``, a plain pickle ``{'metadata': {'vision': md,
  'policy': md}, (w, h): {'warp_enqueue': jit, 'run_policy': jit}}``; ``run_policy(img_q, big_img_q, feat_q,
  desire_q, desire, traffic_convention, tfm, big_tfm, frame, big_frame) -> (vision_out, policy_out)`` warps both
  raw NV12 frames, shifts the queues in place and runs both models; ``warp_enqueue`` only warps and shifts.
* ``supercombo`` (master June-September 2026): ``driving_tinygrad.pkl`` in the out-of-band layout (``oob.py``):
  ``{'metadata': md, 'run_policy': jit, (w, h): warp}``; ``warp(tfm, big_tfm, frame, big_frame) -> (2, 6, 128,
  256)``; ``run_policy(warped, img_q, big_img_q, feat_q, desire_q, packed_npy_inputs) -> (outputs,)`` with
  ``packed_npy_inputs = [desire 8 | traffic_convention 2 | action_t 2 | prev_feat 512]``.
* ``stateful`` (from September 2026): ``driving_tinygrad.pkl`` (out-of-band) ``{'metadata': {'metadata': props,
  'input_shapes', 'output_shapes'}, 'run': jit, 'input_specs', 'output_specs'}`` with ``run(output_buffers,
  **inputs)`` writing every graph output into ``output_buffers``; ``driving_warp_{w}x{h}_tinygrad.pkl`` (plain)
  ``{'metadata': {}, 'run': jit(input_frame (2, copy_size) uint8, M_inv (2, 3, 3)), 'input_specs'}``.

The child imports numpy, tinygrad, onnx-free parts of our contract and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from sunnypilot_training.contract.nv12 import MODEL_HEIGHT_PX, MODEL_WIDTH_PX, UV_SCALE, NV12Layout, nv12_layout
from sunnypilot_training.export.oob import dump_oob

MODULE = "sunnypilot_training.export.runtime_build"
FRAME_SKIP = 4
PACKED_POLICY_INPUTS = ("desire", "traffic_convention", "action_t", "prev_feat")


def parse_camera(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


# --- warp ------------------------------------------------------------------------------------------------------
def _sample(tensor, plane, m_inv, out_w: int, out_h: int, src_w: int, src_h: int, row: int):
    """Nearest-neighbour gather of ``plane`` (flat, ``row`` bytes per source row) at M_inv-mapped model pixels."""
    xs = tensor.arange(out_w).reshape(1, out_w).expand(out_h, out_w).reshape(-1).float()
    ys = tensor.arange(out_h).reshape(out_h, 1).expand(out_h, out_w).reshape(-1).float()
    den = m_inv[2, 0] * xs + m_inv[2, 1] * ys + m_inv[2, 2]
    src_x = ((m_inv[0, 0] * xs + m_inv[0, 1] * ys + m_inv[0, 2]) / den).round().clip(0, src_w - 1).cast("int32")
    src_y = ((m_inv[1, 0] * xs + m_inv[1, 1] * ys + m_inv[1, 2]) / den).round().clip(0, src_h - 1).cast("int32")
    return plane[src_y * row + src_x].reshape(out_h, out_w)


def make_frame_prepare(layout: NV12Layout):
    """frame (>= copy_size,) uint8, M_inv (3, 3) -> (6, 128, 256) uint8, packed like contract.yuv."""
    from tinygrad import Tensor  # child process: after DEV is set

    w, h = layout.width, layout.height

    def prepare(frame, m_inv):
        y_plane = frame[: layout.uv_offset]
        uv = frame[layout.uv_offset: layout.uv_offset + layout.uv_height * layout.stride]
        uv = uv.reshape(layout.uv_height, layout.stride)[: h // 2, :w]
        m_uv = m_inv * Tensor(UV_SCALE, device=m_inv.device)
        y = _sample(Tensor, y_plane, m_inv, MODEL_WIDTH_PX, MODEL_HEIGHT_PX, w, h, layout.stride)
        u = _sample(Tensor, uv[:, 0::2].flatten(), m_uv, MODEL_WIDTH_PX // 2, MODEL_HEIGHT_PX // 2, w // 2, h // 2,
                    w // 2)
        v = _sample(Tensor, uv[:, 1::2].flatten(), m_uv, MODEL_WIDTH_PX // 2, MODEL_HEIGHT_PX // 2, w // 2, h // 2,
                    w // 2)
        return Tensor.stack(y[0::2, 0::2], y[1::2, 0::2], y[0::2, 1::2], y[1::2, 1::2], u, v)

    return prepare


# --- queues ----------------------------------------------------------------------------------------------------
def push(queue, value):
    """Shift ``queue`` by one entry in place, ``value`` last; the updated queue."""
    queue.assign(queue[1:].cat(value, dim=0).contiguous())
    return queue


def every_fourth(queue):
    """(n, ...) -> (1, n//4 (+1), ...) entries 0, 4, 8, ... flattened over the first two axes."""
    return queue[::FRAME_SKIP].contiguous().flatten(0, 1).unsqueeze(0)


def max_per_four(queue):
    return queue.reshape(-1, FRAME_SKIP, *queue.shape[1:]).max(1).flatten(0, 1).unsqueeze(0)


def _first_output(runner, inputs):
    return next(iter(runner(inputs).values())).cast("float32")


# --- the three layouts -----------------------------------------------------------------------------------------
def _metadata(onnx_path: str) -> dict:
    with open(Path(onnx_path).with_suffix(".metadata.json")) as f:  # written by the parent from the ONNX
        raw = json.load(f)
    return pickle.loads(bytes.fromhex(raw["pickle_hex"]))


def _jit_runs(jit, make_args, n: int = 3):
    outs = None
    for _ in range(n):
        outs = jit(**make_args())
    return outs


def build_combined(vision_onnx: str, policy_onnx: str, cameras: list[tuple[int, int]]) -> dict:
    from tinygrad import Device, Tensor, TinyJit  # child process: after DEV is set
    from tinygrad.nn.onnx import OnnxRunner  # child process: after DEV is set

    vision_md, policy_md = _metadata(vision_onnx), _metadata(policy_onnx)
    vision, policy = OnnxRunner(vision_onnx), OnnxRunner(policy_onnx)
    hidden = vision_md["output_slices"]["hidden_state"]
    out: dict = defaultdict(dict)
    out["metadata"] = {"vision": vision_md, "policy": policy_md}
    for camera in cameras:
        layout = nv12_layout(*camera)
        prepare = make_frame_prepare(layout)
        for name, only_warp in (("warp_enqueue", True), ("run_policy", False)):
            def step(img_q, big_img_q, feat_q, desire_q, desire, traffic_convention, tfm, big_tfm, frame, big_frame,
                     only_warp=only_warp, prepare=prepare):
                tfm, big_tfm = tfm.to(Device.DEFAULT), big_tfm.to(Device.DEFAULT)
                desire, traffic_convention = desire.to(Device.DEFAULT), traffic_convention.to(Device.DEFAULT)
                img = every_fourth(push(img_q, prepare(frame, tfm).unsqueeze(0)))
                big_img = every_fourth(push(big_img_q, prepare(big_frame, big_tfm).unsqueeze(0)))
                if only_warp:
                    return img, big_img
                vision_out = _first_output(vision, {"img": img, "big_img": big_img})
                features = every_fourth(push(feat_q, vision_out[:, hidden].reshape(1, 1, -1)))
                pulses = max_per_four(push(desire_q, desire.reshape(1, 1, -1)))
                policy_out = _first_output(policy, {"features_buffer": features, "desire_pulse": pulses,
                                                    "traffic_convention": traffic_convention})
                return vision_out, policy_out

            jit = TinyJit(step, prune=True)
            queues = combined_queues(vision_md["input_shapes"], policy_md["input_shapes"], Device.DEFAULT)
            frames = {"frame": Tensor.randint(layout.size, low=0, high=256, dtype="uint8").realize(),
                      "big_frame": Tensor.randint(layout.size, low=0, high=256, dtype="uint8").realize()}
            _jit_runs(jit, lambda q=queues, f=frames: {**q[0], **f})
            out[camera][name] = jit
    return out


def combined_queues(vision_shapes: dict, policy_shapes: dict, device: str):
    """The 0.11.1 runtime's queues: (tensors by name, numpy views of the NPY ones)."""
    from tinygrad import Tensor  # child process: after DEV is set

    img = vision_shapes["img"]
    features, pulses, convention = (policy_shapes[k] for k in ("features_buffer", "desire_pulse",
                                                                "traffic_convention"))
    npy = {"desire": np.zeros(pulses[2], np.float32), "traffic_convention": np.zeros(convention, np.float32),
           "tfm": np.eye(3, dtype=np.float32), "big_tfm": np.eye(3, dtype=np.float32)}
    img_shape = (FRAME_SKIP * (img[1] // 6 - 1) + 1, 6, img[2], img[3])
    queues = {
        "img_q": Tensor(np.zeros(img_shape, np.uint8), device=device).contiguous().realize(),
        "big_img_q": Tensor(np.zeros(img_shape, np.uint8), device=device).contiguous().realize(),
        "feat_q": Tensor(np.zeros((FRAME_SKIP * (features[1] - 1) + 1, features[0], features[2]), np.float32),
                         device=device).contiguous().realize(),
        "desire_q": Tensor(np.zeros((FRAME_SKIP * pulses[1], pulses[0], pulses[2]), np.float32),
                           device=device).contiguous().realize(),
        **{k: Tensor(v, device="NPY").realize() for k, v in npy.items()},
    }
    return queues, npy


def packed_policy_shapes(input_shapes: dict) -> dict[str, tuple[int, ...]]:
    """The mid-2026 runtime's packed host inputs, in order."""
    pulses, features = input_shapes["desire_pulse"], input_shapes["features_buffer"]
    return {"desire": (pulses[2],), "traffic_convention": tuple(input_shapes["traffic_convention"]),
            "action_t": tuple(input_shapes["action_t"]), "prev_feat": (features[0], features[2])}


def supercombo_queues(input_shapes: dict, device: str):
    """The mid-2026 runtime's queues: (tensors by name, numpy views into the NPY ones)."""
    from tinygrad import Tensor  # child process: after DEV is set

    img, features, pulses = (input_shapes[k] for k in ("img", "features_buffer", "desire_pulse"))
    img_shape = (FRAME_SKIP * (img[1] // 6 - 1) + 1, 6, img[2], img[3])
    shapes = packed_policy_shapes(input_shapes)
    sizes = [math.prod(s) for s in shapes.values()]
    packed = np.zeros(sum(sizes), np.float32)
    npy = {"tfm": np.eye(3, dtype=np.float32), "big_tfm": np.eye(3, dtype=np.float32)}
    npy.update({k: part.reshape(s) for (k, s), part in zip(shapes.items(), np.split(packed, np.cumsum(sizes[:-1])))})
    queues = {
        "img_q": Tensor(np.zeros(img_shape, np.uint8), device=device).contiguous().realize(),
        "big_img_q": Tensor(np.zeros(img_shape, np.uint8), device=device).contiguous().realize(),
        "feat_q": Tensor(np.zeros((FRAME_SKIP * features[1], features[0], features[2]), np.float32),
                         device=device).contiguous().realize(),
        "desire_q": Tensor(np.zeros((FRAME_SKIP * pulses[1], pulses[0], pulses[2]), np.float32),
                           device=device).contiguous().realize(),
        "tfm": Tensor(npy["tfm"], device="NPY").realize(), "big_tfm": Tensor(npy["big_tfm"], device="NPY").realize(),
        "packed_npy_inputs": Tensor(packed, device="NPY").realize(),
    }
    return queues, npy


def build_supercombo(onnx_path: str, cameras: list[tuple[int, int]]) -> dict:
    from tinygrad import Device, Tensor, TinyJit  # child process: after DEV is set
    from tinygrad.nn.onnx import OnnxRunner  # child process: after DEV is set

    metadata = _metadata(onnx_path)
    runner = OnnxRunner(onnx_path)
    shapes = packed_policy_shapes(metadata["input_shapes"])
    sizes = [math.prod(s) for s in shapes.values()]

    def run_policy(warped, img_q, big_img_q, feat_q, desire_q, packed_npy_inputs):
        packed, warped = packed_npy_inputs.to(Device.DEFAULT), warped.to(Device.DEFAULT)
        img = every_fourth(push(img_q, warped[0:1]))
        big_img = every_fourth(push(big_img_q, warped[1:2]))
        desire, convention, action_t, prev_feat = (t.reshape(s) for t, s in zip(packed.split(sizes), shapes.values()))
        pulses = max_per_four(push(desire_q, desire.reshape(1, 1, -1)))
        features = every_fourth(push(feat_q, prev_feat.reshape(1, 1, -1)))
        inputs = {"img": img, "big_img": big_img, "features_buffer": features, "desire_pulse": pulses,
                  "traffic_convention": convention, "action_t": action_t}
        return (_first_output(runner, inputs),)

    out: dict = {"metadata": metadata}
    jit = TinyJit(run_policy, prune=True)
    queues, _ = supercombo_queues(metadata["input_shapes"], Device.DEFAULT)
    names = ("img_q", "big_img_q", "feat_q", "desire_q", "packed_npy_inputs")
    warped = Tensor.randint(2, 6, 128, 256, low=0, high=256, dtype="uint8").realize()
    _jit_runs(jit, lambda: {**{k: queues[k] for k in names}, "warped": warped})
    out["run_policy"] = jit
    for camera in cameras:
        out[camera] = _warp_pair_jit(camera, ("tfm", "big_tfm"), queues)
    return out


def _warp_pair_jit(camera: tuple[int, int], transform_names: tuple[str, str], queues: dict):
    from tinygrad import Device, Tensor, TinyJit  # child process: after DEV is set

    prepare = make_frame_prepare(nv12_layout(*camera))

    def warp(tfm, big_tfm, frame, big_frame):
        tfm, big_tfm = tfm.to(Device.DEFAULT), big_tfm.to(Device.DEFAULT)
        return Tensor.stack(prepare(frame, tfm), prepare(big_frame, big_tfm))

    jit = TinyJit(warp, prune=True)
    size = nv12_layout(*camera).size
    frames = {k: Tensor.randint(size, low=0, high=256, dtype="uint8").realize() for k in ("frame", "big_frame")}
    _jit_runs(jit, lambda: {"tfm": queues[transform_names[0]], "big_tfm": queues[transform_names[1]], **frames})
    return jit


def build_stateful(onnx_path: str, cameras: list[tuple[int, int]]) -> tuple[dict, dict]:
    from tinygrad import Device, Tensor, TinyJit  # child process: after DEV is set
    from tinygrad.nn.onnx import OnnxRunner  # child process: after DEV is set

    with open(Path(onnx_path).with_suffix(".metadata.json")) as f:
        info = json.load(f)
    runner = OnnxRunner(onnx_path)
    device = Device.DEFAULT
    input_specs = {k: (tuple(s), d, device) for k, (s, d) in info["inputs"].items()}
    output_specs = {k: (tuple(s), d, device) for k, (s, d) in info["outputs"].items()}

    def run(output_buffers, **inputs):
        outs = runner({k: v.to(device) for k, v in inputs.items()})
        # every output is computed before any is written: a next_X buffer is a view of X, which the scheduler cannot
        # see, so writing it while another output still reads X would change that output
        done = [outs[name].cast(buffer.dtype).contiguous() for name, buffer in output_buffers.items()]
        Tensor.realize(*done)
        for buffer, value in zip(output_buffers.values(), done):
            buffer.assign(value)
        Tensor.realize(*output_buffers.values())

    jit = TinyJit(run, prune=True)
    rng = np.random.default_rng(7)
    feeds = {k: Tensor(_random(rng, s, d), device=device).realize() for k, (s, d, _) in input_specs.items()}
    buffers = {k: Tensor(np.zeros(s, d), device=device).realize() for k, (s, d, _) in output_specs.items()}
    for name in input_specs:  # the runtime writes next_X into X's buffer through a view of it: capture it that way
        if f"next_{name}" in buffers:
            buffers[f"next_{name}"] = buffer_view(feeds[name])
    _jit_runs(jit, lambda: {"output_buffers": buffers, **feeds})
    main = {"metadata": {"metadata": info["props"], "input_shapes": {k: tuple(s) for k, (s, _) in
                                                                     info["inputs"].items()},
                         "output_shapes": {k: tuple(s) for k, (s, _) in info["outputs"].items()}},
            "run": jit, "input_specs": input_specs, "output_specs": output_specs}
    warps = {camera: _stateful_warp(camera) for camera in cameras}
    return main, warps


def buffer_view(tensor):
    """A second tensor over ``tensor``'s device buffer (offset 0, same shape and dtype): how the September-2026
    runtime hands a state input's buffer to the graph as the ``next_`` output buffer (a distinct JIT argument)."""
    from tinygrad import Tensor  # child process: after DEV is set
    from tinygrad.uop.ops import UOp  # child process: after DEV is set

    view = tensor._buffer().view(math.prod(tensor.shape), tensor.dtype, 0).ensure_allocated()
    return Tensor(UOp.from_buffer(view)).reshape(tensor.shape)


def _random(rng, shape, dtype: str) -> np.ndarray:
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(dtype)


def _stateful_warp(camera: tuple[int, int]) -> dict:
    from tinygrad import Device, Tensor, TinyJit  # child process: after DEV is set

    layout = nv12_layout(*camera)
    prepare = make_frame_prepare(layout)

    def run(input_frame, M_inv):  # noqa: N803 - the runtime's keyword
        frames, m_inv = input_frame.to(Device.DEFAULT), M_inv.to(Device.DEFAULT)
        return Tensor.stack(prepare(frames[0], m_inv[0]), prepare(frames[1], m_inv[1])).realize()

    jit = TinyJit(run, prune=True)
    frame = Tensor.randint(2, layout.copy_size, low=0, high=256, dtype="uint8").realize()
    m_inv = Tensor(np.stack([np.eye(3, dtype=np.float32)] * 2)).realize()
    _jit_runs(jit, lambda: {"input_frame": frame, "M_inv": m_inv})
    return {"metadata": {}, "run": jit,
            "input_specs": {"input_frame": ((2, layout.copy_size), "uint8", Device.DEFAULT),
                            "M_inv": ((2, 3, 3), "float32", Device.DEFAULT)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Compile ONNX into a 2026 runtime's "
                                     "pickle layout (combined, supercombo or stateful).")
    parser.add_argument("packaging", choices=("combined", "supercombo", "stateful"))
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--onnx", nargs="+", required=True, help="combined: VISION POLICY; else the one graph")
    parser.add_argument("--cameras", nargs="+", default=["1928x1208", "1344x760"])
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    from tinygrad import Device  # child process: after DEV is set

    start = time.perf_counter()
    cameras = [parse_camera(c) for c in args.cameras]
    written = []
    if args.packaging == "combined":
        path = args.out_dir / "driving_tinygrad.pkl"
        with open(path, "wb") as f:
            pickle.dump(build_combined(args.onnx[0], args.onnx[1], cameras), f)
        written.append(path)
    elif args.packaging == "supercombo":
        path = args.out_dir / "driving_tinygrad.pkl"
        with open(path, "wb") as f:
            dump_oob(build_supercombo(args.onnx[0], cameras), f)
        written.append(path)
    else:
        main_artifact, warps = build_stateful(args.onnx[0], cameras)
        path = args.out_dir / "driving_tinygrad.pkl"
        with open(path, "wb") as f:
            dump_oob(main_artifact, f)
        written.append(path)
        for (w, h), artifact in warps.items():
            warp_path = args.out_dir / f"driving_warp_{w}x{h}_tinygrad.pkl"
            with open(warp_path, "wb") as f:
                pickle.dump(artifact, f)
            written.append(warp_path)
    report = {"device": Device.DEFAULT, "files": [str(p) for p in written], "cameras": args.cameras,
              "child_s": round(time.perf_counter() - start, 2), "dev_env": os.environ.get("DEV")}
    args.report.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
