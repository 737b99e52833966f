"""Judging models as modeld would run them: metrics against baselines and the open-loop evaluation of exported files.

Imports the contract and the episode format only (numpy, onnxruntime; never torch), so training, the closed-loop
harness and the CLI can all use it.
"""
