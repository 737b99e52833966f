"""Datasets, models, the trainer and its Hydra configs."""
