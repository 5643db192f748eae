"""End to end for HDF5 through the compat view: every dataset of the HDF5 samples and of
../shared/realdata/hdf5 that refzarr indexes is read by zarr-python (numcodecs only, no plugins)
over `refzarr serve` and must equal h5py's read; chunks stored with filters numcodecs lacks (lzf,
lz4, bitshuffle, fletcher32, masked edge chunks...) arrive transcoded. LZF in particular is decoded
by refzarr's own liblzf filter and compared with h5py's independent LZF implementation. A dataset
with a filter refzarr has no decoder for may only be refused (5xx), never served different.
Usage: REFZARR_BIN=... REFZARR_HDF5_SAMPLES_BIN=... REFZARR_SHARED_DIR=... REFZARR_WORK=..."""
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402


def main():
    import fsspec
    import h5py
    import numpy as np
    import zarr
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    samples = os.path.join(work, "samples")
    subprocess.run([c.env("REFZARR_HDF5_SAMPLES_BIN"), samples], check=True,
                   stdout=subprocess.DEVNULL)
    real = os.path.join(c.env("REFZARR_SHARED_DIR"), "realdata", "hdf5")
    index = os.path.join(work, "h5.refs.db")
    done = subprocess.run([refzarr, "index", "--json", "-o", index, samples, real],
                          capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, 1):
        sys.exit(f"refzarr index crashed (exit {done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    roots = {"samples": samples, "hdf5": real}

    failures, equal, transcoded, refused, no_oracle, big, refused_chunks = [], 0, 0, 0, 0, 0, 0
    vlen_strings = 0
    with serve_e2e.Server(refzarr, index, 2, work) as server:
        mapper = fsspec.get_mapper(server.url(""))
        for f in report["files"]:
            if f["outcome"] != "indexed":
                continue
            top, rel = f["group"].split("/", 1)
            path = os.path.join(roots[top], rel)
            if os.environ.get("REFZARR_E2E_VERBOSE"):
                print("file", path, flush=True)
            with h5py.File(path, "r") as h5:
                datasets = []
                try:
                    h5.visititems(lambda name, obj: datasets.append(name)
                                  if isinstance(obj, h5py.Dataset) else None)
                except RuntimeError:
                    pass  # a corrupt file: h5py stops visiting; compare what it listed
                for name in datasets:
                    key = f"{f['group']}/{name}"
                    try:
                        ds = h5[name]
                        nbytes = int(ds.size or 0) * int(ds.dtype.itemsize)
                    except Exception:
                        nbytes, ds = 0, None  # a type h5py cannot express (128-bit float)
                    if ds is None:
                        no_oracle += 1
                        continue
                    if nbytes > (64 << 20):
                        big += 1  # e.g. tbigdims.h5: reading it whole proves nothing more
                        continue
                    try:
                        want = ds[()]
                    except Exception:
                        want = None  # h5py lacks the filter plugin: no oracle here
                    try:
                        arr = zarr.open_array(mapper, mode="r", path=urllib.parse.quote(key))
                    except Exception:
                        refused += 1  # refzarr refused the dataset (reported when indexing)
                        continue
                    if want is None:
                        no_oracle += 1
                        continue
                    if os.environ.get("REFZARR_E2E_VERBOSE"):
                        print("reading", key, arr.shape, arr.chunks, flush=True)
                    try:
                        got = arr[()]
                    except Exception as e:
                        failures.append(f"{key}: read failed: {type(e).__name__}: {e}")
                        continue
                    if arr.compressor is not None and arr.compressor.codec_id == "blosc":
                        transcoded += 1
                    want = np.asarray(want)
                    strings = h5py.check_string_dtype(ds.dtype)
                    if strings is not None and strings.length is None:
                        # Variable-length strings: h5py gives bytes, zarr's VLenUTF8 gives str.
                        want = np.vectorize(
                            lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b,
                            otypes=[object])(want)
                        got = np.asarray(got, dtype=object)
                        vlen_strings += 1
                    if want.dtype == np.bool_ and got.dtype == np.int8:
                        want = want.astype(np.int8)  # HDF5 bools are int8 enums: served as int8
                    if want.dtype.names and got.dtype.names:
                        # Compound types: refzarr spells padding as explicit void fields.
                        same = got.shape == want.shape and all(
                            np.array_equal(got[n], want[n]) for n in want.dtype.names)
                    elif got.shape != want.shape or got.dtype.newbyteorder("=") != \
                            want.dtype.newbyteorder("="):
                        failures.append(f"{key}: {got.shape} {got.dtype} but h5py "
                                        f"{want.shape} {want.dtype}")
                        continue
                    else:
                        same = (np.array_equal(got, want, equal_nan=True)
                                if got.dtype.kind in "fc" else np.array_equal(got, want))
                    if same:
                        equal += 1
                        continue
                    # zarr-python over fsspec reads a chunk the server refused (5xx) as fill
                    # value. A refusal is right when refzarr has no decoder (h5py has its own
                    # LZF); serving different bytes is not.
                    chunk = "/".join(["0"] * max(len(arr.shape), 1))
                    status, _, body = server.request("GET", f"{key}/{chunk}")
                    if status >= 500 and b"not available" in body:
                        refused_chunks += 1
                        print(f"  refused by refzarr (h5py decodes it): {key}: "
                              f"{body.decode(errors='replace')[:160]}")
                    else:
                        failures.append(f"{key}: values differ from h5py (chunk {chunk}: "
                                        f"HTTP {status})")
    print(f"hdf5 compat view: {equal} datasets equal h5py ({transcoded} through transcoded "
          f"chunks, {vlen_strings} of variable-length strings), {refused} refused, {refused_chunks} refused at read (no decoder), "
          f"{no_oracle} without an oracle, {big} over 64 MiB skipped")
    for msg in failures:
        print("  FAIL " + msg)
    if equal < 50:
        failures.append(f"only {equal} datasets compared")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
