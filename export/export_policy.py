"""Script form of ``sptrain export --models policy``: export one checkpoint's EMA policy model.

    python export/export_policy.py CKPT --onnx driving_policy.onnx --tinygrad driving_policy_tinygrad.pkl \\
        --metadata driving_policy_metadata.pkl [--device CPU] [--profile op-0.10.1]

Run from the repository root (absolute imports only: the file runs as ``__main__``).
"""

from __future__ import annotations

import sys

from sunnypilot_training.contract.profiles import POLICY_MODEL
from sunnypilot_training.export.scripts import single_model_main

if __name__ == "__main__":
    sys.exit(single_model_main(POLICY_MODEL, "export_policy.py"))
