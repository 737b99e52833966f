"""Paths and small helpers shared by the tests (importable as ``spt_testutil``)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
REFERENCE_METADATA = FIXTURES / "openpilot-metadata"
# (file in REFERENCE_METADATA, contract profile, model)
REFERENCE_FILES = [
    ("v0.10.4_driving_vision_metadata.pkl", "op-0.10.1", "driving_vision"),
    ("v0.10.4_driving_policy_metadata.pkl", "op-0.10.1", "driving_policy"),
    ("v0.10.0_driving_vision_metadata.pkl", "op-0.10.0", "driving_vision"),
    ("v0.10.0_driving_policy_metadata.pkl", "op-0.10.0", "driving_policy"),
]
