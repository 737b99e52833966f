"""`sptrain pipeline --simulator carla|auto`: which simulator is used, and CARLA servers started and stopped."""

from __future__ import annotations

import pytest

from sunnypilot_training.cli import pipeline
from sunnypilot_training.cli.collect_cmd import carla_options
from sunnypilot_training.cli.main import build_parser
from sunnypilot_training.collector.carla_backend import launcher

carla_double = pytest.importorskip("carla_double")


@pytest.fixture
def double(monkeypatch):
    monkeypatch.setenv("SPTRAIN_CARLA_MODULE", "carla_double")
    monkeypatch.delenv("CARLA_ROOT", raising=False)
    carla_double.stop_all()
    yield
    carla_double.stop_all()


def _args(*extra: str):
    return build_parser().parse_args(["pipeline", *extra])


def test_auto_uses_carla_when_a_server_answers(double) -> None:
    carla_double.serve("localhost", 2100)
    simulator, note = pipeline.resolve_simulator(_args("--simulator", "auto", "--carla-port", "2100"))
    assert simulator == "carla" and "a server answers at localhost:2100" in note


def test_auto_uses_carla_when_a_carla_folder_is_known(double, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path))
    simulator, note = pipeline.resolve_simulator(_args("--simulator", "auto"))
    assert simulator == "carla" and "CARLA_ROOT" in note


def test_auto_falls_back_to_the_builtin_simulator_loudly(double) -> None:
    simulator, note = pipeline.resolve_simulator(_args("--simulator", "auto"))
    assert simulator == "builtin" and "BUILT-IN" in note and "localhost:2000" in note
    assert pipeline.resolve_simulator(_args("--simulator", "builtin")) == ("builtin", "")


@pytest.fixture
def fake_launcher(monkeypatch):
    calls = []

    def start(root, host, port, workers=1, quality="Low", timeout_s=0, state_dir=None):
        calls.append(("start", port, workers))
        for i in range(workers):
            carla_double.serve(host, port + 3 * i)
        return [f"started {port}"], [port + 3 * i for i in range(workers)]

    def stop(port=None, state_dir=None):
        calls.append(("stop", port))
        return [f"stopped {port}"]

    monkeypatch.setattr(launcher, "start", start)
    monkeypatch.setattr(launcher, "stop", stop)
    return calls


@pytest.mark.parametrize("keep", [False, True])
def test_servers_started_for_the_collection_are_stopped_unless_kept(double, fake_launcher, keep) -> None:
    args = _args("--simulator", "carla", "--carla-port", "2200", *(["--keep-carla-running"] if keep else []))
    with pipeline.CarlaServers(carla_options(args, 2, prefix="carla-"), args.carla_root, args.keep_carla_running):
        assert fake_launcher == [("start", 2200, 2)]
    assert fake_launcher[1:] == ([] if keep else [("stop", 2200), ("stop", 2203)])


def test_servers_that_already_answer_are_neither_started_nor_stopped(double, capsys) -> None:
    server = carla_double.serve("localhost", 2300)
    args = _args("--simulator", "carla", "--carla-port", "2300")
    servers = pipeline.CarlaServers(carla_options(args, 1, prefix="carla-"), None, False)  # no CARLA folder needed
    with servers:
        assert servers.started == []
    assert "localhost:2300: CARLA 0.9.16 already answers (left as it is)" in capsys.readouterr().out
    assert server.running and carla_double.get_server("localhost", 2300) is server


def test_carla_collection_defaults_to_one_worker() -> None:
    preset = pipeline.PRESETS["quick"]
    assert pipeline._workers(_args(), "carla", preset) == 1
    assert pipeline._workers(_args(), "builtin", preset) == preset["workers"]
    assert pipeline._workers(_args("--workers", "3"), "carla", preset) == 3
