"""Golden tests: the contract reproduces the metadata of real openpilot releases."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from sunnypilot_training.contract import metadata, profiles
from sunnypilot_training.errors import ContractError, UnknownProfileError

from spt_testutil import REFERENCE_FILES, REFERENCE_METADATA, REPO_ROOT

SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "openpilot-metadata"


@pytest.mark.parametrize("filename,profile_id,model", REFERENCE_FILES)
def test_metadata_matches_release(filename: str, profile_id: str, model: str) -> None:
    reference = metadata.load_metadata(REFERENCE_METADATA / filename)
    ours = metadata.build_metadata(profiles.get_profile(profile_id).model(model), "run/1")
    assert list(ours) == list(reference)  # same keys, same order
    assert list(ours["input_shapes"].items()) == list(reference["input_shapes"].items())
    assert ours["output_shapes"] == reference["output_shapes"]
    assert list(ours["output_slices"].items()) == list(reference["output_slices"].items())
    assert metadata.compare_metadata(ours, reference) == []


def test_fixture_copies_equal_shared_reference() -> None:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared is not beside this checkout")
    for filename, _, _ in REFERENCE_FILES:
        assert (REFERENCE_METADATA / filename).read_bytes() == (SHARED_REFERENCE / filename).read_bytes()


def test_compare_metadata_reports_a_wrong_slice() -> None:
    spec = profiles.get_profile("op-0.10.1").vision
    good = metadata.build_metadata(spec, "a")
    bad = metadata.build_metadata(spec, "b")
    bad["output_slices"]["lead"] = slice(917, 1019)
    assert metadata.compare_metadata(good, metadata.build_metadata(spec, "other")) == []
    problems = metadata.compare_metadata(bad, good)
    assert len(problems) == 1 and problems[0].startswith("output_slices")


@pytest.mark.parametrize("profile_id", profiles.profile_ids())
def test_slices_tile_the_output(profile_id: str) -> None:
    for spec in profiles.get_profile(profile_id).models.values():
        slices = [s for name, s in spec.output_slices().items() if name != "pad"]
        assert slices[0].start == 0
        for a, b in zip(slices, slices[1:]):
            assert a.stop == b.start
        assert slices[-1].stop + spec.pad_width == spec.output_width
        assert list(spec.output_slices())[-1] == "pad"


def test_widths_of_multi_hypothesis_heads() -> None:
    old = profiles.get_profile("op-0.10.0")
    assert old.vision.head("lead").width == 2 * (2 * 6 * 4 + 3) == 102
    assert old.policy.head("plan").width == 5 * (2 * 33 * 15 + 1) == 4955
    new = profiles.get_profile("op-0.10.1")
    assert new.vision.head("lead").width == 2 * 3 * 6 * 4 and not new.vision.head("lead").is_multi_hypothesis


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(UnknownProfileError) as err:
        profiles.get_profile("op-9.9")
    assert "op-0.10.1" in str(err.value) and "op-0.10.0" in str(err.value)


def test_default_profile() -> None:
    assert profiles.get_profile().id == profiles.DEFAULT_PROFILE == "op-0.10.1"


def test_output_slices_roundtrip_through_metadata_props() -> None:
    spec = profiles.get_profile("op-0.10.0").policy
    props = metadata.onnx_metadata_props(spec, "abc/7")
    assert props["model_checkpoint"] == "abc/7"
    assert metadata.decode_output_slices(props["output_slices"]) == spec.output_slices()


class _Evil:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-never",))


def test_restricted_loader_refuses_other_globals(tmp_path: Path) -> None:
    path = tmp_path / "evil_metadata.pkl"
    path.write_bytes(pickle.dumps({"x": _Evil()}))
    with pytest.raises(ContractError, match="only builtins.slice"):
        metadata.load_metadata(path)


def test_restricted_loader_names_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "driving_vision_metadata.pkl"
    full = (REFERENCE_METADATA / REFERENCE_FILES[0][0]).read_bytes()
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ContractError, match="driving_vision_metadata.pkl"):
        metadata.load_metadata(path)


def test_load_metadata_rejects_wrong_keys(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"output_slices": {}}))
    with pytest.raises(ContractError, match="expected"):
        metadata.load_metadata(path)
