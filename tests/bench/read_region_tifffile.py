#!/usr/bin/python3
"""Baseline of the read-region benchmark (read_region_bench.sh): tifffile reading a region.

  /usr/bin/python3 read_region_tifffile.py FILE.tif Y0 X0 SIZE [--repeat 5]

Reads [Y0:Y0+SIZE, X0:X0+SIZE] of the first page, best wall time of --repeat runs, two ways:
- `region`: through tifffile's own Zarr store (series[0].aszarr(), zarr-python 2 slicing), which
  reads and decodes only the tiles the region touches, one at a time (one core);
- `page`: TiffPage.asarray(maxworkers=N) for N = 1 and 2, the whole page decoded on N threads
  (tifffile's fastest path; more pixels than the region), then cropped.
Prints, per way, the best wall seconds, the region's MB per second, the least CPU seconds (all
threads) and the sum of its values.
"""
import argparse
import time

import numpy as np
import tifffile
import zarr

ap = argparse.ArgumentParser()
ap.add_argument("file")
ap.add_argument("y0", type=int)
ap.add_argument("x0", type=int)
ap.add_argument("size", type=int)
ap.add_argument("--repeat", type=int, default=5)
a = ap.parse_args()
ys, xs = slice(a.y0, a.y0 + a.size), slice(a.x0, a.x0 + a.size)


def best(read):
    times, cpus, out = [], [], None
    for _ in range(a.repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = read()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return (min(times), min(cpus)), out


def report(name, secs, region):
    mb = region.size * region.itemsize / 1e6
    print(f"tifffile {name} best_s={secs[0]:.4f} MB_per_s={mb / secs[0]:.1f} "
          f"cpu_s={secs[1]:.4f} sum={int(region.sum(dtype=np.uint64))}")


with tifffile.TiffFile(a.file) as tif:
    with tif.series[0].aszarr() as store:
        z = zarr.open(store, mode="r")
        secs, region = best(lambda: z[ys, xs])
        report("region", secs, region)
    page = tif.pages[0]
    for workers in (1, 2):
        secs, region = best(lambda: page.asarray(maxworkers=workers)[ys, xs])
        report(f"page maxworkers={workers}", secs, region)
