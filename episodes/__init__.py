"""The episode format: the Zarr shard schema, its atomic writer and validating reader, and frame pairs.

Below the collector (which writes episodes) and training / evaluation (which read them); imports only the contract,
the base modules and its storage libraries.
"""
