#!/usr/bin/python3
"""refzarr as an installed package (ctest install.ConsumerBuildsAndReadsRegions).

Installs the build into a scratch prefix (`cmake --install BUILD --prefix P`), configures the
separate project in this folder against P alone (find_package(refzarr CONFIG)), builds the docs'
example read_region with it and, a second time, with `pkg-config --cflags --libs refzarr`; indexes
the generated samples with the installed refzarr binary (its modules loaded from P); and compares
the shape and sum read_region prints for regions of several samples with what tifffile reads from
the same files, and for the datasets of the HDF5 sample with what h5py reads.

usage: install_test.py BUILD_DIR SOURCE_DIR SAMPLES_BIN HDF5_SAMPLES_BIN WORK_DIR
"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import tifffile

BUILD, SOURCE, SAMPLES_BIN, H5_SAMPLES_BIN, WORK = (os.path.abspath(p) for p in sys.argv[1:6])
HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = os.path.join(WORK, "prefix")


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return done


def find_one(root, name):
    for dirpath, _, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    sys.exit(f"FAILED: no {name} under {root}")


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run(["cmake", "--install", BUILD, "--prefix", PREFIX])
config = find_one(PREFIX, "refzarrConfig.cmake")
pc_dir = os.path.dirname(find_one(PREFIX, "refzarr.pc"))
print("installed:", os.path.relpath(config, PREFIX), os.path.relpath(pc_dir, PREFIX))

# The consumer sees the prefix and the system only: no package registry, no build tree.
consumer = os.path.join(WORK, "consumer")
configure = ["cmake", "-S", HERE, "-B", consumer, "-DCMAKE_BUILD_TYPE=Release",
             f"-DCMAKE_PREFIX_PATH={PREFIX}", "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
             f"-DREFZARR_EXAMPLES_DIR={os.path.join(SOURCE, 'docs', 'examples')}",
             f"-DREFZARR_INCLUDE_ROOT={os.path.join(PREFIX, 'include', 'refzarr')}"]
if shutil.which("ccache"):
    configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
run(configure)
run(["cmake", "--build", consumer, "-j2"])
read_region = os.path.join(consumer, "read_region")

# The same example through pkg-config.
env = dict(os.environ, PKG_CONFIG_PATH=pc_dir)
flags = run(["pkg-config", "--cflags", "--libs", "refzarr"], env=env).stdout.split()
pc_read_region = os.path.join(WORK, "read_region_pc")
compiler = (["ccache"] if shutil.which("ccache") else []) + ["c++"]
run(compiler + ["-std=c++20", "-O2", "-o", pc_read_region,
                os.path.join(SOURCE, "docs", "examples", "read_region.cc")] + flags)

samples = os.path.join(WORK, "samples")
run([SAMPLES_BIN, samples])
index = os.path.join(WORK, "s.refs.db")
installed_refzarr = os.path.join(PREFIX, "bin", "refzarr")
indexed = subprocess.run([installed_refzarr, "index", "-o", index, samples],
                         capture_output=True, text=True)
# Exit status 1: some samples are broken on purpose; anything else is a failure.
if indexed.returncode not in (0, 1) or not os.path.exists(index):
    sys.exit(f"FAILED: installed refzarr index: {indexed.returncode}\n{indexed.stderr}")


def tifffile_region(path, ranges, axes_order):
    """The region of the file's first series as tifffile reads it; `ranges` in (t, c, z, y, x)."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = series.axes
    if axes != axes_order:
        sys.exit(f"FAILED: {path}: tifffile says axes {axes}, the test expects {axes_order}")
    names = "tczyx"
    index = tuple(slice(*ranges[names.index(a.lower())]) for a in axes)
    return data[index]


def read_region_says(binary, idx, array, ranges):
    """read_region's shape and sum (as text) for `ranges` ((begin, end) per dimension; None: all)."""
    out = run([binary, idx, array] + [f"{b}:{e}" for b, e in ranges or []]).stdout.split("\n")
    return [int(v) for v in out[0].split()[1:]], out[1].split()[1]


def compare(what, shape, total, expected, ranges):
    """Fails unless read_region's shape and sum match the independent reader's `expected`."""
    if ranges is not None and shape != [e - b for b, e in ranges]:
        sys.exit(f"FAILED: {what}: read_region shape {shape}, asked for {ranges}")
    if int(np.prod(shape)) != expected.size:
        sys.exit(f"FAILED: {what}: read_region read {shape}, the reference {expected.shape}")
    if expected.dtype.kind == "f":
        want = float(np.sum(expected, dtype=np.float64))
        got = float(total)
        ok = (np.isnan(want) and np.isnan(got)) or abs(got - want) <= 1e-9 * max(1.0, abs(want))
    else:
        want = int(np.sum(expected.astype(object)))
        ok = int(total) == want
    if not ok:
        sys.exit(f"FAILED: {what} {ranges}: read_region sum {total}, the reference {want}")
    print(f"ok {what} {ranges or 'whole'}: shape {shape} sum {total}")


def check(binary, array, ranges, axes_order):
    path = os.path.join(samples, array.rsplit("/", 2)[0])  # "<file>/<series>/<level>"
    shape, total = read_region_says(binary, index, array, ranges)
    # read_region's shape has all five dimensions; tifffile's region has the file's own axes.
    expected = tifffile_region(path, ranges if ranges else [(None, None)] * 5, axes_order)
    compare(f"{os.path.basename(binary)} {array}", shape, total, expected, ranges)


cases = [
    # deflate tiles with edge tiles, a region across them
    ("bigtiff/u16_tiled_deflate_le.tif/0/0", [(0, 1), (0, 1), (0, 1), (17, 99), (5, 140)], "YX"),
    # big-endian ImageJ hyperstack, ranges in t, c and z
    ("imagej/hyperstack_u16_t4_z3_c2_be.tif/0/0",
     [(1, 3), (1, 2), (0, 2), (10, 40), (3, 64)], "TZCYX"),
    # OME planes stored out of order
    ("ome/shuffled_planes.ome.tif/0/0", [(0, 2), (0, 2), (1, 3), (0, 64), (20, 70)], "TZCYX"),
    # whole arrays: float64 and big-endian int64
    ("dtypes/f64_strips_none_le.tif/0/0", None, "YX"),
    ("dtypes/i64_strips_none_be.tif/0/0", None, "YX"),
]
for array, ranges, axes in cases:
    check(read_region, array, ranges, axes)
# A shared build's library is found by the CMake-built binary through its RPATH; the pkg-config
# one, linked with -L alone, as a user of any library in a non-system prefix finds it.
shared = [f for f in os.listdir(os.path.dirname(pc_dir)) if f.startswith("librefzarr.so")]
print("libraries:", "shared " + " ".join(sorted(shared)) if shared else "static")
if shared:
    os.environ["LD_LIBRARY_PATH"] = os.path.dirname(pc_dir)
check(pc_read_region, *cases[0])

# HDF5: every numeric dataset of the plain sample (chunked with gzip, shuffle, fletcher32, a fill
# value where chunks are missing, NaN fill, big-endian; contiguous, compact, external, 0-d), whole
# and a box of each, against h5py.
h5_samples = os.path.join(WORK, "hdf5")
run([H5_SAMPLES_BIN, h5_samples])
h5_index = os.path.join(WORK, "h5.refs.db")
run([installed_refzarr, "index", "-o", h5_index, h5_samples])
compared = 0
os.chdir(h5_samples)  # HDF5 1.10 finds external raw files relative to the working directory
with h5py.File("plain.h5", "r") as f:
    datasets = []
    f.visititems(lambda name, o: datasets.append(name) if isinstance(o, h5py.Dataset) else None)
    for name in sorted(datasets):
        d = f[name]
        if d.dtype.kind not in "uif":
            continue  # read_region sums numbers; the reader's other dtypes are in the gtests
        data = d[()]
        shape, total = read_region_says(read_region, h5_index, "plain.h5/" + name, None)
        compare(f"read_region plain.h5/{name}", shape, total, np.asarray(data), None)
        if d.ndim:
            box = [(n // 3, n - n // 4) for n in d.shape]
            shape, total = read_region_says(read_region, h5_index, "plain.h5/" + name, box)
            compare(f"read_region plain.h5/{name}", shape, total,
                    data[tuple(slice(b, e) for b, e in box)], box)
        compared += 1
if compared < 10:
    sys.exit(f"FAILED: only {compared} HDF5 datasets compared")

# A box outside the array: exit status 1, a message naming the array and the dimension.
bad = subprocess.run([read_region, index, cases[0][0], "0:1", "0:1", "0:1", "0:10", "0:100000"],
                     capture_output=True, text=True)
if bad.returncode != 1 or cases[0][0] not in bad.stderr or "dimension 4 (x)" not in bad.stderr:
    sys.exit(f"FAILED: out-of-range box: exit {bad.returncode}, stderr {bad.stderr!r}")
print("ok out-of-range box:", bad.stderr.strip())
shutil.rmtree(WORK, ignore_errors=True)
