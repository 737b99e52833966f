"""On-policy rounds in the pipeline: the training paths of a round, its report table, its argument checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from sunnypilot_training.cli.main import build_parser
from sunnypilot_training.cli.pipeline import PRESETS, _validate, label_tail_seconds, on_policy_split, splits
from sunnypilot_training.cli.pipeline_report import ROUND_METRICS, on_policy_markdown
from sunnypilot_training.errors import ConfigError
from sunnypilot_training.training.config import load_config, paths_override, settings_from_cfg


def test_a_round_trains_on_the_expert_and_every_earlier_round(tmp_path: Path) -> None:
    odd = tmp_path / "it's, [odd]"
    paths = [odd / "train", odd / on_policy_split(1), odd / on_policy_split(2)]
    settings = settings_from_cfg(load_config([paths_override("dataset.train_path", paths)]))
    assert [Path(p) for p in settings.dataset.train_path] == paths


def _evaluation(ade: float) -> dict:
    return {"test": {"summary": {"all": {m: {"mean": ade if m.startswith("plan_ade") else 0.5, "std": 0.1, "n": 8}
                                         for m in ROUND_METRICS}}}}


def test_the_round_table_has_the_expert_model_first_then_each_round() -> None:
    info = {"evaluation": _evaluation(9.0), "drive": {"summary": "0/4 lane-keep"},
            "on_policy": [{"round": 1, "collect": {"expert_share": 0.62}, "evaluation": _evaluation(7.5),
                           "drive": {"summary": "1/4 lane-keep"}}]}
    lines = on_policy_markdown(info)
    rows = [line for line in lines if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert rows[0].startswith("| 0 | — | 9.00 | 9.00 | 9.00 | 0.50") and rows[0].endswith("| 0/4 lane-keep |")
    assert rows[1].startswith("| 1 | 0.62 | 7.50") and rows[1].endswith("| 1/4 lane-keep |")


@pytest.mark.parametrize("extra, message", [(["--on-policy-rounds", "-1"], "expected 0"),
                                            (["--on-policy-rounds", "1", "--skip-export"], "needs the export"),
                                            (["--label-tail-seconds", "-2"], "expected 0 or more")])
def test_bad_round_arguments_are_refused(extra: list[str], message: str) -> None:
    args = build_parser().parse_args(["pipeline", *extra])
    with pytest.raises(ConfigError, match=message):
        _validate(args)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_split_of_a_preset_has_the_label_tail(preset: str) -> None:
    """The presets' episodes run on 10 s past their last recorded frame (the plan's horizon), every split alike;
    ``--label-tail-seconds`` replaces the tail and ``--episode-seconds`` the recorded length."""
    args = build_parser().parse_args(["pipeline", "--preset", preset])
    args.scenarios, args.train_episodes, args.val_episodes, args.test_episodes = ["curvy_road"], 1, 1, 1
    args.unseen_look_episodes = 1
    assert label_tail_seconds(args, PRESETS[preset]) == 10.0
    assert {name for name, *_ in splits(args, PRESETS[preset], "builtin")} == {"train", "val", "test",
                                                                                "test_unseen_look"}
    args = build_parser().parse_args(["pipeline", "--preset", preset, "--label-tail-seconds", "0",
                                      "--episode-seconds", "15"])
    args.scenarios, args.train_episodes, args.val_episodes, args.test_episodes = ["curvy_road"], 1, 1, 0
    args.unseen_look_episodes = 0
    assert label_tail_seconds(args, PRESETS[preset]) == 0.0
    assert {seconds for *_, seconds in splits(args, PRESETS[preset], "builtin")} == {15.0}
