"""Simulators -> episodes -> Zarr shards. Never imports training."""
