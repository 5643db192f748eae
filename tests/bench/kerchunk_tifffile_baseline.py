#!/usr/bin/python3
"""Baseline for the indexing benchmark: tifffile's kerchunk-style export of the benchmark BigTIFF.

  /usr/bin/python3 kerchunk_tifffile_baseline.py BENCH.tif [--repeat 3]

Times `TiffFile(path).series[0].aszarr()` + `ZarrTiffStore.write_fsspec(...)` (the reference JSON
tifffile writes for fsspec's ReferenceFileSystem) and prints CPU seconds (process time) and wall
seconds, best of --repeat runs, plus the number of chunk references written.

  /usr/bin/python3 kerchunk_tifffile_baseline.py --self-test SMALL.tif

Writes a small file with $REFZARR_MAKE_BENCH_TIFF (4 pages of 520x520, 256x256 tiles: edge tiles
included), checks it with tifffile (BigTIFF, shape, dtype, deflate, tile count, pixels of one page
decode and are not constant) and libtiff (tiffinfo -D), then runs the baseline on it.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import time

import numpy
import tifffile


def baseline(path, repeat):
    best_cpu, best_wall, refs = None, None, 0
    for _ in range(repeat):
        out = io.StringIO()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with tifffile.TiffFile(path) as tif:
            with tif.series[0].aszarr() as store:
                store.write_fsspec(out, url=os.path.dirname(os.path.abspath(path)) or ".")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        best_wall = wall if best_wall is None else min(best_wall, wall)
        refs = len([k for k in json.loads(out.getvalue()) if not k.split("/")[-1].startswith(".z")])
    print(f"tifffile {tifffile.__version__} aszarr+write_fsspec {path}: cpu_s={best_cpu:.3f} "
          f"wall_s={best_wall:.3f} chunk_refs={refs} (best of {repeat})")
    return refs


def self_test(path):
    binary = os.environ["REFZARR_MAKE_BENCH_TIFF"]
    pages, size, tile = 4, 520, 256
    subprocess.run([binary, path, "--pages", str(pages), "--size", str(size), "--tile", str(tile)], check=True)
    errors = []
    with tifffile.TiffFile(path) as tif:
        s = tif.series[0]
        if not tif.is_bigtiff:
            errors.append("not a BigTIFF")
        if s.shape != (pages, size, size) or s.dtype != numpy.uint16:
            errors.append(f"series {s.shape} {s.dtype}, expected {(pages, size, size)} uint16")
        page = tif.pages[0]
        across = -(-size // tile)
        if page.compression != 8 or not page.is_tiled or len(page.dataoffsets) != across * across:
            errors.append(f"page 0: compression {page.compression}, {len(page.dataoffsets)} tiles")
        a = tif.pages[pages - 1].asarray()
        if a.std() < 1:
            errors.append("pixels are constant")
        if len(set(page.databytecounts)) < 2:
            errors.append("every tile has the same byte count: content is not varied")
    r = subprocess.run(["tiffinfo", "-D", path], capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.count("TIFF Directory at offset") != pages or r.stderr.strip():
        errors.append(f"tiffinfo -D: rc {r.returncode}: {r.stderr.strip()[:200]}")
    refs = baseline(path, 1)
    if refs != pages * across * across:
        errors.append(f"write_fsspec wrote {refs} chunk references, expected {pages * across * across}")
    for e in errors:
        print("FAIL", path, e)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args.path)
    baseline(args.path, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
