"""Script form of ``sptrain export --models vision``: export one checkpoint's EMA vision model.

    python export/export_vision.py CKPT --onnx driving_vision.onnx --tinygrad driving_vision_tinygrad.pkl \\
        --metadata driving_vision_metadata.pkl [--device CPU] [--profile op-0.10.1]

Run from the repository root (absolute imports only: the file runs as ``__main__``).
"""

from __future__ import annotations

import sys

from sunnypilot_training.contract.profiles import VISION_MODEL
from sunnypilot_training.export.scripts import single_model_main

if __name__ == "__main__":
    sys.exit(single_model_main(VISION_MODEL, "export_vision.py"))
