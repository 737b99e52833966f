"""The CARLA collector backend: same scenarios, labels and shards as the built-in simulator."""
