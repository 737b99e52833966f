"""Exported models run the way modeld runs them: one implementation for open-loop evaluation and closed-loop driving.

:class:`ExportedModels` loads an export folder (``driving_vision`` / ``driving_policy``: the ONNX files with
onnxruntime, or the tinygrad pickles with ``runtime="tinygrad"``) and finds its contract profile from the metadata
pickles. :class:`ModeldState` holds what modeld keeps between frames at 20 Hz - the frame queue (frames t-4 and t),
the ``features_buffer`` history of the vision ``hidden_state``, the desire pulses (rising edges), the traffic
convention and (op-0.10.0) the model's own ``desired_curvature`` outputs fed back as ``prev_desired_curv`` - and
builds every input with the contract's functions (``contract.inputs``), exactly as training
samples are built. Outputs are parsed with the contract's parser, so what is measured is what modeld would see.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..contract.constants import DESIRE_LEN, FEATURE_LEN, FRAME_PAIR_OFFSET, desire_one_hot
from ..contract.inputs import desire_rising_edges, frame_pairs, policy_inputs_at
from ..contract.metadata import load_metadata, match_metadata
from ..contract.outputs import parse_outputs
from ..contract.profiles import POLICY_MODEL, VISION_MODEL, Profile, get_profile
from ..errors import ConfigError, ContractError

RUNTIMES = ("onnxruntime", "tinygrad")
IMAGE_INPUTS = ("img", "big_img")


def onnx_session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime session on the CPU, quiet, on ``threads`` threads (batch 1 gains little from more; parallel
    road tests use processes)."""
    import onnxruntime as ort  # optional at import time: the open-loop and closed-loop commands load it

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tinygrad_tensors(arrays: dict[str, np.ndarray]) -> dict:
    """numpy -> realized tinygrad tensors as modeld makes them: images on the default device, the rest as ``NPY``
    float32 (float16 graph inputs are fed as float32)."""
    from tinygrad import Tensor, dtypes  # tinygrad reads DEV when first imported: only the caller knows when

    out = {}
    for name, arr in arrays.items():
        if name in IMAGE_INPUTS:
            out[name] = Tensor(arr, dtype=dtypes.uint8 if arr.dtype == np.uint8 else None).realize()
        else:
            out[name] = Tensor(np.ascontiguousarray(arr, dtype=np.float32), device="NPY").realize()
    return out


def use_device_of(pickle_path: Path) -> None:
    """Let tinygrad run on the device the pickle was compiled for (its sidecar says which; ``DEV`` wins if set)."""
    sidecar = pickle_path.with_suffix(".json")
    try:
        device = str(json.loads(sidecar.read_text())["device"]).split(":")[0]
    except (OSError, ValueError, KeyError):
        return
    os.environ.setdefault("DEV", device)


def load_tinygrad_pickle(path: str | os.PathLike) -> Callable[..., object]:
    """Unpickle a ``*_tinygrad.pkl`` (this executes the pickle: only for files this toolkit exported)."""
    import pickle  # noqa: S403 - our own exports only, as modeld does

    with open(path, "rb") as f:
        return pickle.load(f)


def run_tinygrad(run: Callable[..., object], inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Call a pickled jit the way modeld does and read its first output back as numpy."""
    return run(**tinygrad_tensors(inputs)).contiguous().realize().uop.base.buffer.numpy().copy()


class ExportedModel:
    """One exported model (``driving_vision`` or ``driving_policy``): named unbatched inputs -> flat (W,) output."""

    def __init__(self, export_dir: Path, name: str, runtime: str):
        self.name, self.runtime = name, runtime
        if runtime == "onnxruntime":
            path = export_dir / f"{name}.onnx"
            self._check(path)
            session = onnx_session(path)
            self._run = lambda feeds: session.run(None, feeds)[0]
        else:
            path = export_dir / f"{name}_tinygrad.pkl"
            self._check(path)
            use_device_of(path)
            jit = load_tinygrad_pickle(path)
            self._run = lambda feeds: run_tinygrad(jit, feeds)
        self.path = path

    @staticmethod
    def _check(path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file; expected an export folder written by `sptrain export`")

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: np.ascontiguousarray(v)[None] for k, v in inputs.items()}  # batch 1, as modeld runs it
        return np.asarray(self._run(feeds), dtype=np.float32).reshape(-1)


@dataclass
class ExportedModels:
    """The vision and policy models of one export folder and the contract profile they were exported for."""

    export_dir: Path
    profile: Profile
    vision: ExportedModel
    policy: ExportedModel

    @classmethod
    def load(cls, export_dir: str | os.PathLike, runtime: str = "onnxruntime") -> ExportedModels:
        if runtime not in RUNTIMES:
            raise ConfigError(f"--runtime {runtime!r}; expected one of {list(RUNTIMES)}")
        export_dir = Path(export_dir)
        if not export_dir.is_dir():
            raise ConfigError(f"{export_dir}: no such export folder; run `sptrain export CKPT --out-dir DIR` first")
        profile = get_profile(profile_of_export(export_dir))
        return cls(export_dir, profile, ExportedModel(export_dir, VISION_MODEL, runtime),
                   ExportedModel(export_dir, POLICY_MODEL, runtime))


def profile_of_export(export_dir: Path) -> str:
    """The contract profile both metadata pickles of an export folder match exactly; ConfigError otherwise."""
    found = {}
    for name in (VISION_MODEL, POLICY_MODEL):
        path = export_dir / f"{name}_metadata.pkl"
        if not path.is_file():
            raise ConfigError(f"{path}: no such file; expected an export folder written by `sptrain export`")
        try:
            match = match_metadata(load_metadata(path), name)
        except ContractError as exc:
            raise ConfigError(str(exc)) from None
        if match is None or not match.exact:
            raise ConfigError(f"{path}: matches no contract profile"
                              + (f" ({match.problems[0][:200]})" if match else "") + "; re-export the models")
        found[name] = match.profile_id
    if len(set(found.values())) != 1:
        raise ConfigError(f"{export_dir}: the vision model is for {found[VISION_MODEL]} but the policy for "
                          f"{found[POLICY_MODEL]}; export both from one checkpoint")
    return found[VISION_MODEL]


@dataclass
class ModeldStep:
    """One frame through the models: the inputs fed and the raw and parsed outputs (policy ones may be None)."""

    frame: int
    vision_inputs: dict[str, np.ndarray]
    vision_raw: np.ndarray
    vision: dict[str, np.ndarray]
    policy_inputs: dict[str, np.ndarray] | None = None
    policy_raw: np.ndarray | None = None
    policy: dict[str, np.ndarray] | None = None


@dataclass
class ModeldState:
    """What modeld keeps from frame to frame for one drive, and one :meth:`step` per 20 Hz frame."""

    models: ExportedModels
    traffic_convention: np.ndarray  # (2,)
    frames: dict[str, dict[int, np.ndarray]] = field(default_factory=lambda: {k: {} for k in IMAGE_INPUTS})
    features: np.ndarray = field(default_factory=lambda: np.zeros((256, FEATURE_LEN), np.float32))
    pulses: np.ndarray = field(default_factory=lambda: np.zeros((256, DESIRE_LEN), np.float32))
    curvatures: np.ndarray = field(default_factory=lambda: np.zeros(256, np.float32))  # own desired_curvature
    last_desire: np.ndarray = field(default_factory=lambda: np.zeros(DESIRE_LEN, np.float32))
    t: int = -1

    def _grow(self) -> None:
        if self.t >= len(self.features):
            self.features = np.concatenate([self.features, np.zeros_like(self.features)])
            self.pulses = np.concatenate([self.pulses, np.zeros_like(self.pulses)])
            self.curvatures = np.concatenate([self.curvatures, np.zeros_like(self.curvatures)])

    def step(self, road_6ch: np.ndarray, wide_6ch: np.ndarray, desire: int, v_ego_mps: float,
             run_policy: bool = True) -> ModeldStep:
        """Feed the next frame (packed (6, 128, 256) uint8 per camera) with the driver's desire and the car's speed.
        A frame the policy does not run on feeds back the last ``desired_curvature`` it output (modeld runs it on
        every frame; open-loop evaluation of a model that ignores the history may skip frames)."""
        self.t += 1
        t = self.t
        self._grow()
        vision_inputs = {}
        for key, frame in zip(IMAGE_INPUTS, (road_6ch, wide_6ch)):
            queue = self.frames[key]
            queue[t] = np.asarray(frame, dtype=np.uint8)
            queue.pop(t - FRAME_PAIR_OFFSET - 1, None)  # keep frames t-4 .. t
            vision_inputs[key] = frame_pairs(lambda idx, q=queue: np.stack([q[int(i)] for i in idx]), [t])[0]
        vision_raw = self.models.vision(vision_inputs)
        vision = parse_outputs(self.models.profile.vision, vision_raw)
        self.features[t] = vision["hidden_state"][0]
        onehot = desire_one_hot(desire)
        self.pulses[t] = desire_rising_edges(np.stack([self.last_desire, onehot]))[1]
        self.last_desire = onehot
        step = ModeldStep(t, vision_inputs, vision_raw, vision)
        if run_policy:
            names = [i.name for i in self.models.profile.policy.inputs]
            step.policy_inputs = policy_inputs_at(names, self.features[: t + 1], self.pulses[: t + 1], t,
                                                  self.traffic_convention, v_ego_mps, self.curvatures[:t])
            step.policy_raw = self.models.policy(step.policy_inputs)
            step.policy = parse_outputs(self.models.profile.policy, step.policy_raw)
            if "desired_curvature" in step.policy:
                self.curvatures[t] = step.policy["desired_curvature"][0, 0]
        elif t > 0:
            self.curvatures[t] = self.curvatures[t - 1]
        return step
