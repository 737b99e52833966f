"""The runtime profiles of 2026: data that matches what each upstream runtime reads (names, shapes, files)."""

from __future__ import annotations

import json

import pytest

from sunnypilot_training.cli.main import main
from sunnypilot_training.contract import profiles, runtimes


def test_every_profile_has_a_runtime_and_trains_an_existing_network() -> None:
    for pid in profiles.profile_ids():
        profile = profiles.get_profile(pid)
        assert profile.runtime.packaging in runtimes.PACKAGINGS
        assert profiles.get_profile(profile.trains_as).trains_as == profile.trains_as  # no chains
        assert profile.runtime.files, pid


def test_combined_0_11_1_reuses_the_split_networks_and_ships_one_pickle() -> None:
    old, new = profiles.get_profile("op-0.10.1"), profiles.get_profile("op-0.11.1")
    assert new.vision == old.vision and new.policy == old.policy
    assert new.graph is None
    assert "driving_tinygrad.pkl" in new.runtime.file_names()
    assert not any(n.endswith("_metadata.pkl") for n in new.runtime.file_names())


def test_supercombo_graph_takes_24_past_features_and_action_t() -> None:
    graph = profiles.get_profile("op-2026.07").graph
    shapes = {i.name: (i.shape, i.dtype) for i in graph.inputs}
    assert shapes == {"img": ((1, 12, 128, 256), "uint8"), "big_img": ((1, 12, 128, 256), "uint8"),
                      "features_buffer": ((1, 24, 512), "float32"), "desire_pulse": ((1, 25, 8), "float32"),
                      "traffic_convention": ((1, 2), "float32"), "action_t": ((1, 2), "float32")}
    slices = graph.output_slices()
    vision = profiles.get_profile("op-0.10.1").vision
    # every head the runtime's Parser reads is there, hidden_state for the feedback, action 2 wide
    for head in [*vision.heads, *profiles.get_profile("op-0.10.1").policy.heads]:
        assert slices[head.name].stop - slices[head.name].start == head.width
    assert slices["action"].stop - slices["action"].start == 2
    assert "pad" not in slices
    assert max(s.stop for s in slices.values()) == graph.output_width


def test_stateful_graph_pairs_every_state_with_a_next_output() -> None:
    profile = profiles.get_profile("op-2026.09")
    names = [i.name for i in profile.graph.inputs]
    assert names[:4] == ["new_img", "desire", "traffic_convention", "action_t"]
    assert profile.graph.input("new_img").shape == (2, 6, 128, 256)
    state_names = set(names[4:])
    assert {i for i, _ in profile.state_pairs} == state_names
    assert all(o == "next_" + i for i, o in profile.state_pairs)
    # host inputs must be float32: the runtime writes float32 bytes into views of one packed buffer
    host = [i for i in profile.graph.inputs if i.name not in state_names and i.name != "new_img"]
    assert {i.dtype for i in host} == {"float32"}


def test_stateful_graph_names_exactly_two_camera_inputs_road_then_wide() -> None:
    # sunnypilot's modeld_v2 reads the graph inputs whose names contain "img", in order, as (road, wide) frames
    for pid in ("op-2026.09", "sp-2026.10"):
        names = [i.name for i in profiles.get_profile(pid).graph.inputs]
        cameras = [n for n in names if runtimes.CAMERA_NAME_MARK in n]
        assert cameras[0] == "new_img" and len(cameras) == 2
        assert runtimes.WIDE_NAME_MARK not in cameras[0] and runtimes.WIDE_NAME_MARK in cameras[1]


def test_contract_list_json_lists_files_inputs_state_pairs_and_outputs(capsys: pytest.CaptureFixture) -> None:
    assert main(["contract", "list", "--json"]) == 0
    listed = {entry["profile"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert list(listed) == profiles.profile_ids()
    stateful = listed["op-2026.09"]
    graph = stateful["models"]["driving_supercombo"]
    assert graph["inputs"]["state_feat_q"] == {"shape": [96, 1, 512], "dtype": "float32"}
    assert graph["state_pairs"]["state_feat_q"] == "next_state_feat_q"
    assert [f["name"] for f in stateful["runtime"]["files"]][:2] == ["driving_supercombo.onnx", "driving_tinygrad.pkl"]
    assert listed["op-0.11.1"]["runtime"]["upstream"][0]["commit"].startswith("6941a913a")


def test_contract_show_names_files_and_state_pairs(capsys: pytest.CaptureFixture) -> None:
    assert main(["contract", "show", "--profile", "op-2026.09"]) == 0
    out = capsys.readouterr().out
    assert "driving_warp_1344x760_tinygrad.pkl" in out
    assert "next_state_desire_q" in out and "(fed back into state_desire_q)" in out
    assert "action" in out
