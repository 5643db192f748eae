"""End to end: zarrita.js (a Zarr v3 client that knows only the v3 core codecs and zstd, like
neuroglancer) reads every array of the TIFF and HDF5 samples from `refzarr serve --zarr-format 3`
(codecs compat), and each must equal tifffile's (libtiff's) or h5py's read. This covers what compat
v3 re-frames (zlib as gzip) and transcodes (shuffle, lzma, interleaved RGB served planar). Every
array's zarr.json must also pass the shape checker with codecs every v3 client has.

A data type zarrita lacks (raw bytes, strings) is a skip; an unknown codec is a failure.
Skipped (exit 77) when zarrita is not installed: REFZARR_NODE_MODULES names the folder holding
node_modules/zarrita (`npm install zarrita@0.5.4` there).
Usage: REFZARR_BIN=... REFZARR_SAMPLES_BIN=... [REFZARR_HDF5_SAMPLES_BIN=...]
       REFZARR_SHAPE_CHECK=... REFZARR_WORK=... zarrita_v3_e2e.py"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402

SKIP = 77
V3_DTYPES = {"bool": "?", "int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8",
             "uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8",
             "float16": "f2", "float32": "f4", "float64": "f8", "complex64": "c8",
             "complex128": "c16"}


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href and not href.startswith(("/", "?", "#", "..")):
                self.links.append(href[2:] if href.startswith("./") else href)


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def arrays(server, prefix=""):
    """(key, zarr.json) of every array below `prefix`, walking the server's HTML listings."""
    meta = json.loads(fetch(server.url(urllib.parse.quote(prefix + "zarr.json"))))
    if meta.get("node_type") == "array":
        yield prefix.rstrip("/"), meta
        return
    parser = Links()
    parser.feed(fetch(server.url(urllib.parse.quote(prefix))).decode())
    for href in parser.links:
        name = urllib.parse.unquote(href)
        if name.endswith("/"):
            yield from arrays(server, prefix + name)


def h5py_oracle(work, key):
    """h5py's read of the dataset behind `key` ("hdf5/<file>/<dataset path>"), or None."""
    import h5py
    parts = key.split("/")
    for i in range(2, len(parts)):
        path = os.path.join(work, *parts[:i])
        if os.path.isfile(path):
            cwd = os.getcwd()
            try:
                os.chdir(os.path.dirname(path))  # external storage files are found from here
                with h5py.File(path, "r") as f:
                    name = "/".join(parts[i:])
                    if name in f and isinstance(f[name], h5py.Dataset):
                        ds = f[name]
                        is_str = h5py.check_string_dtype(ds.dtype) is not None
                        return ds.asstr()[()] if is_str else ds[()]
            except Exception:
                return None
            finally:
                os.chdir(cwd)
    return None


def main():
    import numpy as np
    node_modules = os.environ.get("REFZARR_NODE_MODULES", "")
    if not os.path.isfile(os.path.join(node_modules, "zarrita", "package.json")) or \
            shutil.which("node") is None:
        print(f"skip: no zarrita.js in REFZARR_NODE_MODULES={node_modules!r} or no node")
        sys.exit(SKIP)
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    inputs = [os.path.join(work, "tiff")]
    subprocess.run([c.env("REFZARR_SAMPLES_BIN"), inputs[0]], check=True, stdout=subprocess.DEVNULL)
    if os.environ.get("REFZARR_HDF5_SAMPLES_BIN"):
        inputs.append(os.path.join(work, "hdf5"))
        subprocess.run([os.environ["REFZARR_HDF5_SAMPLES_BIN"], inputs[1]], check=True,
                       stdout=subprocess.DEVNULL)
    index = os.path.join(work, "samples.refs.db")
    subprocess.run([refzarr, "index", "-o", index] + inputs, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)

    tally, codecs_seen, lacking = c.Tally(), {}, []
    with serve_e2e.Server(refzarr, index, 3, work) as server:
        found = list(arrays(server))
        docs = os.path.join(work, "docs")
        os.makedirs(docs)
        for i, (key, meta) in enumerate(found):
            with open(os.path.join(docs, f"{i}.zarr.json"), "w") as f:
                json.dump(meta, f)
            names = "+".join(codec["name"] for codec in meta["codecs"])
            codecs_seen[names] = codecs_seen.get(names, 0) + 1
        shapes = subprocess.run([c.env("REFZARR_SHAPE_CHECK"), "zarr.json:compat"] +
                                [os.path.join(docs, f"{i}.zarr.json") for i in range(len(found))],
                                capture_output=True, text=True)
        for line in shapes.stdout.splitlines():
            n = int(os.path.basename(line.split(":", 1)[0]).split(".")[0])
            tally.add(f"{found[n][0]}/zarr.json: {line.split(': ', 1)[1]}")
        keys_file = os.path.join(work, "keys.json")
        with open(keys_file, "w") as f:
            json.dump([key for key, _ in found], f)
        out = os.path.join(work, "out")
        os.makedirs(out)
        done = subprocess.run(["node", os.path.join(here, "zarrita_read.mjs"), node_modules,
                               server.url(""), keys_file, out],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            sys.exit("zarrita_read.mjs failed: " + done.stderr[-3000:])
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    print("zarrita", lines[0].get("zarrita"), "read", len(found), "arrays; codecs served:",
          ", ".join(f"{k} x{v}" for k, v in sorted(codecs_seen.items())))
    for r in lines[1:]:
        key, meta = found[r["index"]]
        if "error" in r:
            if re.search(r"unsupported data_?type", r["error"], re.IGNORECASE):
                lacking.append(f"{key}: {meta['data_type']}")
                continue
            tally.add(f"{key}: zarrita failed: {r['error']}")
            continue
        if meta["data_type"] == "string":
            with open(os.path.join(out, f"{r['index']}.json")) as f:
                got = np.array(json.load(f), dtype=object).reshape(r["shape"])
        else:
            dtype = np.dtype(V3_DTYPES[meta["data_type"]]).newbyteorder("<")
            with open(os.path.join(out, f"{r['index']}.bin"), "rb") as f:
                got = np.frombuffer(f.read(), dtype=dtype).reshape(r["shape"])
        if key.startswith("tiff/"):
            tally.add(c.compare_array(got, work, key))
            continue
        want = h5py_oracle(work, key)
        if want is None:
            tally.add(f"skip: {key}: no h5py dataset at this path")
            continue
        want = np.asarray(want)
        if got.dtype.kind != "O":
            want = want.astype(got.dtype.newbyteorder("="))
        if want.shape != got.shape or not np.array_equal(want, got,
                                                         equal_nan=got.dtype.kind in "fc"):
            tally.add(f"{key}: differs from h5py (shape {got.shape} vs {want.shape})")
        else:
            tally.add(None)
    if lacking:
        print(f"{len(lacking)} arrays of data types zarrita lacks:", "; ".join(lacking))
    failures = tally.finish("zarrita v3 compat", 40)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
