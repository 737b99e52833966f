"""The install smoke test runs the checkout's own modeld: its ModelState on the installed files and its parser, with
only native-code modules stood in.

The checkout here is written for these tests (no upstream code): a ``modeld.py`` of the September-2026 stateful form
- the same module path, class, constructor and ``run`` arguments, the same files and keys - that imports messaging,
visionipc, params, logging, the car interface and a Cython-built module at module level as a real one does, with
its own helpers, constants, parser and NV12 sizes.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from sunnypilot_training.cli import pipeline
from sunnypilot_training.cli.main import build_parser
from sunnypilot_training.cli.main import main as sptrain
from sunnypilot_training.contract.nv12 import nv12_layout
from sunnypilot_training.contract.runtimes import CAMERA_SIZES
from sunnypilot_training.export import runtime_export
from sunnypilot_training.integration import checkout_modeld
from sunnypilot_training.integration.backup import INSTALLED, ROLLED_BACK, read_manifest
from sunnypilot_training.integration.native_standins import BUILD_OUTPUT, NATIVE
from sunnypilot_training.integration.runtime_install import SMOKE_FRAMES

from spt_runtime_micro import export_micro_runtime, install_and_read_manifest, write_tree
from sunnypilot_standin import CONSTANTS_PY, PARSER_PY

CAMERA = (1344, 760)

HELPERS_PY = '''
import io
import pickle
import struct
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"


def modeld_pkl_path(big):
    return MODELS_DIR / (("big_" if big else "") + "driving_tinygrad.pkl")


def load_oob(f):
    """Length-prefixed protocol-5 opcodes, then length-prefixed out-of-band buffers."""
    size = struct.unpack("<q", f.read(8))[0]
    opcodes = f.read(size)
    buffers = []
    while True:
        head = f.read(8)
        if not head:
            break
        data = bytearray(struct.unpack("<q", head)[0])
        f.readinto(data)
        buffers.append(pickle.PickleBuffer(data))
    return pickle.load(io.BytesIO(opcodes), buffers=buffers)
'''

MODELD_PY = '''
import base64
import pickle

import numpy as np
from tinygrad.tensor import Tensor
from tinygrad.uop.ops import UOp

import openpilot.cereal.messaging as messaging
from openpilot.cereal import log
from opendbc.car.structs import car
from msgq.visionipc import VisionIpcClient, VisionBuf
from openpilot.common.params import Params
from openpilot.common.swaglog import cloudlog
from openpilot.common.transformations.transformations import rot_from_euler
from openpilot.system.camerad.cameras.nv12_info import get_nv12_info
from openpilot.selfdrive.modeld.constants import ModelConstants
from openpilot.selfdrive.modeld.helpers import MODELS_DIR, load_oob, modeld_pkl_path
from openpilot.selfdrive.modeld.parse_model_outputs import Parser


def view_of(tensor):
    """The state input's device buffer seen through a second tensor: the graph writes next_X into X through it."""
    view = tensor._buffer().view(int(np.prod(tensor.shape)), tensor.dtype, 0).ensure_allocated()
    return Tensor(UOp.from_buffer(view)).reshape(tensor.shape)


def action_message(model_output, prev_action: log.ModelDataV2.Action) -> log.ModelDataV2.Action:
    return log.ModelDataV2.Action(desiredAcceleration=float(model_output["action"][0, 1]))


class ModelState:
    def __init__(self, cam_w: int, cam_h: int, big: bool):
        with open(modeld_pkl_path(big), "rb") as f:
            jits = load_oob(f)
        self.device = jits['input_specs']['new_img'][2]
        self.shapes = {n: (tuple(s), np.dtype(d)) for n, (s, d, _) in jits["input_specs"].items()}
        self.state_pairs = {n: "next_" + n for n in self.shapes if "next_" + n in jits["metadata"]["output_shapes"]}
        self.output_slices = pickle.loads(base64.b64decode(jits["metadata"]["metadata"]["output_slices"]))
        stride, y_height, uv_height, _ = get_nv12_info(cam_w, cam_h)
        self.copy_size = stride * (y_height + uv_height)
        with open(MODELS_DIR / f"driving_warp_{cam_w}x{cam_h}_tinygrad.pkl", "rb") as f:
            self.run_warp = pickle.load(f)["run"]
        self.run_model = jits["run"]
        self.state = {n: Tensor(np.zeros(s, d), device=self.device).realize()
                      for n, (s, d) in self.shapes.items() if n in self.state_pairs}
        self.outputs = {n: Tensor(np.zeros(s, np.dtype(d)), device=dev).realize()
                        for n, (s, d, dev) in jits["output_specs"].items() if n not in self.state_pairs.values()}
        self.outputs.update({out: view_of(self.state[n]) for n, out in self.state_pairs.items()})
        self.host = {n: np.zeros(s, np.float32) for n, (s, _) in self.shapes.items()
                     if n not in self.state_pairs and n != "new_img"}
        self.prev_desire = np.zeros(ModelConstants.DESIRE_LEN, np.float32)
        self.parser = Parser()

    def run(self, bufs: dict[str, VisionBuf], transforms, inputs) -> dict | None:
        frames = np.stack([np.frombuffer(bufs[k].data, np.uint8, count=self.copy_size) for k in ("img", "big_img")])
        m_inv = np.stack([transforms["img"], transforms["big_img"]]).astype(np.float32)
        inputs["desire_pulse"][0] = 0
        self.host["desire"][:] = np.where(inputs["desire_pulse"] - self.prev_desire > .99, inputs["desire_pulse"], 0)
        self.prev_desire[:] = inputs["desire_pulse"]
        self.host["traffic_convention"][:] = inputs["traffic_convention"]
        self.host["action_t"][:] = inputs["action_t"]
        new_img = self.run_warp(input_frame=Tensor(frames, device=self.device).realize(),
                                M_inv=Tensor(m_inv, device=self.device).realize())
        host = {n: Tensor(v.copy(), device=self.device).realize() for n, v in self.host.items()}
        self.run_model(output_buffers=self.outputs, new_img=new_img, **host, **self.state)
        model_output = self.outputs["outputs"].numpy()[0]
        return self.parser.parse_outputs({k: model_output[np.newaxis, v] for k, v in self.output_slices.items()})


def main():
    pm = messaging.PubMaster(["modelV2"])
    client = VisionIpcClient("camerad", 0, True)
    cloudlog.warning(f"modeld {Params().get('CarParams')} {car.CarParams} {pm} {client}")
'''

PARSE_OUTPUTS = '''

def _parse_outputs(self, outs):
    return self.parse_policy_outputs(self.parse_vision_outputs(outs))


Parser.parse_outputs = _parse_outputs
'''


def _nv12_info_py() -> str:
    sizes = {}
    for w, h in CAMERA_SIZES:
        layout = nv12_layout(w, h)
        sizes[(w, h)] = (layout.stride, layout.y_height, layout.uv_height, layout.size)
    return f"SIZES = {sizes!r}\n\n\ndef get_nv12_info(width, height):\n    return SIZES[(width, height)]\n"


def write_stateful_checkout(root: Path, modeld_source: str = MODELD_PY) -> Path:
    """A September-2026-shaped checkout (``R/openpilot/...``) written for these tests."""
    package = root / "openpilot"
    files = {
        "__init__.py": "",
        "selfdrive/__init__.py": "",
        "selfdrive/modeld/__init__.py": "",
        "selfdrive/modeld/modeld.py": textwrap.dedent(modeld_source),
        "selfdrive/modeld/helpers.py": HELPERS_PY,
        "selfdrive/modeld/constants.py": CONSTANTS_PY,
        "selfdrive/modeld/parse_model_outputs.py": PARSER_PY + PARSE_OUTPUTS,
        "system/camerad/cameras/nv12_info.py": _nv12_info_py(),
        "common/transformations/transformations.pyx": "# Cython source: built by the checkout's scons\n",
    }
    write_tree(package, files)
    (package / "selfdrive/modeld/models").mkdir()
    return root


@pytest.fixture(scope="module")
def stateful_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_micro_runtime("op-2026.09", tmp_path_factory.mktemp("export-2609-own"), CAMERA)


def _install(export: Path, checkout: Path) -> dict:
    return install_and_read_manifest(export, checkout, checkout / "openpilot/selfdrive/modeld/models")


def test_the_install_runs_the_checkouts_own_model_state_and_parser(stateful_export: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    checkout = write_stateful_checkout(tmp_path / "openpilot")
    manifest = _install(stateful_export, checkout)
    own = manifest["smoke_test"]["checkout_modeld"]
    assert manifest["status"] == INSTALLED and own["ran"] is True
    assert own["modeld"] == str(checkout / "openpilot/selfdrive/modeld/modeld.py")
    assert own["frames"] == SMOKE_FRAMES and own["profile"] == "op-2026.09"
    assert own["heads"]["plan"] == [1, 33, 15] and own["heads"]["action"] == [1, 2]
    assert set(own["vs_harness"]) == {"hidden_state", "action"}  # the same numbers as the release harness
    assert max(own["vs_harness"].values()) <= checkout_modeld.MATCH_ATOL
    for name in ("openpilot.cereal.messaging", "msgq.visionipc", "opendbc.car.structs", "openpilot.common.params",
                 "openpilot.common.swaglog"):
        assert own["standins"][name] == NATIVE
    assert own["standins"]["openpilot.common.transformations.transformations"] == BUILD_OUTPUT
    assert not any(name.startswith("openpilot.selfdrive") for name in own["standins"])  # its own code, imported
    assert "the checkout's own openpilot.selfdrive.modeld.modeld.ModelState ran" in capsys.readouterr().out


def test_a_model_state_that_reads_another_key_fails_the_install_and_is_undone(
        stateful_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = MODELD_PY.replace('jits["metadata"]["metadata"]["output_slices"]', 'jits["metadata"]["slices"]')
    checkout = write_stateful_checkout(tmp_path / "openpilot", other)
    models = checkout / "openpilot/selfdrive/modeld/models"
    assert sptrain(["install", "--from-dir", str(stateful_export), "--sunnypilot-root", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert "install failed and was undone" in err and "KeyError: 'slices'" in err
    assert "checkout's own openpilot.selfdrive.modeld.modeld.ModelState could not run" in err
    assert sorted(p.name for p in models.iterdir()) == [".sptrain_backups"]  # everything it placed is gone again
    assert read_manifest(next((models / ".sptrain_backups").iterdir()))["status"] == ROLLED_BACK


def test_a_parser_that_drops_a_head_fails_the_install(stateful_export: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    checkout = write_stateful_checkout(tmp_path / "openpilot")
    parser = checkout / "openpilot/selfdrive/modeld/parse_model_outputs.py"
    parser.write_text(parser.read_text() + "\n_keep = Parser.parse_outputs\nParser.parse_outputs = lambda self, o: "
                      "{k: v for k, v in _keep(self, o).items() if k != 'lead_prob'}\n")
    assert sptrain(["install", "--from-dir", str(stateful_export), "--sunnypilot-root", str(checkout)]) == 2
    assert "lead_prob missing" in capsys.readouterr().err


def test_a_model_state_that_feeds_the_model_differently_fails_the_install(stateful_export: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    flipped = MODELD_PY.replace('self.host["traffic_convention"][:] = inputs["traffic_convention"]',
                                'self.host["traffic_convention"][:] = inputs["traffic_convention"][::-1]')
    assert flipped != MODELD_PY
    checkout = write_stateful_checkout(tmp_path / "openpilot", flipped)
    assert sptrain(["install", "--from-dir", str(stateful_export), "--sunnypilot-root", str(checkout)]) == 2
    err = capsys.readouterr().err
    assert "computes another action than the release harness" in err and "install failed and was undone" in err


def test_a_modeld_that_cannot_be_imported_here_is_reported_not_run(stateful_export: Path, tmp_path: Path) -> None:
    checkout = write_stateful_checkout(tmp_path / "openpilot", "import a_module_this_machine_lacks\n" + MODELD_PY)
    own = _install(stateful_export, checkout)["smoke_test"]["checkout_modeld"]
    assert own["ran"] is False and "No module named 'a_module_this_machine_lacks'" in own["reason"]


def test_a_runtime_without_a_driven_model_state_is_left_to_the_harness(tmp_path: Path) -> None:
    report = checkout_modeld.run_checkout_modeld(tmp_path, "op-0.10.1", "CPU", tmp_path / "frames.npz")
    assert report["ran"] is False and "release harness" in report["reason"]


def test_the_missing_input_devices_file_is_supplied_outside_the_checkout(tmp_path: Path) -> None:
    class Helpers:
        TG_INPUT_DEVICES_PATH = tmp_path / "checkout" / "tg_input_devices.json"

        @staticmethod
        def get_tg_input_devices(process_name, usbgpu):
            return json.loads(Path(Helpers.TG_INPUT_DEVICES_PATH).read_text())[process_name]

    class Modeld:
        PROCESS_NAME = "openpilot.selfdrive.modeld.modeld"

    sys.modules[checkout_modeld.HELPERS_MODULE] = Helpers  # type: ignore[assignment]
    try:
        supplied = checkout_modeld.supply_input_devices(Modeld, "CPU", tmp_path)
        devices = Helpers.get_tg_input_devices(Modeld.PROCESS_NAME, False)
    finally:
        del sys.modules[checkout_modeld.HELPERS_MODULE]
    assert Path(supplied).parent == tmp_path and not (tmp_path / "checkout").exists()
    assert devices["default"]["WARP_DEV"] == devices["default"]["QUEUE_DEV"] == "CPU"


@pytest.mark.slow  # a real export of the tiny networks for two cameras: minutes on a small CPU
def test_pipeline_profile_exports_and_installs_into_the_checkouts_own_modeld(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = write_stateful_checkout(tmp_path / "openpilot")
    monkeypatch.setattr(pipeline, "_evaluate", lambda export_dir, data, progress: {"verdicts": {}})
    monkeypatch.setattr(pipeline, "write_report", lambda out, args, log, info, argv: out / "REPORT.md")
    args = build_parser().parse_args(["pipeline", "--checkpoint", str(tiny_checkpoint), "--profile", "op-2026.09",
                                      "--skip-drive", "--install", "--sunnypilot-root", str(checkout),
                                      "--output-dir", str(tmp_path / "run"), "--no-progress"])
    assert pipeline.run_pipeline(args) == 0
    export = json.loads((tmp_path / "run/export" / runtime_export.MANIFEST).read_text())
    assert export["profile"] == "op-2026.09"
    models = checkout / "openpilot/selfdrive/modeld/models"
    own = read_manifest(sorted((models / ".sptrain_backups").iterdir())[-1])["smoke_test"]["checkout_modeld"]
    assert own["ran"] is True and set(own["vs_harness"]) == {"hidden_state", "action"}
