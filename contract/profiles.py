"""Contract profiles: what each modeld interface era expects of ``driving_vision`` and ``driving_policy``.

A profile is data: ``PROFILE_TABLE`` lists, per profile and model, the inputs (name, shape, dtype, in
order) and the output heads (name, kind, shape, hypotheses) in the order they are laid out in the flat
``outputs`` tensor, plus the ``pad`` slice exactly as the release metadata carries it. Adding a profile is
adding an entry to that table; slices and widths are derived from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from ..errors import UnknownProfileError
from .constants import (
    DESIRE_LEN,
    DESIRE_PRED_LEN,
    DESIRED_CURV_WIDTH,
    FEATURE_LEN,
    HISTORY_BUFFER_LEN,
    IDX_N,
    IMG_SHAPE,
    LANE_LINES_WIDTH,
    LATERAL_CONTROL_PARAMS_LEN,
    LEAD_MHP_N,
    LEAD_MHP_SELECTION,
    LEAD_TRAJ_LEN,
    LEAD_WIDTH,
    META_WIDTH,
    NUM_LANE_LINES,
    NUM_ROAD_EDGES,
    PLAN_MHP_N,
    PLAN_MHP_SELECTION,
    PLAN_WIDTH,
    POSE_WIDTH,
    PREV_DESIRED_CURV_LEN,
    TRAFFIC_CONVENTION_LEN,
    WIDE_FROM_DEVICE_WIDTH,
)
from .runtimes import (
    ACTION_T_LEN,
    ACTION_WIDTH,
    MDN,
    MODEL_FRAME_SHAPE,
    RUNTIME_TABLE,
    STATE_INPUTS,
    STATE_PREFIX_OUT,
    STATEFUL,
    SUPERCOMBO,
    SUPERCOMBO_MODEL,
    RuntimeSpec,
    build_runtime,
)

DEFAULT_PROFILE = "op-0.10.1"
VISION_MODEL = "driving_vision"
POLICY_MODEL = "driving_policy"
MODEL_NAMES = (VISION_MODEL, POLICY_MODEL)
OUTPUT_NAME = "outputs"


class HeadKind(str, Enum):
    MDN = "mdn"  # means, then log-stds (then hypothesis logits); parsed with parse_mdn
    SIGMOID = "sigmoid"  # independent logits
    SOFTMAX = "softmax"  # categorical logits, softmax over the last axis of `shape`
    RAW = "raw"  # passed through (hidden_state)


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name of the ONNX graph input


@dataclass(frozen=True)
class HeadSpec:
    """One named slice of the flat output.

    For MDN heads ``shape`` is the value shape of one hypothesis; ``hypotheses`` (modeld's ``in_N``) > 1
    means each hypothesis carries ``selection`` (``out_N``) trailing logits.
    """

    name: str
    kind: HeadKind
    shape: tuple[int, ...]
    hypotheses: int = 0
    selection: int = 0

    def __post_init__(self) -> None:
        if self.kind is not HeadKind.MDN and (self.hypotheses or self.selection):
            raise ValueError(f"head {self.name}: only MDN heads have hypotheses")
        if self.hypotheses == 1 or (self.hypotheses > 1) != (self.selection > 0):
            raise ValueError(f"head {self.name}: hypotheses={self.hypotheses} needs selection>0 (or both 0)")

    @property
    def n_values(self) -> int:
        """Values per hypothesis (for MDN: the number of means)."""
        return math.prod(self.shape)

    @property
    def is_multi_hypothesis(self) -> bool:
        return self.hypotheses > 1

    @property
    def width(self) -> int:
        if self.kind is HeadKind.MDN:
            return max(self.hypotheses, 1) * (2 * self.n_values + self.selection)
        return self.n_values

    def parsed_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape of the parsed (selected) mean for a batch, as modeld's parser returns it."""
        if self.kind is HeadKind.MDN and self.selection > 1:
            return (batch, self.selection) + self.shape
        return (batch,) + self.shape


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[InputSpec, ...]
    heads: tuple[HeadSpec, ...]
    pad: slice | None  # as in the release metadata; None: the output has no pad entry (the fused graphs)
    pad_width: int
    output_name: str = OUTPUT_NAME
    _slices: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        slices: dict[str, slice] = {}
        start = 0
        for head in self.heads:
            slices[head.name] = slice(start, start + head.width)
            start += head.width
        if self.pad is not None:
            slices["pad"] = self.pad
        object.__setattr__(self, "_slices", slices)
        pad = self.pad
        if pad is not None and pad.start is not None and pad.start < 0 and -pad.start != self.pad_width:
            raise ValueError(f"{self.name}: pad {self.pad} disagrees with pad_width {self.pad_width}")

    @property
    def output_width(self) -> int:
        return sum(h.width for h in self.heads) + self.pad_width

    @property
    def output_shape(self) -> tuple[int, int]:
        return (1, self.output_width)

    def output_slices(self) -> dict[str, slice]:
        """name -> slice into the flat output, in layout order, ``pad`` last when there is one (a fresh dict)."""
        return dict(self._slices)

    def head(self, name: str) -> HeadSpec:
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(f"{self.name} has no head {name!r}; heads: {[h.name for h in self.heads]}")

    def input(self, name: str) -> InputSpec:
        for i in self.inputs:
            if i.name == name:
                return i
        raise KeyError(f"{self.name} has no input {name!r}; inputs: {[i.name for i in self.inputs]}")

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {i.name: i.shape for i in self.inputs}


@dataclass(frozen=True)
class Profile:
    """The network contract (``vision`` and ``policy``: what training builds) and the runtime that loads it.

    ``graph`` is the one graph modeld runs for the supercombo and stateful runtimes (vision and policy fused by
    the export), None for the split ones. ``trains_as`` names the profile whose networks this one trains.
    """

    id: str
    releases: str
    description: str
    vision: ModelSpec
    policy: ModelSpec
    runtime: RuntimeSpec
    trains_as: str
    graph: ModelSpec | None = None
    state_pairs: tuple[tuple[str, str], ...] = ()

    @property
    def models(self) -> dict[str, ModelSpec]:
        return {VISION_MODEL: self.vision, POLICY_MODEL: self.policy}

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}; expected one of {list(MODEL_NAMES)}") from None

    def has_input(self, model: str, name: str) -> bool:
        return any(i.name == name for i in self.model(model).inputs)


# --- the table --------------------------------------------------------------------------------------
_MDN, _SIG, _SM, _RAW = HeadKind.MDN, HeadKind.SIGMOID, HeadKind.SOFTMAX, HeadKind.RAW
_IMG = ("uint8", IMG_SHAPE)


def _vision_heads(lead: tuple) -> list[tuple]:
    return [
        ("meta", _SIG, (META_WIDTH,)),
        ("desire_pred", _SM, (DESIRE_PRED_LEN, DESIRE_LEN)),
        ("pose", _MDN, (POSE_WIDTH,)),
        ("wide_from_device_euler", _MDN, (WIDE_FROM_DEVICE_WIDTH,)),
        ("road_transform", _MDN, (POSE_WIDTH,)),
        ("lane_lines", _MDN, (NUM_LANE_LINES, IDX_N, LANE_LINES_WIDTH)),
        ("lane_lines_prob", _SIG, (2 * NUM_LANE_LINES,)),
        ("road_edges", _MDN, (NUM_ROAD_EDGES, IDX_N, LANE_LINES_WIDTH)),
        lead,
        ("lead_prob", _SIG, (LEAD_MHP_SELECTION,)),
        ("hidden_state", _RAW, (FEATURE_LEN,)),
    ]


_LEAD_SINGLE = ("lead", _MDN, (LEAD_MHP_SELECTION, LEAD_TRAJ_LEN, LEAD_WIDTH))
_LEAD_MHP = ("lead", _MDN, (LEAD_TRAJ_LEN, LEAD_WIDTH), LEAD_MHP_N, LEAD_MHP_SELECTION)
_PLAN_SINGLE = ("plan", _MDN, (IDX_N, PLAN_WIDTH))
_PLAN_MHP = ("plan", _MDN, (IDX_N, PLAN_WIDTH), PLAN_MHP_N, PLAN_MHP_SELECTION)
_DESIRE_STATE = ("desire_state", _SM, (DESIRE_LEN,))
_HIST = HISTORY_BUFFER_LEN

PROFILE_TABLE: dict[str, dict] = {
    "op-0.10.1": {
        "releases": "openpilot v0.10.1 - v0.11.1 (Aug 2025 - May 2026); sunnypilot split vision + policy runner",
        "description": "vision + policy; policy inputs desire_pulse, traffic_convention, features_buffer",
        "driving_vision": {
            "inputs": [("img", *_IMG), ("big_img", *_IMG)],
            "heads": _vision_heads(_LEAD_SINGLE),
            "pad": slice(0, None),
            "pad_width": 0,
        },
        "driving_policy": {
            "inputs": [
                ("desire_pulse", "float32", (1, _HIST, DESIRE_LEN)),
                ("traffic_convention", "float32", (1, TRAFFIC_CONVENTION_LEN)),
                ("features_buffer", "float32", (1, _HIST, FEATURE_LEN)),
            ],
            "heads": [_PLAN_SINGLE, _DESIRE_STATE],
            "pad": slice(-2, None),
            "pad_width": 2,
        },
    },
    "op-0.11.1": {
        "releases": "openpilot v0.11.1 (May 2026; master 2026-05-14 - 2026-06-01)",
        "description": "op-0.10.1's two ONNX files; one combined driving_tinygrad.pkl with both models' metadata "
        "and the warp from raw NV12 per camera size; no *_metadata.pkl",
        "trains_as": "op-0.10.1",
    },
    "op-2026.07": {
        "releases": "openpilot master 2026-06-12 - 2026-09 (single driving_supercombo.onnx with action_t)",
        "description": "one graph (vision + policy); features_buffer holds 24 past features and the graph appends "
        "the current one; action_t input; an action slice [curvature*v^2, accel] from the plan at action_t",
        "trains_as": "op-0.10.1",
    },
    "op-2026.09": {
        "releases": "openpilot master from 2026-09-16 (history in the graph; tinygrad compile_onnx artifacts)",
        "description": "one stateful graph: new_img (2,6,128,256), desire, traffic_convention, action_t and state_* "
        "inputs, each with a next_state_* output the runtime writes back",
        "trains_as": "op-0.10.1",
    },
    "sp-2026.10": {
        "releases": "sunnypilot modeld_v2 (autumn 2026) with its native tinygrad adapter; COMBINED_MODEL_PKL",
        "description": "the op-2026.09 stateful artifact, loaded by sunnypilot's modeld_v2 from COMBINED_MODEL_PKL "
        "or the active model bundle; action is an MDN (2 means, 2 log-stds) as its parser reads it",
        "trains_as": "op-0.10.1",
    },
    "op-0.10.0": {
        "releases": "openpilot v0.9.8 - v0.10.0 (Feb - Aug 2025)",
        "description": "vision + policy; multi-hypothesis lead and plan; policy also takes lateral_control_params "
        "and prev_desired_curv and outputs desired_curvature",
        "driving_vision": {
            "inputs": [("img", *_IMG), ("big_img", *_IMG)],
            "heads": _vision_heads(_LEAD_MHP),
            "pad": slice(-2, None),
            "pad_width": 2,
        },
        "driving_policy": {
            "inputs": [
                ("desire", "float32", (1, _HIST, DESIRE_LEN)),
                ("traffic_convention", "float32", (1, TRAFFIC_CONVENTION_LEN)),
                ("lateral_control_params", "float32", (1, LATERAL_CONTROL_PARAMS_LEN)),
                ("prev_desired_curv", "float32", (1, _HIST, PREV_DESIRED_CURV_LEN)),
                ("features_buffer", "float32", (1, _HIST, FEATURE_LEN)),
            ],
            "heads": [_PLAN_MHP, _DESIRE_STATE, ("desired_curvature", _MDN, (DESIRED_CURV_WIDTH,))],
            "pad": slice(-3, None),
            "pad_width": 3,
        },
    },
}


def _build_model(name: str, entry: dict) -> ModelSpec:
    inputs = tuple(InputSpec(n, tuple(shape), dtype) for n, dtype, shape in entry["inputs"])
    heads = tuple(HeadSpec(h[0], h[1], tuple(h[2]), *h[3:]) for h in entry["heads"])
    return ModelSpec(name=name, inputs=inputs, heads=heads, pad=entry["pad"], pad_width=entry["pad_width"])


def _graph_inputs(graph: str, vision: ModelSpec, policy: ModelSpec) -> list[tuple]:
    if graph == SUPERCOMBO:
        past = [(i.name, i.dtype, (1, HISTORY_BUFFER_LEN - 1, FEATURE_LEN) if i.name == "features_buffer" else i.shape)
                for i in policy.inputs]
        order = ("img", "big_img", "features_buffer", "desire_pulse", "traffic_convention")
        named = {n: (n, d, s) for n, d, s in [(i.name, i.dtype, i.shape) for i in vision.inputs] + past}
        return [named[n] for n in order] + [("action_t", "float32", (1, ACTION_T_LEN))]
    return [("new_img", "uint8", (2, *MODEL_FRAME_SHAPE)), ("desire", "float32", (DESIRE_LEN,)),
            ("traffic_convention", "float32", (1, TRAFFIC_CONVENTION_LEN)), ("action_t", "float32", (1, ACTION_T_LEN)),
            *STATE_INPUTS]


def _build_graph(runtime: RuntimeSpec, vision: ModelSpec, policy: ModelSpec) -> ModelSpec:
    """The fused graph: vision heads, then policy heads, then ``action`` (raw, or an MDN: means then log-stds)."""
    kind = HeadKind.MDN if runtime.action == MDN else HeadKind.RAW
    heads = (*vision.heads, *policy.heads, HeadSpec("action", kind, (ACTION_WIDTH,)))
    inputs = tuple(InputSpec(n, tuple(s), d) for n, d, s in _graph_inputs(runtime.graph, vision, policy))
    return ModelSpec(name=SUPERCOMBO_MODEL, inputs=inputs, heads=heads, pad=None, pad_width=0)


def _build_profile(profile_id: str, entry: dict) -> Profile:
    base = PROFILE_TABLE[entry.get("trains_as", profile_id)]
    vision = _build_model(VISION_MODEL, base[VISION_MODEL])
    policy = _build_model(POLICY_MODEL, base[POLICY_MODEL])
    runtime = build_runtime(RUNTIME_TABLE[profile_id])
    graph = _build_graph(runtime, vision, policy) if runtime.graph in (SUPERCOMBO, STATEFUL) else None
    pairs = tuple((n, STATE_PREFIX_OUT + n) for n, _, _ in STATE_INPUTS) if runtime.graph == STATEFUL else ()
    return Profile(id=profile_id, releases=entry["releases"], description=entry["description"], vision=vision,
                   policy=policy, runtime=runtime, trains_as=entry.get("trains_as", profile_id), graph=graph,
                   state_pairs=pairs)


PROFILES: dict[str, Profile] = {pid: _build_profile(pid, entry) for pid, entry in PROFILE_TABLE.items()}


def profile_ids() -> list[str]:
    return list(PROFILES)


def get_profile(profile_id: str | None = None) -> Profile:
    """The profile named ``profile_id`` (default ``op-0.10.1``); UnknownProfileError lists the known ids."""
    pid = DEFAULT_PROFILE if profile_id is None else profile_id
    try:
        return PROFILES[pid]
    except KeyError:
        raise UnknownProfileError(
            f"unknown contract profile {pid!r}; known profiles: {', '.join(PROFILES)}"
        ) from None


def _model_dict(spec: ModelSpec, with_heads: bool) -> dict:
    entry = {
        "inputs": {i.name: {"shape": list(i.shape), "dtype": i.dtype} for i in spec.inputs},
        "output_shape": list(spec.output_shape),
        "output_slices": {k: [s.start, s.stop] for k, s in spec.output_slices().items()},
    }
    if with_heads:
        entry["heads"] = {
            h.name: {"kind": h.kind.value, "shape": list(h.shape), "width": h.width,
                     "hypotheses": h.hypotheses, "selection": h.selection}
            for h in spec.heads
        }
    return entry


def runtime_to_dict(profile: Profile) -> dict:
    """The runtime half of a profile as JSON-able data (files, how they are found, graph, state pairs, sources)."""
    runtime = profile.runtime
    return {
        "packaging": runtime.packaging, "graph": runtime.graph, "trains_as": profile.trains_as,
        "files": [{"name": n, "holds": w} for n, w in runtime.files], "finds": runtime.finds,
        "state_pairs": {i: o for i, o in profile.state_pairs}, "device_compile": runtime.device_compile,
        "upstream": [{"repository": r, "path": p, "commit": c} for r, p, c in runtime.upstream],
    }


def profile_to_dict(profile: Profile, with_heads: bool = False) -> dict:
    """The JSON-able form printed by ``sptrain contract show --json`` (inputs and slices in contract order).

    ``{"profile": id, "releases", "models": {model: {"inputs": {name: {"shape", "dtype"}}, "output_shape",
    "output_slices": {name: [start, stop]}}}, "runtime": {...}}``; ``models`` holds the networks training builds
    and, for the fused runtimes, the graph modeld runs (``driving_supercombo``, its ``state_pairs`` included);
    ``with_heads`` adds each head's kind, shape and width.
    """
    models = {name: _model_dict(spec, with_heads) for name, spec in profile.models.items()}
    if profile.graph is not None:
        graph = _model_dict(profile.graph, with_heads)
        graph["state_pairs"] = {i: o for i, o in profile.state_pairs}
        models[profile.graph.name] = graph
    return {"profile": profile.id, "releases": profile.releases, "models": models, "runtime": runtime_to_dict(profile)}
