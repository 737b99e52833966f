"""On-policy episodes: a model drives, the expert takes over when the car strays and labels every frame."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.collector.collect import collect, schedule_episodes
from sunnypilot_training.contract.constants import X_IDXS, Plan
from sunnypilot_training.driving.on_policy import TAKEOVER_M, OnPolicyBackend, on_policy_backend
from sunnypilot_training.episodes.shards import open_shard, read_labels
from sunnypilot_training.errors import ConfigError, ShardFormatError


def test_on_policy_shards_hold_the_experts_plan_from_where_the_car_is(export_dir, tmp_path) -> None:
    """An untrained model drives, so the expert's plan has to take the wheel; the plan label starts at the car
    (x = 0, its speed) and heads back to the lane centre."""
    specs = schedule_episodes("builtin", "highway_follow", 1, tmp_path / "onpolicy", seed=3, duration_s=14.0)
    summary = collect(specs, workers=1, progress=False, backend=OnPolicyBackend(str(export_dir)))
    assert len(summary.written) == 1 and not summary.failed
    shard = open_shard(tmp_path / "onpolicy" / specs[0].name)
    assert shard.attrs["driver"] == f"model:{export_dir.name}" and 0.0 < shard.attrs["expert_share"] <= 1.0
    labels = read_labels(shard)
    plan, valid = labels["plan"], labels["valid"]
    assert valid.sum() > 50
    np.testing.assert_allclose(plan[valid, 0, Plan.POSITION], 0.0, atol=1e-4)
    np.testing.assert_allclose(plan[valid, 0, Plan.VELOCITY.start], labels["ego_speed"][valid], atol=0.05)
    lines = labels["lane_lines"][valid]  # (n, 4, 33, 2): y of the left and right lines at x = 0
    centre = 0.5 * (lines[:, 1, 0, 0] + lines[:, 2, 0, 0])
    assert (np.abs(centre) > TAKEOVER_M).any()  # the model strays ...
    # the plan heads for the lane centre: 4 s ahead it is nearer the centre there than the car is to it now
    x4, y4 = plan[valid][:, 20, Plan.POSITION.start], plan[valid][:, 20, Plan.POSITION.start + 1]
    centre_ahead = np.array([np.interp(x, X_IDXS, 0.5 * (row[1, :, 0] + row[2, :, 0])) for x, row in zip(x4, lines)])
    off = np.abs(centre) > 0.3
    assert (np.abs(y4[off] - centre_ahead[off]) < np.abs(centre[off])).mean() > 0.8  # ... the label brings it back
    again = collect(specs, workers=1, progress=False, backend=OnPolicyBackend(str(export_dir)))
    assert again.skipped == [specs[0].name]
    with pytest.raises(ShardFormatError, match="driver"):  # an expert collection does not reuse on-policy shards
        collect(specs, workers=1, progress=False)


def test_driver_choice() -> None:
    assert on_policy_backend("expert") is None
    for bad in ("model:", "policy:/tmp/x", "oracle"):
        with pytest.raises(ConfigError, match="--driver"):
            on_policy_backend(bad)


def test_on_policy_episodes_refuse_a_label_tail(tmp_path, capsys) -> None:
    """The model needs every frame to drive, so an on-policy episode has no unrendered tail: refused up front."""
    from sunnypilot_training.cli.main import main
    from sunnypilot_training.driving.on_policy import run_on_policy_episode

    spec = schedule_episodes("builtin", "curvy_road", 1, tmp_path, 0, 2.0, 10.0)[0]
    with pytest.raises(ConfigError, match="label tail of 10 s"):
        run_on_policy_episode(spec, str(tmp_path / "no_export"))
    code = main(["collect", "--scenario", "curvy_road", "--output", str(tmp_path / "out"), "--episode-seconds", "2",
                 "--label-tail-seconds", "10", "--driver", f"model:{tmp_path}"])
    assert code != 0 and "--label-tail-seconds 10" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
