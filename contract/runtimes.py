"""How each modeld runtime packages, finds and feeds a driving model: the runtime half of a contract profile.

``RUNTIME_TABLE`` is data, one entry per profile id (``profiles.PROFILE_TABLE`` holds the network half). An entry
says which files the runtime opens (``files``: name -> what it is), how it finds them (``finds``), which graph it
runs (``graph``: ``split`` = the two op-0.10.1 models; ``supercombo`` = one graph of vision and policy with 24 past
features; ``stateful`` = one graph that keeps its own history in ``state_*`` inputs and writes ``next_state_*``
outputs the runtime feeds back), the upstream source each fact was read from, and the command a device runs to
compile its own pickle. Facts only (names, shapes, keys); no upstream code.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import DESIRE_LEN, FEATURE_LEN, HISTORY_BUFFER_LEN, HISTORY_SPAN_FRAMES, TEMPORAL_SKIP

SPLIT, COMBINED, SUPERCOMBO, STATEFUL = "split", "combined", "supercombo", "stateful"
PACKAGINGS = (SPLIT, COMBINED, SUPERCOMBO, STATEFUL)
SUPERCOMBO_MODEL = "driving_supercombo"
FRAME_CHANNELS = 6
MODEL_FRAME_SHAPE = (FRAME_CHANNELS, 128, 256)  # one warped YUV frame
CAMERA_SIZES = ((1928, 1208), (1344, 760))  # comma 3/3X road+wide cameras, comma four
ACTION_WIDTH = 2  # [lateral acceleration = curvature * v^2 (m/s^2), longitudinal acceleration (m/s^2)]
ACTION_T_LEN = 2  # [lateral, longitudinal] action delay (s)
RAW, MDN = "raw", "mdn"  # how the graph's action is laid out: 2 values, or 2 means then 2 log-stds
ACTION_FORMS = (RAW, MDN)

# The stateful graph's own history (names are ours; the runtime treats any X with an output next_X as state).
# Camera naming: sunnypilot's modeld_v2 takes the graph inputs whose names contain "img", in graph order, as its
# camera inputs (the road one first, the wide one containing "big"): here new_img, then state_big_img_q. So the road
# queue's name carries no "img" - a third such name would index a third camera frame.
CAMERA_NAME_MARK, WIDE_NAME_MARK = "img", "big"
IMG_QUEUE_LEN = TEMPORAL_SKIP + 1  # frames t-5 .. t-1 in, t-4 .. t out: img = frames t-4 and t
DESIRE_QUEUE_LEN = TEMPORAL_SKIP * HISTORY_BUFFER_LEN  # 100 pulses, max-pooled over 4 -> 25
FEATURE_QUEUE_LEN = HISTORY_SPAN_FRAMES  # 96 past hidden states, every 4th -> 24, + the current one -> 25
STATE_INPUTS = (
    ("state_road_q", "uint8", (IMG_QUEUE_LEN, *MODEL_FRAME_SHAPE)),
    ("state_big_img_q", "uint8", (IMG_QUEUE_LEN, *MODEL_FRAME_SHAPE)),
    ("state_desire_q", "float32", (DESIRE_QUEUE_LEN, 1, DESIRE_LEN)),
    ("state_feat_q", "float32", (FEATURE_QUEUE_LEN, 1, FEATURE_LEN)),
)
STATE_PREFIX_OUT = "next_"

_A = "andiradulescu/openpilot (full history of commaai/openpilot master to 2026-07-23)"
_C = "commaai/openpilot"
_T = "tinygrad/tinygrad"
_S = "sunnypilot/sunnypilot"


@dataclass(frozen=True)
class RuntimeSpec:
    """The runtime half of a profile (see the module docstring)."""

    packaging: str
    graph: str  # split | supercombo | stateful
    files: tuple[tuple[str, str], ...]  # (file name, what it holds), in install order
    finds: str
    device_compile: str
    upstream: tuple[tuple[str, str, str], ...]  # (repository, path, commit) read to write the harness
    pickle_env: str | None = None  # the environment variable that points the runtime at an installed pickle
    action: str = RAW  # the layout of the graph's action head (ACTION_FORMS)

    def file_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.files)


_SPLIT_FILES = [("driving_vision.onnx", "vision ONNX"), ("driving_policy.onnx", "policy ONNX"),
                ("driving_vision_tinygrad.pkl", "pickled TinyJit of the vision model"),
                ("driving_policy_tinygrad.pkl", "pickled TinyJit of the policy model"),
                ("driving_vision_metadata.pkl", "vision metadata"),
                ("driving_policy_metadata.pkl", "policy metadata")]
_COMPILE3 = "scons builds the pickles from the ONNX files (tinygrad_repo/examples/openpilot/compile3.py)"

RUNTIME_TABLE: dict[str, dict] = {
    "op-0.10.1": {
        "packaging": SPLIT, "graph": SPLIT,
        "files": _SPLIT_FILES,
        "finds": "selfdrive/modeld/models/driving_{vision,policy}_{tinygrad,metadata}.pkl; sunnypilot's split runner "
                 "the same names under the model root",
        "device_compile": _COMPILE3,
        "upstream": [(_A, "selfdrive/modeld/modeld.py", "3469d9aadbc16eb854bad3d851bd580d2b8f132e (v0.11.0)")],
    },
    "op-0.10.0": {
        "packaging": SPLIT, "graph": SPLIT,
        "files": _SPLIT_FILES,
        "finds": "selfdrive/modeld/models/driving_{vision,policy}_{tinygrad,metadata}.pkl",
        "device_compile": _COMPILE3,
        "upstream": [(_A, "selfdrive/modeld/modeld.py", "v0.10.0")],
    },
    "op-0.11.1": {
        "packaging": COMBINED, "graph": SPLIT,
        "files": [("driving_vision.onnx", "vision ONNX (op-0.10.1 interface)"),
                  ("driving_policy.onnx", "policy ONNX (op-0.10.1 interface)"),
                  ("driving_tinygrad.pkl", "plain pickle {'metadata': {'vision', 'policy'}, (cam_w, cam_h): "
                                           "{'warp_enqueue', 'run_policy'}} with the warp from raw NV12 inside")],
        "finds": "selfdrive/modeld/models/driving_tinygrad.pkl (or its .chunkmanifest + chunks); no *_metadata.pkl",
        "device_compile": "cd selfdrive/modeld && scons (runs compile_modeld.py --vision-onnx "
                          "models/driving_vision.onnx --policy-onnx models/driving_policy.onnx "
                          "--output models/driving_tinygrad.pkl)",
        "upstream": [(_A, "selfdrive/modeld/{modeld,compile_modeld}.py, SConscript",
                      "6941a913a39ebff27489063a1bd6bde66f208459 (master on the 0.11.1 release day, 2026-05-18)")],
    },
    "op-2026.07": {
        "packaging": SUPERCOMBO, "graph": SUPERCOMBO,
        "files": [("driving_supercombo.onnx", "one graph: vision + policy, 24 past features, action_t"),
                  ("driving_tinygrad.pkl", "out-of-band pickle {'metadata', 'run_policy', (cam_w, cam_h): warp}")],
        "finds": "openpilot/selfdrive/modeld/models/driving_tinygrad.pkl read with helpers.load_oob (chunks allowed)",
        "device_compile": "cd openpilot/selfdrive/modeld && scons (runs compile_modeld.py --onnx "
                          "models/driving_supercombo.onnx --output models/driving_tinygrad.pkl)",
        "upstream": [(_A, "openpilot/selfdrive/modeld/{modeld,compile_modeld,helpers}.py",
                      "e04fd3c7247c721e76aae2d02884ffa6c1790788 (2026-07-23)"),
                     ("greatgitsby/openpilot", "selfdrive/modeld/modeld.py",
                      "ad5151b38b540e08a01c87029c3ddb0979ba4fdf")],
    },
    "op-2026.09": {
        "packaging": STATEFUL, "graph": STATEFUL,
        "files": [("driving_supercombo.onnx", "one stateful graph: new_img, desire, traffic_convention, action_t, "
                                              "state_* -> outputs, next_state_*"),
                  ("driving_tinygrad.pkl", "out-of-band pickle {'metadata': {'metadata', 'input_shapes', "
                                           "'output_shapes'}, 'run', 'input_specs', 'output_specs'}"),
                  ("driving_warp_1928x1208_tinygrad.pkl", "plain pickle {'metadata', 'run', 'input_specs'}: NV12 "
                                                          "-> new_img (2, 6, 128, 256) uint8"),
                  ("driving_warp_1344x760_tinygrad.pkl", "the same for the comma four camera")],
        "finds": "openpilot/selfdrive/modeld/models/driving_tinygrad.pkl (load_oob) and "
                 "driving_warp_{w}x{h}_tinygrad.pkl; state pairs = inputs X with an output next_X",
        "device_compile": "cd openpilot/selfdrive/modeld && scons (runs tinygrad_repo/examples/openpilot/"
                          "compile_onnx.py models/driving_supercombo.onnx models/driving_tinygrad.pkl --out-of-band)",
        "upstream": [(_C, "openpilot/selfdrive/modeld/modeld.py, SConscript, models/README.md",
                      "4d6e8b3ab060d015761d562e2964ffd4a93d08bd (#38933, 2026-09-16); "
                      "fe8961efe0ee51f7ef3c89a2cf752579ff2c813a (#38991, 2026-09-22)"),
                     (_T, "examples/openpilot/compile_onnx.py, compile_warp.py",
                      "0e8c920304c74caef07f692bfd03457b3e9cfe47")],
    },
    "sp-2026.10": {
        "packaging": STATEFUL, "graph": STATEFUL,
        "files": [("driving_supercombo.onnx", "the op-2026.09 stateful graph with an MDN action (1 x 2578)"),
                  ("driving_tinygrad.pkl", "the op-2026.09 artifact; selected with COMBINED_MODEL_PKL"),
                  ("driving_warp_1928x1208_tinygrad.pkl", "warp, as op-2026.09"),
                  ("driving_warp_1344x760_tinygrad.pkl", "warp, as op-2026.09")],
        "finds": "openpilot/sunnypilot/modeld_v2/modeld.py: $COMBINED_MODEL_PKL if that file (or its .chunkmanifest) "
                 "exists, else the active model-manager bundle's file under the model root; artifacts with "
                 "'input_specs' go through its native tinygrad adapter; warps from modeld_v2/models/",
        "device_compile": "compile the ONNX with the checkout's tinygrad_repo/examples/openpilot/compile_onnx.py "
                          "--out-of-band, then point COMBINED_MODEL_PKL at the result",
        "upstream": [(_S, "openpilot/sunnypilot/modeld_v2/model_adapters.py (native adapter)",
                      "06e1b996f504d2778723d21eb36bd90f9905b76d"),
                     (_S, "openpilot/sunnypilot/modeld_v2/{helpers,parse_model_outputs,constants}.py",
                      "356bd1a96e09df7bfd6ba1e70e1ff329c0a0b358, 60f849ddd9c57e4ae096a9fea83b47914e30f7d1, "
                      "7d5c3c6a0ef5af482f7a4bd1398e25cefcd1136e"),
                     (_S, "openpilot/sunnypilot/modeld_v2/modeld.py (COMBINED_MODEL_PKL, load_oob, main's bufs)",
                      "9a801b53f27f36ae56548dd671c7da3ef3715fb0")],
        "pickle_env": "COMBINED_MODEL_PKL",  # modeld_v2 loads the file it names before any model bundle
        # its parser (parse_model_outputs.py at 60f849dd) parses 'action' as an MDN of ACTION_WIDTH values
        "action": MDN,
    },
}


def build_runtime(entry: dict) -> RuntimeSpec:
    if entry["packaging"] not in PACKAGINGS:
        raise ValueError(f"packaging {entry['packaging']!r}; expected one of {PACKAGINGS}")
    if entry.get("action", RAW) not in ACTION_FORMS:
        raise ValueError(f"action {entry['action']!r}; expected one of {ACTION_FORMS}")
    return RuntimeSpec(packaging=entry["packaging"], graph=entry["graph"],
                       files=tuple((n, w) for n, w in entry["files"]), finds=entry["finds"],
                       device_compile=entry["device_compile"],
                       upstream=tuple(tuple(u) for u in entry["upstream"]),  # type: ignore[misc]
                       pickle_env=entry.get("pickle_env"),
                       action=entry.get("action", RAW))
