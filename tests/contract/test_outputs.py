"""pack -> flat layout -> parse round trips for every head kind, in both profiles."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.contract import outputs, profiles
from sunnypilot_training.contract.profiles import HeadKind
from sunnypilot_training.errors import ContractError

B = 3


def _random_heads(spec: profiles.ModelSpec, rng: np.random.Generator) -> dict[str, object]:
    heads: dict[str, object] = {}
    for head in spec.heads:
        if head.kind is HeadKind.MDN:
            lead = (B, head.hypotheses) if head.is_multi_hypothesis else (B,)
            logits = rng.normal(size=(B, head.hypotheses, head.selection)) if head.is_multi_hypothesis else None
            heads[head.name] = outputs.MdnOutput(rng.normal(size=lead + head.shape),
                                                 rng.normal(scale=0.5, size=lead + head.shape), logits)
        else:
            heads[head.name] = rng.normal(size=(B,) + head.shape)
    return heads


@pytest.mark.parametrize("profile_id", profiles.profile_ids())
@pytest.mark.parametrize("model", profiles.MODEL_NAMES)
def test_pack_parse_roundtrip(profile_id: str, model: str) -> None:
    spec = profiles.get_profile(profile_id).model(model)
    rng = np.random.default_rng(0)
    heads = _random_heads(spec, rng)
    flat = outputs.pack_outputs(spec, heads)
    assert flat.shape == (B, spec.output_width) and flat.dtype == np.float32
    parsed = outputs.parse_outputs(spec, flat)
    for head in spec.heads:
        value = heads[head.name]
        got = parsed[head.name]
        assert got.shape == head.parsed_shape(B), head.name
        if head.kind is HeadKind.SIGMOID:
            np.testing.assert_allclose(got, 1 / (1 + np.exp(-value)), rtol=1e-5)
        elif head.kind is HeadKind.SOFTMAX:
            e = np.exp(value - value.max(-1, keepdims=True))
            np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=1e-5)
        elif head.kind is HeadKind.RAW:
            np.testing.assert_allclose(got, value, rtol=1e-6)
        elif not head.is_multi_hypothesis:
            np.testing.assert_allclose(got, value.mu, rtol=1e-6)
            np.testing.assert_allclose(parsed[head.name + "_stds"], np.exp(value.log_std), rtol=1e-5)
        else:
            _check_selection(head, value, parsed)


def _check_selection(head: profiles.HeadSpec, value: outputs.MdnOutput, parsed: dict) -> None:
    """The parsed mean is, per selection slot, the hypothesis with the largest logit."""
    for b in range(B):
        for j in range(head.selection):
            best = int(np.argmax(value.logits[b, :, j]))
            got = parsed[head.name][b, j] if head.selection > 1 else parsed[head.name][b]
            np.testing.assert_allclose(got, value.mu[b, best], rtol=1e-6)
            std = parsed[head.name + "_stds"][b, j] if head.selection > 1 else parsed[head.name + "_stds"][b]
            np.testing.assert_allclose(std, np.exp(value.log_std[b, best]), rtol=1e-5)
    weights = parsed[head.name + "_weights"]
    assert weights.shape == (B, head.hypotheses, head.selection)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    if head.selection == 1:  # modeld sorts hypotheses best first
        assert np.all(np.diff(weights[:, :, 0], axis=1) <= 1e-7)
        np.testing.assert_allclose(parsed[head.name + "_hypotheses"][:, 0], parsed[head.name], rtol=1e-6)


def test_mdn_layout_is_means_then_log_stds() -> None:
    spec = profiles.get_profile("op-0.10.1").vision
    heads = _random_heads(spec, np.random.default_rng(1))
    pose = heads["pose"]
    flat = outputs.pack_outputs(spec, heads)
    s = spec.output_slices()["pose"]
    np.testing.assert_allclose(flat[:, s][:, :6], pose.mu, rtol=1e-6)
    np.testing.assert_allclose(flat[:, s][:, 6:], pose.log_std, rtol=1e-6)


def test_hypothesis_layout_and_logits_position() -> None:
    spec = profiles.get_profile("op-0.10.0").vision
    heads = _random_heads(spec, np.random.default_rng(2))
    lead = heads["lead"]
    block = outputs.pack_outputs(spec, heads)[:, spec.output_slices()["lead"]].reshape(B, 2, 51)
    np.testing.assert_allclose(block[:, 1, :24], lead.mu[:, 1].reshape(B, 24), rtol=1e-6)
    np.testing.assert_allclose(block[:, 1, 24:48], lead.log_std[:, 1].reshape(B, 24), rtol=1e-6)
    np.testing.assert_allclose(block[:, :, 48:], lead.logits, rtol=1e-6)


def test_safe_exp_clips_log_std() -> None:
    spec = profiles.get_profile("op-0.10.1").vision
    heads = _random_heads(spec, np.random.default_rng(3))
    heads["pose"].log_std[:] = 50.0
    parsed = outputs.parse_outputs(spec, outputs.pack_outputs(spec, heads))
    np.testing.assert_allclose(parsed["pose_stds"], np.exp(11.0), rtol=1e-6)
    assert np.isfinite(parsed["pose_stds"]).all()


def test_width_rule_agrees_with_profiles() -> None:
    for profile in profiles.PROFILES.values():
        for spec in profile.models.values():
            for head in spec.heads:
                if head.kind is HeadKind.MDN and head.name in ("lead", "plan"):
                    single_values = head.n_values * max(head.selection, 1)
                    assert outputs.is_multi_hypothesis_by_width(head.width, single_values) == \
                        head.is_multi_hypothesis


def test_pack_rejects_wrong_shapes_and_missing_heads() -> None:
    spec = profiles.get_profile("op-0.10.1").policy
    heads = _random_heads(spec, np.random.default_rng(4))
    del heads["desire_state"]
    with pytest.raises(ContractError, match="desire_state"):
        outputs.pack_outputs(spec, heads)
    heads = _random_heads(spec, np.random.default_rng(4))
    heads["plan"].mu = heads["plan"].mu[:, :32]
    with pytest.raises(ContractError, match="plan"):
        outputs.pack_outputs(spec, heads)


def test_parse_rejects_wrong_width() -> None:
    spec = profiles.get_profile("op-0.10.1").policy
    with pytest.raises(ContractError, match="1000"):
        outputs.parse_outputs(spec, np.zeros((1, 999), np.float32))
