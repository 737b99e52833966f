"""What collect and the pipeline decide alike (cli/collect_choices.py): `--simulator auto` (CARLA when a server
answers, else the built-in simulator with a warning) and a validation folder's own seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sunnypilot_training.cli import collect_choices, collect_cmd, pipeline
from sunnypilot_training.cli.collect_choices import VAL_SEED_OFFSET, collect_seed, resolve_simulator
from sunnypilot_training.cli.main import build_parser, main

carla_double = pytest.importorskip("carla_double")


@pytest.fixture
def double(monkeypatch):
    monkeypatch.setenv("SPTRAIN_CARLA_MODULE", "carla_double")
    monkeypatch.delenv("CARLA_ROOT", raising=False)
    carla_double.stop_all()
    yield
    carla_double.stop_all()


def _collect_args(*extra: str):
    return build_parser().parse_args(["collect", "--scenario", "curvy_road", "--output", "out", *extra])


@pytest.mark.parametrize(
    ("output", "seed", "expected", "warned"),
    [("data/train", None, 0, False), ("data/val", None, VAL_SEED_OFFSET, True),
     ("runs\\urban\\data\\Validation", None, VAL_SEED_OFFSET, True), ("data/valid", None, VAL_SEED_OFFSET, True),
     ("data/val", 7, 7, False), ("data/train", 0, 0, False), ("data/value", None, 0, False)],
)
def test_a_validation_folder_without_a_seed_gets_the_pipeline_s_validation_seed(output, seed, expected, warned) -> None:
    chosen, note = collect_seed(Path(output.replace("\\", "/")), seed)
    assert chosen == expected and bool(note) is warned
    if warned:
        assert str(VAL_SEED_OFFSET) in note and "--seed" in note


def test_the_pipeline_uses_the_same_validation_offset_and_the_same_simulator_choice() -> None:
    assert pipeline.VAL_SEED_OFFSET is VAL_SEED_OFFSET and pipeline.resolve_simulator is resolve_simulator


def test_collect_auto_uses_carla_when_a_server_answers(double) -> None:
    carla_double.serve("localhost", 2130)
    simulator, note = resolve_simulator(_collect_args("--simulator", "auto", "--port", "2130"), "", can_start=False)
    assert simulator == "carla" and "a server answers at localhost:2130" in note


def test_collect_auto_does_not_start_carla_and_says_how(double, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path))
    simulator, note = resolve_simulator(_collect_args("--simulator", "auto", "--port", "2133"), "", can_start=False)
    assert simulator == "builtin" and "BUILT-IN" in note and "although CARLA is set up" in note
    assert "Invoke-Carla -Port 2133" in note and "sptrain carla start --port 2133" in note
    args = build_parser().parse_args(["pipeline", "--simulator", "auto", "--carla-port", "2133"])
    assert resolve_simulator(args)[0] == "carla"  # the pipeline starts it


def test_auto_without_a_client_uses_the_builtin_simulator(monkeypatch) -> None:
    monkeypatch.setenv("SPTRAIN_CARLA_MODULE", "no_such_carla_client_module")
    monkeypatch.setenv("CARLA_ROOT", "/somewhere")
    simulator, note = resolve_simulator(_collect_args("--simulator", "auto"), "", can_start=False)
    assert simulator == "builtin" and "not installed" in note
    args = build_parser().parse_args(["pipeline", "--simulator", "auto"])
    assert resolve_simulator(args)[0] == "builtin"  # a CARLA folder without a client is no CARLA either


def test_collect_passes_the_choices_on_and_warns(double, tmp_path, monkeypatch, capsys) -> None:
    seen = {}

    def schedule(simulator, scenario, episodes, output, seed, seconds, label_tail_s):
        seen.update(simulator=simulator, seed=seed, tail=label_tail_s)
        return []

    class Summary:
        def format(self) -> str:
            return "0 written"

        def raise_for_failures(self) -> None:
            return None

    monkeypatch.setattr(collect_cmd, "schedule_episodes", schedule)
    monkeypatch.setattr(collect_cmd, "collect", lambda specs, **kwargs: Summary())
    assert main(["collect", "--simulator", "auto", "--scenario", "curvy_road", "--output", str(tmp_path / "val"),
                 "--port", "2136"]) == 0
    assert seen == {"simulator": "builtin", "seed": VAL_SEED_OFFSET, "tail": 0.0}
    err = capsys.readouterr().err
    assert "WARNING: --simulator auto: using the BUILT-IN simulator" in err and f"seed {VAL_SEED_OFFSET}" in err
    assert main(["collect", "--scenario", "curvy_road", "--output", str(tmp_path / "train")]) == 0
    assert seen == {"simulator": "builtin", "seed": 0, "tail": 0.0} and capsys.readouterr().err == ""  # the defaults
    assert main(["collect", "--scenario", "curvy_road", "--output", str(tmp_path / "t"),
                 "--label-tail-seconds", "10"]) == 0
    assert seen["tail"] == 10.0


def test_the_choices_module_is_the_only_home_of_the_auto_rule() -> None:
    sources = [Path(module.__file__).read_text() for module in (pipeline, collect_cmd)]
    assert all("def resolve_simulator" not in text and "1_000_003" not in text for text in sources)
    assert "def resolve_simulator" in Path(collect_choices.__file__).read_text()
