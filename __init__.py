"""sunnypilot-training: train driving models for sunnypilot / openpilot ``selfdrive/modeld``.

The repository root is the import package ``sunnypilot_training``. Its layers:

* ``contract``    - the modeld interface as data and numpy code (imports nothing of ours)
* ``collector``   - simulators -> episodes -> Zarr shards (never imports training)
* ``training``    - datasets, models, trainer, Hydra configs
* ``export``      - torch -> ONNX -> tinygrad, metadata
* ``integration`` - install into a sunnypilot checkout (never imports torch)
* ``cli``         - the ``sptrain`` command
"""

__version__ = "0.1.0"
