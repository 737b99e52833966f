"""The stand-ins for a checkout's native-code modules: which names they answer, and what a stand-in can do."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from sunnypilot_training.integration.native_standins import (
    BUILD_OUTPUT,
    NATIVE,
    NOT_INSTALLED,
    Standin,
    StandinModule,
    install_standins,
)


@pytest.fixture
def standins(tmp_path: Path):
    package = tmp_path / "openpilot"
    (package / "common").mkdir(parents=True)
    (package / "common" / "__init__.py").write_text("")
    (package / "common" / "built.pyx").write_text("# Cython source\n")
    (package / "common" / "plain.py").write_text("VALUE = 3\n")
    sys.path.insert(0, str(tmp_path))
    found = install_standins()
    yield found
    found.remove()
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m == "openpilot" or m.startswith("openpilot.")]:
        del sys.modules[name]


def test_messaging_and_hardware_are_always_stood_in(standins) -> None:
    messaging = importlib.import_module("openpilot.cereal.messaging")
    hardware = importlib.import_module("openpilot.common.hardware")
    assert isinstance(messaging, StandinModule) and isinstance(hardware, StandinModule)
    assert standins.answered["openpilot.cereal.messaging"] == standins.answered["openpilot.common.hardware"] == NATIVE
    assert not hardware.TICI  # no device here: the PC paths


def test_the_checkouts_own_python_is_imported_and_only_unbuilt_extensions_are_stood_in(standins) -> None:
    assert importlib.import_module("openpilot.common.plain").VALUE == 3
    assert isinstance(importlib.import_module("openpilot.common.built"), StandinModule)
    assert standins.answered["openpilot.common.built"] == BUILD_OUTPUT
    with pytest.raises(ModuleNotFoundError):  # a missing Python module stays missing
        importlib.import_module("openpilot.common.absent")


def test_a_native_package_is_stood_in_only_when_not_installed(standins) -> None:
    if importlib.util.find_spec("setproctitle") is None:
        assert isinstance(importlib.import_module("setproctitle"), StandinModule)
        assert standins.answered["setproctitle"] == NOT_INSTALLED
    assert not isinstance(importlib.import_module("json"), StandinModule)  # not ours to answer


def test_a_standin_reads_calls_subclasses_and_annotates() -> None:
    log = Standin("cereal.log")
    action = log.ModelDataV2.Action(desiredCurvature=0.0)
    assert isinstance(action, Standin) and list(log.items) == [] and not log

    class Sub(log.PubMaster):  # a class over a stood-in base
        pass

    def run(buf: log.VisionBuf | None = None) -> dict | None:
        return None

    assert Sub() is not None and run() is None and "cereal.log.ModelDataV2" in repr(log.ModelDataV2)


def test_remove_takes_the_finders_away(standins) -> None:
    importlib.import_module("msgq.visionipc")
    standins.remove()
    assert "msgq.visionipc" not in sys.modules and not any(f in sys.meta_path for f in standins.finders)
