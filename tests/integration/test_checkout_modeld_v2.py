"""The install smoke test runs a sunnypilot checkout's own ``modeld_v2``: its ModelState on the pickle that
``COMBINED_MODEL_PKL`` names, its adapter for tinygrad ``input_specs`` artifacts, the warps from its models folder and
its parser, with only native-code modules stood in.

The checkout here is written for these tests (no upstream code): a ``openpilot/sunnypilot/modeld_v2`` of the autumn
2026 form as docs/contract.md describes it - the same module paths, classes, constructor and ``run`` arguments, the
same environment variable, files and keys; camera inputs are the graph inputs whose names hold "img" (road first,
the wide one holding "big"), the host inputs are float32 views of one packed buffer, every ``next_X`` output buffer is
a view of X's - that imports messaging, params, the hardware flags and the car interface at module level as a real
one does.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sunnypilot_training.cli.main import main as sptrain
from sunnypilot_training.contract.nv12 import nv12_layout
from sunnypilot_training.contract.runtimes import CAMERA_SIZES
from sunnypilot_training.integration import checkout_modeld
from sunnypilot_training.integration.backup import INSTALLED, ROLLED_BACK, read_manifest
from sunnypilot_training.integration.native_standins import NATIVE
from sunnypilot_training.integration.runtime_detect import detect_runtime
from sunnypilot_training.integration.runtime_install import SMOKE_FRAMES, SP_PICKLE

from spt_runtime_micro import export_micro_runtime, install_and_read_manifest, write_tree
from sunnypilot_standin import CONSTANTS_PY, PARSER_PY

CAMERA = (1344, 760)
V2 = "openpilot/sunnypilot/modeld_v2"

HELPERS_PY = '''
import io
import pickle
import struct


def load_oob(f):
    """Opcodes behind an int64 length, then each out-of-band buffer behind its own int64 length."""
    (n,) = struct.unpack("<q", f.read(8))
    opcodes = f.read(n)
    chunks = []
    while len(head := f.read(8)) == 8:
        chunk = bytearray(struct.unpack("<q", head)[0])
        f.readinto(chunk)
        chunks.append(pickle.PickleBuffer(chunk))
    return pickle.Unpickler(io.BytesIO(opcodes), buffers=chunks).load()
'''

ADAPTERS_PY = '''
import base64
import math
import pickle
from pathlib import Path

import numpy as np
from tinygrad.dtype import dtypes
from tinygrad.tensor import Tensor
from tinygrad.uop.ops import UOp

from openpilot.common.basedir import BASEDIR
from openpilot.system.camerad.cameras.nv12_info import get_nv12_info

ALIGN = 128


def device_view(buffer, shape, dtype, offset):
    view = buffer.view(math.prod(shape), dtype, offset).ensure_allocated()
    return Tensor(UOp.from_buffer(view)).reshape(shape)


class InputSpecsAdapter:
    """A compiled ONNX artifact: input_specs, output_specs, run(output_buffers, **inputs); state = X with next_X."""

    is_native = True

    def __init__(self, jits, cam_w, cam_h):
        specs = jits["input_specs"]
        self.device = specs["new_img"][2]
        meta = jits["metadata"]
        self.state_names = [n for n in specs if "next_" + n in meta["output_shapes"]]
        self.vision_input_names = [n for n in meta["input_shapes"] if "img" in n]
        self.vision_output_slices = pickle.loads(base64.b64decode(meta["metadata"]["output_slices"]))
        models = Path(BASEDIR) / "openpilot/sunnypilot/modeld_v2/models"
        warp_file = models / f"driving_warp_{cam_w}x{cam_h}_tinygrad.pkl"
        with open(warp_file, "rb") as f:
            warp = pickle.load(f)
        self.run_warp = warp["run"]
        self.frame_size = warp["input_specs"]["input_frame"][0][1]
        self.run_model = jits["run"]
        self.queues = {n: Tensor(np.zeros(specs[n][0], specs[n][1]), device=self.device).realize()
                       for n in self.state_names}
        host = {"tfm": (2, 3, 3)}
        host.update({n: tuple(s) for n, (s, _, _) in specs.items() if n not in self.state_names and n != "new_img"})
        sizes = {n: -(-math.prod(s) * 4 // ALIGN) * ALIGN for n, s in host.items()}
        npy_bytes = sum(sizes.values())
        self.packed = np.zeros(npy_bytes + 2 * self.frame_size, np.uint8)
        self.host_buffer = Tensor(self.packed, device="NPY")._buffer()
        self.device_buffer = Tensor(self.packed, device=self.device)._buffer()
        self.numpy_inputs, offset = {}, 0
        for n, s in host.items():
            self.numpy_inputs[n] = np.ndarray(s, np.float32, buffer=self.packed, offset=offset)
            self.queues[n] = device_view(self.device_buffer, s, dtypes.float32, offset)
            offset += sizes[n]
        self.frames = self.packed[npy_bytes:].reshape(2, self.frame_size)
        self.warp_inputs = {"input_frame": device_view(self.device_buffer, self.frames.shape, dtypes.uint8, npy_bytes),
                            "M_inv": self.queues.pop("tfm")}
        self.outputs = {n: Tensor(np.zeros(s, d), device=dev).realize()
                        for n, (s, d, dev) in jits["output_specs"].items()}
        for n in self.state_names:
            q = self.queues[n]
            self.outputs["next_" + n] = device_view(q._buffer(), q.shape, q.dtype, 0)

    def copy_frames(self, bufs):
        for row, name in enumerate(self.vision_input_names):
            if name in bufs:
                self.frames[row] = np.frombuffer(bufs[name].data, np.uint8, count=self.frame_size)

    def run(self):
        self.device_buffer.copy_from(self.host_buffer)
        self.queues["new_img"] = self.run_warp(**self.warp_inputs)
        self.run_model(output_buffers=self.outputs, **self.queues)
        return self.outputs["outputs"]


def get_model_adapter(jits, cam_w, cam_h):
    if "input_specs" not in jits:
        raise ValueError(f"this adapter loads flat input_specs artifacts; the pickle holds {sorted(jits)}")
    return InputSpecsAdapter(jits, cam_w, cam_h)
'''

MODELD_PY = '''
import os

import numpy as np

import openpilot.cereal.messaging as messaging
from openpilot.cereal import log
from opendbc.car.structs import car
from msgq.visionipc import VisionIpcClient, VisionBuf
from openpilot.common.hardware import COMMA_HARDWARE
from openpilot.common.params import Params
from openpilot.common.swaglog import cloudlog
from openpilot.common.file_chunker import get_manifest_path, open_file_chunked
from openpilot.sunnypilot.modeld_v2.constants import ModelConstants
from openpilot.sunnypilot.modeld_v2.helpers import load_oob
from openpilot.sunnypilot.modeld_v2.model_adapters import get_model_adapter
from openpilot.sunnypilot.modeld_v2.parse_model_outputs import Parser
from openpilot.sunnypilot.models.helpers import get_active_bundle


def _pkl_exists(path):
    return os.path.exists(path) or os.path.exists(get_manifest_path(path))


def _find_driving_pkl(bundle):
    override = os.environ.get("COMBINED_MODEL_PKL")
    if override and _pkl_exists(override):
        return override
    return None


class ModelState:
    def __init__(self, cam_w: int, cam_h: int, chestnut: bool = False):
        bundle = None if os.path.exists(os.environ.get("COMBINED_MODEL_PKL", "")) else get_active_bundle()
        path = _find_driving_pkl(bundle)
        assert path is not None, "No driving pkl found"
        self.DEV = "QCOM" if COMMA_HARDWARE else "CPU"
        with open_file_chunked(path) as f:
            self.adapter = get_model_adapter(load_oob(f), cam_w, cam_h)
        self.numpy_inputs = self.adapter.numpy_inputs
        self.vision_output_slices = self.adapter.vision_output_slices
        self._desire_key = next(k for k in self.numpy_inputs if k.startswith("desire"))
        self.prev_desire = np.zeros(ModelConstants.DESIRE_LEN, np.float32)
        self.parser = Parser()

    @property
    def vision_input_names(self):
        return self.adapter.vision_input_names

    @property
    def desire_key(self):
        return self._desire_key

    def run(self, bufs: dict[str, VisionBuf], transforms, inputs, after_enqueue=None):
        self.adapter.copy_frames(bufs)
        key = self.desire_key
        inputs[key][0] = 0
        self.numpy_inputs[key].flat[:] = np.where(inputs[key] - self.prev_desire > .99, inputs[key], 0)
        self.prev_desire[:] = inputs[key]
        for name in ("traffic_convention", "action_t"):
            if name in self.numpy_inputs and name in inputs:
                self.numpy_inputs[name][:] = inputs[name]
        for row, name in enumerate(self.vision_input_names):
            if name in transforms:
                self.numpy_inputs["tfm"][row] = transforms[name].reshape(3, 3)
        raw = self.adapter.run()
        if after_enqueue is not None:
            after_enqueue()
        flat = raw.numpy().flatten()
        return self.parser.parse_outputs({k: flat[np.newaxis, v] for k, v in self.vision_output_slices.items()})


def main():
    pm = messaging.PubMaster(["modelV2"])
    client = VisionIpcClient("camerad", 0, True)
    cloudlog.warning(f"modeld_v2 {Params().get('CarParams')} {car.CarParams} {log.ModelDataV2} {pm} {client}")
'''

PARSE_OUTPUTS = '''

def _parse_outputs(self, outs):
    outs = self.parse_policy_outputs(self.parse_vision_outputs(outs))
    self.parse_mdn("action", outs, in_N=0, out_N=0, out_shape=(2,))  # ACTION_WIDTH means, then their log-stds
    return outs


Parser.parse_outputs = _parse_outputs
'''

FILE_CHUNKER_PY = '''
def get_manifest_path(path):
    return str(path) + ".chunkmanifest"


def open_file_chunked(path):
    return open(path, "rb")
'''

BUNDLE_HELPERS_PY = '''
from openpilot.common.params import Params


def get_active_bundle(params=None):
    return (params or Params()).get("ModelManager_ActiveBundle")
'''


def _nv12_info_py() -> str:
    sizes = {}
    for w, h in CAMERA_SIZES:
        layout = nv12_layout(w, h)
        sizes[(w, h)] = (layout.stride, layout.y_height, layout.uv_height, layout.size)
    return f"SIZES = {sizes!r}\n\n\ndef get_nv12_info(width, height):\n    return SIZES[(width, height)]\n"


def write_sunnypilot_checkout(root: Path, modeld_source: str = MODELD_PY, adapters_source: str = ADAPTERS_PY) -> Path:
    """A sunnypilot-shaped checkout (``R/openpilot/...`` with ``sunnypilot/modeld_v2``) written for these tests."""
    package = root / "openpilot"
    files = {
        "__init__.py": "",
        "common/__init__.py": "",
        "common/basedir.py": "from pathlib import Path\n\nBASEDIR = str(Path(__file__).resolve().parents[2])\n",
        "common/file_chunker.py": FILE_CHUNKER_PY,
        "system/camerad/cameras/nv12_info.py": _nv12_info_py(),
        "selfdrive/modeld/__init__.py": "",
        "selfdrive/modeld/constants.py": CONSTANTS_PY,  # the stock parser constants sunnypilot's parser shares
        "sunnypilot/__init__.py": "",
        "sunnypilot/models/helpers.py": BUNDLE_HELPERS_PY,
        "sunnypilot/modeld_v2/__init__.py": "",
        "sunnypilot/modeld_v2/modeld.py": textwrap.dedent(modeld_source),
        "sunnypilot/modeld_v2/model_adapters.py": adapters_source,
        "sunnypilot/modeld_v2/helpers.py": HELPERS_PY,
        "sunnypilot/modeld_v2/constants.py": CONSTANTS_PY,
        "sunnypilot/modeld_v2/parse_model_outputs.py": PARSER_PY + PARSE_OUTPUTS,
    }
    write_tree(package, files)
    (package / "sunnypilot/modeld_v2/models").mkdir()
    return root


@pytest.fixture(scope="module")
def sunnypilot_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_micro_runtime("sp-2026.10", tmp_path_factory.mktemp("export-sp2610-own"), CAMERA)


def _install(export: Path, checkout: Path) -> dict:
    return install_and_read_manifest(export, checkout, checkout / V2 / "models")


def test_the_checkout_written_here_is_detected_as_sunnypilots_modeld_v2(tmp_path: Path) -> None:
    checkout = write_sunnypilot_checkout(tmp_path / "sunnypilot")
    assert detect_runtime(checkout).profile_id == "sp-2026.10"


def test_the_install_runs_modeld_v2s_own_model_state_adapter_and_parser(
        sunnypilot_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkout = write_sunnypilot_checkout(tmp_path / "sunnypilot")
    manifest = _install(sunnypilot_export, checkout)
    own = manifest["smoke_test"]["checkout_modeld"]
    assert manifest["status"] == INSTALLED and own["ran"] is True, own.get("reason")
    assert own["modeld"] == str(checkout / V2 / "modeld.py")
    assert own["model_state"] == f"{checkout_modeld.SUNNYPILOT_MODELD_MODULE}.ModelState"
    assert own["frames"] == SMOKE_FRAMES and own["profile"] == "sp-2026.10"
    assert own["heads"]["plan"] == [1, 33, 15] and own["heads"]["action"] == [1, 2]
    assert set(own["vs_harness"]) == {"hidden_state", "action"}  # the same numbers as the release harness
    assert max(own["vs_harness"].values()) <= checkout_modeld.MATCH_ATOL
    for name in ("openpilot.cereal.messaging", "msgq.visionipc", "openpilot.common.hardware",
                 "openpilot.common.params"):
        assert own["standins"][name] == NATIVE
    assert not any(name.startswith("openpilot.sunnypilot") for name in own["standins"])  # its own code, imported
    out = capsys.readouterr().out
    assert "the checkout's own openpilot.sunnypilot.modeld_v2.modeld.ModelState ran" in out
    assert f"COMBINED_MODEL_PKL={checkout / V2 / 'models' / SP_PICKLE}" in out


def test_a_model_state_that_swaps_the_cameras_fails_the_install_and_is_undone(
        sunnypilot_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    swapped = ADAPTERS_PY.replace('if "img" in n]', 'if "img" in n][::-1]')
    assert swapped != ADAPTERS_PY
    checkout = write_sunnypilot_checkout(tmp_path / "sunnypilot", adapters_source=swapped)
    models = checkout / V2 / "models"
    assert sptrain(["install", "--from-dir", str(sunnypilot_export), "--sunnypilot-root", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert "than the release harness" in err and "install failed and was undone" in err
    assert sorted(p.name for p in models.iterdir()) == [".sptrain_backups"]
    assert read_manifest(next((models / ".sptrain_backups").iterdir()))["status"] == ROLLED_BACK


def test_a_model_state_that_reads_another_key_fails_the_install(sunnypilot_export: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    other = ADAPTERS_PY.replace('meta["metadata"]["output_slices"]', 'meta["output_slices"]')
    assert other != ADAPTERS_PY
    checkout = write_sunnypilot_checkout(tmp_path / "sunnypilot", adapters_source=other)
    assert sptrain(["install", "--from-dir", str(sunnypilot_export), "--sunnypilot-root", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert "KeyError: 'output_slices'" in err
    assert f"checkout's own {checkout_modeld.SUNNYPILOT_MODELD_MODULE}.ModelState could not run" in err


def test_the_camera_inputs_follow_the_model_states_names(tmp_path: Path) -> None:
    class State:
        vision_input_names = ["new_img", "state_big_img_q"]

    assert checkout_modeld.camera_names(State, sunnypilot=True) == {"new_img": "road", "state_big_img_q": "wide"}
    assert checkout_modeld.camera_names(State, sunnypilot=False) == {"img": "road", "big_img": "wide"}
