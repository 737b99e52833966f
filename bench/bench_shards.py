"""Chunking and compression of shard images, measured for what training does: random reads of frame pairs.

Usage: python bench/bench_shards.py SHARD [--pairs 400]

Copies the shard's ``img``/``big_img`` into temporary arrays with each candidate layout and reports, per layout,
bytes per frame and random frame-pair reads per second (frames t-4 and t of both images, as one vision sample).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from sunnypilot_training.episodes.shards import IMAGE_KEYS, Shard, open_shard

LAYOUTS = {
    "1 frame, no compression": (1, None),
    "1 frame, zstd 1": (1, ZstdCodec(level=1)),
    "1 frame, zstd 3": (1, ZstdCodec(level=3)),
    "1 frame, blosc lz4 bitshuffle": (1, BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")),
    "1 frame, blosc lz4 noshuffle": (1, BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle")),
    "1 frame, blosc zstd1 bitshuffle": (1, BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")),
    "4 frames, zstd 1": (4, ZstdCodec(level=1)),
    "8 frames, zstd 1": (8, ZstdCodec(level=1)),
}


def measure(src: Shard, pairs: int, workdir: Path) -> list[tuple[str, float, float, float]]:
    data = {k: np.asarray(src.arrays[k][:]) for k in IMAGE_KEYS}
    T = len(data["img"])
    rng = np.random.default_rng(0)
    ts = rng.integers(4, T, size=pairs)
    rows = []
    for name, (chunk, codec) in LAYOUTS.items():
        path = workdir / name.replace(" ", "_").replace(",", "")
        group = zarr.open_group(str(path), mode="w")
        arrays = {}
        t0 = time.perf_counter()
        for k, arr in data.items():
            arrays[k] = group.create_array(k, shape=arr.shape, chunks=(chunk,) + arr.shape[1:], dtype="uint8",
                                           compressors=codec if codec is not None else None)
            arrays[k][:] = arr
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        reopened = zarr.open_group(str(path), mode="r")
        t0 = time.perf_counter()
        for t in ts:
            for k in IMAGE_KEYS:
                a = reopened[k]
                np.asarray(a[t - 4]), np.asarray(a[t])
        read_s = time.perf_counter() - t0
        rows.append((name, size / (2 * T), pairs / read_s, 2 * T / write_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("shard")
    parser.add_argument("--pairs", type=int, default=400)
    args = parser.parse_args()
    src = open_shard(args.shard)
    workdir = Path(tempfile.mkdtemp())
    try:
        rows = measure(src, args.pairs, workdir)
    finally:
        shutil.rmtree(workdir)
    print("| layout | KB per frame | samples/s (4 frame reads) | frames written/s |\n|---|---|---|---|")
    for name, bpf, sps, wps in rows:
        print(f"| {name} | {bpf / 1024:.1f} | {sps:.0f} | {wps:.0f} |")


if __name__ == "__main__":
    main()
