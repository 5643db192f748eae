#!/usr/bin/python3
"""End to end: HDF5 files indexed by `refzarr index`, exported with `refzarr export` as kerchunk JSON,
read through fsspec + zarr-python, equal what h5py reads, for every dataset whose codecs numcodecs has.

Environment: REFZARR_BIN (the refzarr binary), REFZARR_HDF5_SAMPLES_BIN (refzarr-hdf5-samples),
REFZARR_SHARED_DIR (optional: also checks every file of realdata/hdf5). Needs Debian's python3-h5py,
python3-zarr, python3-fsspec, python3-numcodecs. Exit 0 on success, 1 with a list of differences.
"""
import collections.abc
import os
import pathlib
import subprocess
import sys
import tempfile

import fsspec
import h5py
import numcodecs
import numpy as np
import zarr

MAX_BYTES = 64 << 20  # larger datasets (sparse 4 GB test files) are not read whole


class ReferenceStore(collections.abc.Mapping):
    """Keys of a reference filesystem; an absent key is a missing chunk (the fill value).

    fsspec 2022.11's FSMap.getitems raises KeyError for the whole batch when one chunk of it has no
    reference, so zarr would fail on every sparse array; this store answers key by key.
    """

    def __init__(self, fs):
        self.fs = fs

    def __getitem__(self, key):
        try:
            return self.fs.cat_file(key)
        except (KeyError, FileNotFoundError, ValueError) as e:
            raise KeyError(key) from e

    def __iter__(self):
        return iter(self.fs.references)

    def __len__(self):
        return len(self.fs.references)


def codecs_available(z):
    codecs = list(z.filters or []) + ([z.compressor] if z.compressor is not None else [])
    for c in codecs:
        if c.codec_id not in numcodecs.registry.codec_registry:
            return False
    return True


def equal(expected, actual):
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.dtype.kind == "O":
        # Variable-length strings: h5py gives bytes, zarr's VLenUTF8 gives str.
        expected = np.vectorize(
            lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b,
            otypes=[object])(expected)
        actual = actual.astype(object)
    if expected.shape != actual.shape:
        return False, f"shape {expected.shape} vs {actual.shape}"
    if expected.dtype.names or actual.dtype.names:
        # Structured: compare the fields h5py reports (the export adds padding fields).
        for name in expected.dtype.names or ():
            if not np.array_equal(expected[name], actual[name]):
                return False, f"field {name} differs"
        return True, ""
    if expected.dtype.kind == "b":
        expected = expected.astype(actual.dtype)
    if expected.dtype.kind in "fc":
        ok = np.array_equal(expected, actual, equal_nan=True)
    else:
        ok = np.array_equal(expected, actual)
    return ok, "" if ok else "values differ"


def check_folder(refzarr, folder, work, tag):
    idx = work / f"{tag}.idx"
    out = work / f"{tag}.json"
    r = subprocess.run([refzarr, "index", "-o", str(idx), str(folder)], capture_output=True, text=True)
    if not idx.exists():
        return 0, [f"{folder}: index failed: {r.stderr}"]
    e = subprocess.run([refzarr, "export", str(idx), "-o", str(out)], capture_output=True, text=True)
    if e.returncode != 0:
        return 0, [f"{folder}: export failed: {e.stderr}"]
    # Arrays the export says need other codecs or hold chunks encoded unlike the rest.
    noted = set()
    for line in e.stderr.splitlines():
        if line.startswith("note: "):
            noted.add(line[len("note: "):].split(": ")[0])
    fs = fsspec.filesystem("reference", fo=str(out))
    root = zarr.open_group(zarr.storage.KVStore(ReferenceStore(fs)), mode="r")
    compared, problems, counts = 0, [], {"noted": 0, "refused": 0, "codec": 0, "big": 0, "h5py": 0}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not h5py.is_hdf5(path):
            continue
        rel = path.relative_to(folder).as_posix()
        try:
            f = h5py.File(path, "r")
        except Exception:
            continue
        names = []
        try:
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        except Exception:
            pass  # a corrupt object stops the visit; what was found is checked
        for name in names:
            key = f"{rel}/{name}"
            if key in noted:
                counts["noted"] += 1
                continue
            if key not in root:
                counts["refused"] += 1
                continue
            z = root[key]
            if not codecs_available(z):
                counts["codec"] += 1
                continue
            ds = f[name]
            if int(ds.size) * int(ds.dtype.itemsize) > MAX_BYTES:
                counts["big"] += 1
                continue
            try:
                expected = ds[()]
            except Exception:
                counts["h5py"] += 1  # h5py cannot read it either (missing filter plugin)
                continue
            try:
                actual = z[...]
            except Exception as ex:  # noqa: BLE001
                problems.append(f"{key}: zarr read failed: {ex!r}")
                continue
            ok, why = equal(expected, actual)
            if ok:
                compared += 1
            else:
                problems.append(f"{key}: {why}")
        f.close()
    print(f"{folder}: {compared} datasets equal; skipped {counts}", flush=True)
    return compared, problems


def main():
    refzarr = os.environ["REFZARR_BIN"]
    samples_bin = os.environ["REFZARR_HDF5_SAMPLES_BIN"]
    with tempfile.TemporaryDirectory(prefix="refzarr-hdf5-e2e-") as tmp:
        return run(refzarr, samples_bin, pathlib.Path(tmp))


def run(refzarr, samples_bin, work):
    samples = work / "samples"
    subprocess.run([samples_bin, str(samples)], check=True, capture_output=True)
    folders = [(samples, "samples", 20)]
    shared = os.environ.get("REFZARR_SHARED_DIR")
    if shared and (pathlib.Path(shared) / "realdata" / "hdf5").is_dir():
        folders.append((pathlib.Path(shared) / "realdata" / "hdf5", "realdata", 100))
    failures = []
    for folder, tag, minimum in folders:
        compared, problems = check_folder(refzarr, folder, work, tag)
        failures += problems
        if compared < minimum:
            failures.append(f"{folder}: only {compared} datasets compared (expected at least {minimum})")
    for p in failures:
        print("FAIL", p)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
