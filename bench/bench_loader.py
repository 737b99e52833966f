"""Dataset throughput against raw zarr reads of the same chunks.

Usage: python bench/bench_loader.py SHARD_DIR [--samples 400] [--workers 2]

raw:     for each vision sample, read frames t-4 and t of img and big_img with plain zarr (orthogonal selection)
dataset: VisionDataset[k] (the same reads plus labels and tensors), in one process and with a DataLoader
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import zarr

from sunnypilot_training.training.data import ShardSet, VisionDataset, resolve_shards


def raw_reads(ds: VisionDataset, picks: np.ndarray) -> float:
    groups = {}
    start = time.perf_counter()
    for k in picks:
        i, t = (int(v) for v in ds.index[k])
        if i not in groups:
            groups[i] = zarr.open_group(str(ds.shards.paths[i]), mode="r")
        for key in ("img", "big_img"):
            np.asarray(groups[i][key].oindex[[t - 4, t]])
    return len(picks) / (time.perf_counter() - start)


def dataset_reads(ds: VisionDataset, picks: np.ndarray) -> float:
    start = time.perf_counter()
    for k in picks:
        ds[int(k)]
    return len(picks) / (time.perf_counter() - start)


def loader_reads(ds: VisionDataset, picks: np.ndarray, workers: int, batch: int = 16) -> float:
    subset = torch.utils.data.Subset(ds, picks.tolist())
    loader = torch.utils.data.DataLoader(subset, batch_size=batch, num_workers=workers, shuffle=False)
    start = time.perf_counter()
    n = sum(len(b["frame"]) for b in loader)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("shards")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ds = VisionDataset(ShardSet(resolve_shards(args.shards)))
    picks = np.random.default_rng(0).choice(len(ds), size=min(args.samples, len(ds)), replace=False)
    raw = raw_reads(ds, picks)
    single = dataset_reads(ds, picks)
    multi = loader_reads(ds, picks, args.workers)
    print("| reader | vision samples/s | vs raw zarr |\n|---|---|---|")
    print(f"| raw zarr (4 frame reads) | {raw:.0f} | 1.00 |")
    print(f"| VisionDataset, one process | {single:.0f} | {single / raw:.2f} |")
    print(f"| DataLoader, {args.workers} workers, batch 16 | {multi:.0f} | {multi / raw:.2f} |")


if __name__ == "__main__":
    main()
