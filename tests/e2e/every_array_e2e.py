#!/usr/bin/python3
"""Every array a view lists reads end to end, with the right pixels, in every client.

Indexes the TIFF samples (refzarr-samples), the HDF5 samples (refzarr-hdf5-samples) and every file
of ../shared/realdata into one index, then for each view `refzarr serve` offers:

  --clients http   (test e2e.every_array) all four views, Zarr v2 and v3 x compat and passthrough:
      walks the tree from the root listing; every metadata key and every chunk key the listing
      shows answers 200 with exactly the size the listing states; the chunks listed are the chunks
      `refzarr refs` has; in passthrough every chunk is the source file's bytes at the range
      `refzarr refs` gives. In compat v2, zarr-python 2 reads every array over fsspec's HTTP file
      system in a configuration that raises on a failed chunk (proved first: a chunk answering
      500 through a fault-injecting proxy must raise) and each array is compared with its oracle
      (tifffile, libtiff's tiffcp, GDAL for TIFF; h5py for HDF5).
  --clients zarrita   (test e2e.every_array_zarrita) the v2 and v3 compat views: zarrita.js 0.5
      and 0.7 (npm aliases; `npm ci` from tests/e2e/js/package-lock.json into the build tree) read
      every array with `get`; the SHA-256 of its little-endian C-order bytes must equal the
      oracle's. A 500 through the proxy must fail the read too.

An array no oracle can read is skipped with the reason; the test fails when fewer than a minimum
compare. Every failure names the view, the array and the error; the end of the output is a table of
them grouped by cause. Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_HDF5_SAMPLES_BIN,
REFZARR_SHARED_DIR, REFZARR_WORK; for zarrita also REFZARR_JS_SOURCE (tests/e2e/js) and
REFZARR_JS_WORK (where npm installs). REFZARR_E2E_VERBOSE=1 prints progress.
"""
import argparse
import concurrent.futures
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
sys.path.insert(0, here)
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402
from realdata_tiff_e2e import KNOWN_DIFFERENCES  # noqa: E402

import numpy as np  # noqa: E402

VIEWS = [(2, "compat", "none"), (2, "passthrough", "none"), (3, "compat", "none"),
         (3, "passthrough", "none")]
# zarrita also reads the v3 compat view with computed shards (sharding_indexed, docs/sharding.md).
SHARDED_VIEWS = [(3, "compat", "auto")]
ZARRITA = ["zarrita-0.5", "zarrita-0.7"]  # the npm aliases of package.json
MIN_COMPARED = 150        # arrays equal to an oracle, per client and view
MAX_READ_BYTES = 1 << 30  # an array larger than this is fetched chunk by chunk only
VERBOSE = bool(os.environ.get("REFZARR_E2E_VERBOSE"))

# Failure causes, first match wins: (pattern over the error text, cause and component).
CAUSES = [
    (r"injected 500 did not", "harness: a chunk answering 500 did not make the client fail"),
    (r"HTTP 5\d\d.*hdf5 chunk.*(?:not available|filter)",
     "HDF5 scanner: a dataset whose filter the HDF5 library cannot apply (plugin missing, or it "
     "refuses the data) is listed; every chunk answers 500 (refuse at index time)"),
    (r"HTTP 5\d\d.*old-style JPEG",
     "TIFF scanner: an old-style JPEG (compression 6) image is listed; the TIFF decoder refuses "
     "every strip, so every chunk answers 500 (refuse at index time)"),
    (r"HTTP 5\d\d.*(?:past the end|beyond the end|truncated|short read)",
     "scanner: a chunk past the end of the source file is listed (refuse at index time)"),
    (r"HTTP 5\d\d.*(?:decode|libtiff|codec|filter)",
     "scanner/decoder: a listed chunk fails to decode at read time"),
    (r"HTTP 5\d\d", "serve/view: a listed key answers 5xx"),
    (r"(?:status|ClientResponseError:) 5\d\d",
     "client read fails on a chunk answering 500 (the server's reason: the HTTP rows of "
     "e2e.every_array for the same arrays)"),
    (r"HTTP 404", "serve/view: a listed key answers 404"),
    (r"no answer within", "serve/view: the listing of an array with a huge chunk grid (no chunk "
                          "stored) never ends and grows in memory without bound"),
    (r"listed in .* not in", "views list different arrays (v2: the array's listing hung, above)"),
    (r"not the source bytes", "view: a passthrough chunk differs from the source range"),
    (r"size .* listing says", "serve/view: a body differs from the size the listing states"),
    (r"chunks? the index (?:has|lacks)", "view: the listing and the index disagree on chunks"),
    (r"Unknown codec: numcodecs\.",
     "v3 codecs: the v3 compat metadata names numcodecs.* codecs (numcodecs.zlib, "
     "numcodecs.shuffle), which are no Zarr v3 codecs; zarrita 0.5 has none of them"),
    (r"Unknown codec: shuffle",
     "compat policy (v2): the numcodecs shuffle filter passes through; zarrita 0.5 has no shuffle "
     "(transcode such arrays, or accept zarrita >= 0.6 only)"),
    (r"Unknown codec|UnknownCodecError|codec not available",
     "metadata names a codec the client lacks (compat metadata)"),
    (r"pixels differ|values differ", "scanner/decoder: values differ from the oracle"),
    (r"shape .* but|dtype .* but", "scanner: shape or dtype differs from the oracle"),
]


def log(*args):
    if VERBOSE:
        print(*args, flush=True)


# --- the index ---------------------------------------------------------------------------------

def build_index(refzarr, work, shared):
    """Writes both sample sets and indexes them with the realdata (file groups start with
    tiff-samples/, hdf5-samples/, realdata/). Returns (index path, {file group: source path})."""
    shutil.rmtree(work, ignore_errors=True)
    tree = os.path.join(work, "tree")
    os.makedirs(tree)
    subprocess.run([c.env("REFZARR_SAMPLES_BIN"), os.path.join(tree, "tiff-samples"), "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([c.env("REFZARR_HDF5_SAMPLES_BIN"), os.path.join(tree, "hdf5-samples")],
                   check=True, stdout=subprocess.DEVNULL)
    index = os.path.join(work, "all.refs.db")
    start = time.time()
    try:
        # Tree paths are relative to the deepest folder holding every input: the realdata joins
        # the samples' folder through a link, so file groups start with the three names.
        os.symlink(os.path.join(shared, "realdata"), os.path.join(tree, "realdata"))
        roots = [os.path.join(tree, "tiff-samples"), os.path.join(tree, "hdf5-samples"),
                 os.path.join(tree, "realdata")]
        done = subprocess.run([refzarr, "index", "--json", "-o", index] + roots,
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        sys.exit("refzarr index hung (over 300 s)")
    if done.returncode not in (0, 1) or not os.path.exists(index):
        sys.exit(f"refzarr index crashed (exit {done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    files = {f["group"]: f["path"] for f in report["files"]
             if f["outcome"] in ("indexed", "unchanged")}
    print(f"indexed {len(files)} files in {time.time() - start:.1f} s "
          f"({report.get('failed')} refused, {report.get('skipped')} skipped)")
    if len(files) < 50:
        sys.exit(f"only {len(files)} files indexed")
    return index, files


def read_refs(refzarr, index, arrays):
    """{array: {chunk coords: (source path or "inline", offset, length)}} from `refzarr refs`."""
    def one(array):
        done = subprocess.run([refzarr, "refs", index, array], capture_output=True, text=True)
        if done.returncode != 0:
            return array, done.stderr.strip() or f"exit {done.returncode}"
        refs = {}
        for line in done.stdout.splitlines():
            key, uri, offset, length = line.split("\t")[:4]
            coords = tuple(int(n) for n in key[len(array) + 1:].split("/"))
            refs[coords] = (uri, int(offset), int(length))
        return array, refs
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, sorted(arrays)))


# --- walking a view ----------------------------------------------------------------------------

LISTING_SECONDS = 2   # a listing answers at once; a longer one never ends and grows fast
VALUE_SECONDS = 60    # a chunk may need transcoding on a loaded machine


class ViewServer(serve_e2e.Server):
    """serve_e2e's server with a codec policy; logs named by view."""

    def __init__(self, refzarr, index, zarr_format, codecs, work, shards="none"):
        super().__init__(refzarr, index, zarr_format, work)
        name = f"v{zarr_format}-{codecs}" + ("" if shards == "none" else f"-shards-{shards}")
        self.log_path = os.path.join(work, f"serve-{name}.err")
        self.access_path = os.path.join(work, f"access-{name}.log")
        self.args = [refzarr, "serve", index, "--port", "0", "--zarr-format", str(zarr_format),
                     "--codecs", codecs, "--shards", shards, "--access-log", self.access_path]


class ServedView:
    """One view served by `refzarr serve`, and GETs against it. A request the server does not
    answer in time is a failure; the server is then killed (a listing that never ends grows
    without bound, tens of MB per second) and restarted for the rest of the walk."""

    def __init__(self, refzarr, index, zarr_format, codecs, work, shards="none"):
        self.server = ViewServer(refzarr, index, zarr_format, codecs, work, shards)
        self.name = f"v{zarr_format} {codecs}" + ("" if shards == "none" else f" shards {shards}")
        self.restarts = 0

    def __enter__(self):
        self.server.__enter__()
        self.pipe = c.PipelinedClient(self.server.port)
        return self

    def __exit__(self, *exc):
        self.pipe.close()
        self.server.__exit__(*exc)

    def url(self, key=""):
        return self.server.url(key)

    def restart(self):
        self.server.proc.kill()
        self.server.proc.wait()
        self.server.err.close()
        self.restarts += 1
        os.replace(self.server.log_path, f"{self.server.log_path}.{self.restarts}")
        self.server.__enter__()
        self.pipe.port = self.server.port
        return " (serve killed and restarted)"

    def fetch(self, keys, timeout=VALUE_SECONDS):
        """(key, status, headers, body) for every key, in order; status None: no answer."""
        return self.pipe.fetch(keys, timeout, on_hang=self.restart)


def describe(key, status, body):
    if status is None:
        return f"GET {key}: {body.decode()}"
    return f"GET {key}: HTTP {status}: {body[:300].decode(errors='replace').strip()}"


def is_metadata(name):
    return name.startswith(".z") or name == "zarr.json"


def walk_view(view, zarr_format, failures, chunks=True, root=""):
    """Every array under the listing of `root`: {array key: {"meta": its metadata, "chunks": {chunk
    key relative to the array: the size the listing states, or None}}}, breadth first with
    pipelined requests. Every metadata key on the way must be JSON; with `chunks`, the arrays'
    chunk listings are walked too (v3: everything under "c", a file for a 0-d array)."""
    arrays, level = {}, [("node", root, None)]
    meta_name = ".zarray" if zarr_format == 2 else "zarr.json"
    while level:
        paths = [f"{key}/" if key else "" for _, key, _ in level]
        entries = {}
        for (kind, key, array), (path, status, _, body) in zip(
                level, view.fetch(paths, LISTING_SECONDS)):
            if status != 200:
                failures.add(view.name, array or key or "/", "listing: " +
                             describe(path, status, body))
            else:
                entries[key] = c.parse_listing(body.decode())
        meta_keys = [f"{key}/{name}" if key else name
                     for kind, key, _ in level if kind == "node" and key in entries
                     for name, is_dir, _ in entries[key] if not is_dir and is_metadata(name)]
        docs = {}
        for key, status, _, body in view.fetch(meta_keys):
            node = key.rsplit("/", 1)[0] if "/" in key else ""
            if status != 200:
                failures.add(view.name, node or "/", describe(key, status, body))
                continue
            try:
                docs[key] = json.loads(body)
            except ValueError as e:
                failures.add(view.name, node or "/", f"GET {key}: not JSON: {e}")
        next_level = []
        for kind, key, array in level:
            if key not in entries:
                continue
            if kind == "node":
                meta_key = f"{key}/{meta_name}" if key else meta_name
                meta = docs.get(meta_key)
                if any(name == meta_name for name, _, _ in entries[key]) and meta is None:
                    continue  # its metadata failed: reported above
                if meta is not None and (zarr_format == 2 or meta.get("node_type") == "array"):
                    arrays[key] = {"meta": meta, "chunks": {}}
                    array, rel = key, ""
                else:
                    for name, is_dir, _ in entries[key]:
                        if is_dir:
                            next_level.append(("node", f"{key}/{name}" if key else name, None))
                    continue
            else:
                rel = key[len(array) + 1:]
            if not chunks:
                continue
            for name, is_dir, size in entries[key]:
                if not rel and (is_metadata(name) or (zarr_format == 3 and name != "c")):
                    continue
                child = f"{rel}/{name}" if rel else name
                if is_dir:
                    next_level.append(("chunks", f"{array}/{child}", array))
                else:
                    arrays[array]["chunks"][child] = size
        level = next_level
    return arrays


def chunk_coords(rel, zarr_format, rank):
    """Grid coordinates of a chunk key relative to its array (v2 "0/1", v3 "c/0/1")."""
    parts = rel.split("/")
    if zarr_format == 3:
        parts = parts[1:]
    if rank == 0:
        return ()
    return tuple(int(p) for p in parts)


def chunk_key(coords, zarr_format):
    if zarr_format == 3:
        return "/".join(["c"] + [str(n) for n in coords])
    return "/".join(str(n) for n in coords) if coords else "0"


class SourceBytes:
    """pread from source files, descriptors kept open."""

    def __init__(self):
        self.fds, self.lock = {}, threading.Lock()

    def read(self, path, offset, length):
        with self.lock:
            fd = self.fds.get(path)
            if fd is None:
                fd = self.fds[path] = os.open(path, os.O_RDONLY)
        return os.pread(fd, length, offset)


def check_chunks(view, arrays, zarr_format, codecs, refs, sources, failures):
    """Fetches every listed chunk of every array: 200, the size the listing states, the index's
    chunk set; in passthrough the source's bytes at the range `refzarr refs` gives. Returns the
    numbers of chunks fetched and compared with the source."""
    order = []
    for array in sorted(arrays):
        info = arrays[array]
        rank = len(info["meta"].get("shape", []))
        index_refs = refs.get(array)
        if isinstance(index_refs, str):
            failures.add(view.name, array, f"refzarr refs failed: {index_refs}")
            index_refs = None
        if index_refs and rank == 0:
            index_refs = {(): ref for ref in index_refs.values()}  # refs names its chunk "0"
        info["refs"] = index_refs
        by_coords = {}
        for rel in info["chunks"]:
            try:
                by_coords[chunk_coords(rel, zarr_format, rank)] = rel
            except ValueError:
                failures.add(view.name, array, f"listing has a chunk key {rel!r} that is no "
                                               f"grid position")
        if index_refs is not None:
            extra = sorted(set(by_coords) - set(index_refs))
            missing = sorted(set(index_refs) - set(by_coords))
            if extra:
                failures.add(view.name, array, f"listing has {len(extra)} chunks the index "
                                               f"lacks, e.g. {chunk_key(extra[0], zarr_format)}")
            if missing:
                failures.add(view.name, array, f"listing lacks {len(missing)} chunks the index "
                                               f"has, e.g. {chunk_key(missing[0], zarr_format)}")
        order += [(array, coords, rel) for coords, rel in sorted(by_coords.items())]
    errors, compared = {}, 0
    keys = [f"{array}/{rel}" for array, _, rel in order]
    for (array, coords, rel), (key, status, headers, body) in zip(order, view.fetch(keys)):
        listed, index_refs = arrays[array]["chunks"][rel], arrays[array]["refs"]
        problem = None
        if status != 200:
            problem = describe(rel, status, body)
        elif listed is not None and len(body) != listed:
            problem = f"GET {rel}: size {len(body)} but the listing says {listed}"
        elif codecs == "passthrough" and index_refs and coords in index_refs:
            uri, offset, length = index_refs[coords]
            if uri != "inline":
                compared += 1
                if body != sources.read(uri, offset, length):
                    problem = (f"GET {rel}: {len(body)} bytes, not the source bytes at "
                               f"{uri}:{offset}+{length}")
        if problem:
            errors.setdefault(array, []).append(problem)
    for array, problems in errors.items():
        # The first few name their chunks; a count says the rest.
        shown = problems[:3]
        if len(problems) > 3:
            shown[-1] += f" (and {len(problems) - 3} more chunks of this array alike)"
        for problem in shown:
            failures.add(view.name, array, problem)
    return len(order), compared


# --- oracles -----------------------------------------------------------------------------------

class Oracles:
    """The independent reading of each array, from the file group it belongs to."""

    def __init__(self, files):
        self.files = files
        self.groups = sorted(files, key=len, reverse=True)
        self.cache, self.lock = {}, threading.Lock()

    def source(self, array):
        for group in self.groups:
            if array.startswith(group + "/"):
                return group, self.files[group], array[len(group) + 1:]
        return None, None, None

    def values(self, array):
        """(values, tifffile axes or None, oracle name); raises c.OracleUnavailable."""
        group, path, rest = self.source(array)
        if group is None:
            raise c.OracleUnavailable("no indexed file holds this array")
        with open(path, "rb") as f:
            head = f.read(8)
        if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            m = re.fullmatch(r"(\d+)/(\d+)", rest)
            if not m:
                raise c.OracleUnavailable(f"{rest!r} is not a TIFF series level")
            pixels, axes, name = c.tiff_oracle(path, int(m.group(1)), int(m.group(2)))
            return pixels, axes, name
        image = re.fullmatch(r"(\d+)/(\d+)", rest)
        try:
            return c.hdf5_oracle(path, rest), None, "h5py"
        except c.OracleUnavailable as e:
            if not image or "component not found" not in str(e):
                raise
        # No dataset at that path: an OME image of an Imaris or BigDataViewer layout.
        values = c.hdf5_image_oracle(path, int(image.group(1)), int(image.group(2)))
        return values, None, "h5py"

    def as_served(self, array, shape, dtype):
        """(values in the served shape and dtype, oracle name); raises c.OracleUnavailable, or
        ValueError when shape or dtype differ."""
        values, axes, name = self.values(array)
        if values.dtype.names:
            return values, name  # compound: compared field by field
        want, problem = c.as_served(values, axes, shape, dtype, name)
        if problem:
            raise ValueError(problem)
        return want, name

    def digest(self, array, shape, dtype):
        """(SHA-256 of the oracle's values as served, oracle name), cached."""
        native = dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype
        key = (array, tuple(shape), native.str)  # the digest is of little-endian bytes
        with self.lock:
            result = self.cache.get(key)
        if isinstance(result, Exception):
            raise result
        if result is not None:
            return result
        try:
            want, name = self.as_served(array, shape, dtype)
            result = (c.values_digest(want), name)
        except Exception as e:
            result = e
        with self.lock:
            self.cache[key] = result
        if isinstance(result, Exception):
            raise result
        return result


def documented_difference(array):
    rel = array.split("/", 2)[2] if array.startswith("realdata/tiff/") else None
    return rel in KNOWN_DIFFERENCES


def served_dtype(meta, zarr_format):
    """numpy dtype of an array's metadata, or None for types numpy cannot spell from it."""
    if zarr_format == 2:
        d = meta["dtype"]
        return np.dtype([tuple(f) for f in d] if isinstance(d, list) else d)
    name = meta["data_type"]
    if name == "string":
        return np.dtype(object)
    if re.fullmatch(r"r\d+", name):
        return np.dtype(f"V{int(name[1:]) // 8}")
    return np.dtype(name)


# --- a chunk answering 500 must fail the read ----------------------------------------------------

class FaultProxy:
    """Forwards GETs to a server, except one key, which answers 500."""

    def __init__(self, upstream_port, fault_key):
        upstream = c.HttpClient(upstream_port)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                key = urllib.parse.unquote(self.path.split("?")[0].lstrip("/"))
                if key == fault_key:
                    status, headers, body = 500, {}, b"refzarr: injected fault"
                else:
                    status, headers, body = upstream.get(key)
                self.send_response(status)
                self.send_header("Content-Type",
                                 headers.get("content-type", "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client closing its keep-alive connection is no news

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def fault_target(view, arrays, zarr_format, failures):
    """An array of at least two listed chunks and its first chunk key, the first such array in key
    order (its chunks are listed here unless the plain HTTP pass did)."""
    for array in sorted(arrays):
        info = arrays[array]
        if not info["meta"].get("shape") or max_bytes_exceeded(info["meta"], zarr_format):
            continue
        chunks = sorted(info["chunks"] or
                        walk_view(view, zarr_format, failures, root=array)[array]["chunks"])
        if len(chunks) >= 2:
            return array, f"{array}/{chunks[0]}"
    sys.exit("no array with two chunks to inject a fault into")


def max_bytes_exceeded(meta, zarr_format):
    """Whether an array is too large to read whole (its chunks are still fetched one by one)."""
    dtype = served_dtype(meta, zarr_format)
    return int(np.prod(meta["shape"], dtype=np.float64)) * dtype.itemsize > MAX_READ_BYTES


def raising_zarr_array(base, array):
    """The zarr-python 2 array at `array` over fsspec HTTP, configured so that a failed chunk
    raises. zarr.open on an fsspec mapper makes an FSStore, whose getitems asks fsspec with
    on_error="omit": any failure becomes a missing chunk, i.e. the fill value. A KVStore around
    the same mapper has no getitems, so zarr reads chunk by chunk with store[key]; the mapper
    turns only FileNotFoundError (HTTP 404) into KeyError (a fill value, as Zarr says), and any
    other error (a 5xx, a dropped connection) propagates to the caller."""
    import fsspec
    import zarr
    store = zarr.storage.KVStore(fsspec.get_mapper(base))
    return zarr.open_array(store, mode="r", path=array)


def prove_zarr_python_raises(base, array, fault_key, failures):
    import fsspec
    import zarr
    proxy = FaultProxy(int(base.rsplit(":", 1)[1].strip("/")), fault_key)
    try:
        try:
            raising_zarr_array(proxy.base, array)[...]
            failures.add("v2 compat", array, f"zarr-python (KVStore over fsspec): injected 500 did "
                                             f"not raise on {fault_key}")
        except Exception as e:
            print(f"proof: zarr-python 2 (KVStore over fsspec HTTP) raises on the injected 500 of "
                  f"{fault_key}: {type(e).__name__}: {str(e)[:120]}")
        # The same read through the default FSStore: the 500 silently becomes the fill value.
        silent = zarr.open_array(fsspec.get_mapper(proxy.base), mode="r", path=array)
        try:
            got, want = silent[...], raising_zarr_array(base, array)[...]
            print(f"  for contrast, the default FSStore read the same array without an error; "
                  f"{int(np.count_nonzero(got != want))} of {got.size} values are the fill value "
                  f"instead")
        except Exception as e:
            print(f"  for contrast, the default FSStore raised too: {type(e).__name__}")
    finally:
        proxy.close()


# --- clients -----------------------------------------------------------------------------------

def compare_zarr_python(base, arrays, oracles, view, failures, skips):
    equal = 0
    for array in sorted(arrays):
        try:
            z = raising_zarr_array(base, array)
            if max_bytes_exceeded(arrays[array]["meta"], 2):
                skips.append(f"{view} {array}: shape {z.shape} is over {MAX_READ_BYTES} bytes; "
                             f"its chunks were fetched one by one")
                continue
            try:
                want, oracle = oracles.as_served(array, z.shape, z.dtype)
            except c.OracleUnavailable as e:
                z[...]  # still read: a failing read is a failure with or without an oracle
                skips.append(f"{view} {array}: read, no oracle: {e}")
                continue
            except ValueError as e:
                if documented_difference(array):
                    skips.append(f"{view} {array}: documented difference: {e}")
                else:
                    failures.add(view, array, f"zarr-python: {e}")
                continue
            got = z[...]
            if not c.equal_values(np.asarray(got), want):
                if documented_difference(array):
                    skips.append(f"{view} {array}: documented difference from {oracle}")
                    continue
                bad = (int(np.count_nonzero(got != want)) if got.shape == want.shape
                       else "shape")
                failures.add(view, array, f"zarr-python: {bad} of {got.size} values differ "
                                          f"from {oracle}")
                continue
            equal += 1
        except Exception as e:
            failures.add(view, array, f"zarr-python: {type(e).__name__}: {str(e)[:300]}")
    print(f"{view}: zarr-python 2 read {len(arrays)} arrays, {equal} equal to their oracle")
    if equal < MIN_COMPARED:
        failures.add(view, "*", f"zarr-python compared only {equal} arrays (minimum "
                                f"{MIN_COMPARED})")


def install_js(source, dest):
    """`npm ci` of tests/e2e/js into `dest` (e2e_common.npm_ci: skipped while the lockfile is
    unchanged), with the reader beside node_modules so that its bare imports resolve there.
    Returns that folder."""
    c.npm_ci(source, dest, "the zarrita.js test")
    shutil.copy(os.path.join(source, "read_arrays.mjs"), dest)
    return dest


def run_zarrita(js, package, base, zarr_format, arrays, work):
    """{array: result line} of read_arrays.mjs for one zarrita version. Should node die, the
    arrays without a result are read again one at a time: the first still without one is where
    it died, and the rest go on in a new process."""
    results, pending, workers, crashes = {}, sorted(arrays), 4, 0
    while pending:
        jobs = os.path.join(work, f"jobs-{package}-v{zarr_format}.json")
        with open(jobs, "w") as f:
            json.dump({"base": base, "format": zarr_format, "arrays": pending,
                       "workers": workers}, f)
        try:
            done = subprocess.run(["node", os.path.join(js, "read_arrays.mjs"), package, jobs],
                                  capture_output=True, text=True, timeout=600)
            output, why = done.stdout, f"node exit {done.returncode}: {done.stderr[-300:]}"
        except subprocess.TimeoutExpired as e:
            output, why = (e.stdout or b"").decode(), "node timed out after 600 s"
        for line in output.splitlines():
            try:
                r = json.loads(line)
                results[r["key"]] = r
            except (ValueError, KeyError):
                pass
        rest = [a for a in pending if a not in results]
        if rest and workers == 1:
            crashes += 1
            results[rest[0]] = {"error": f"no result; node died reading it ({why.strip()})"}
            rest = rest[1:]
        pending, workers = rest, 1
        if crashes > 5:
            for a in pending:
                results[a] = {"error": f"not read: node died {crashes} times ({why.strip()})"}
            break
    return results


# zarrita's data types (0.5 and 0.7): anything else is the client's limit, not the view's.
ZARRITA_KINDS = {"b", "i", "u", "f", "S", "U", "O"}


def zarrita_lacks(package, dtype, shape, zarr_format):
    """Why a zarrita version cannot read an array whatever the server does, or None."""
    if dtype.kind not in ZARRITA_KINDS or dtype.names:
        return f"zarrita has no {dtype} data type"
    if dtype.kind == "f" and dtype.itemsize == 2:
        return "zarrita's float16 needs Float16Array, which Node.js 20 lacks"
    if package == "zarrita-0.5" and not shape:
        return "zarrita 0.5 never fetches the chunk of a 0-d array (it reads the fill value)"
    if package == "zarrita-0.5" and zarr_format == 3 and dtype.kind == "O":
        return "zarrita 0.5 has no v3 'string' data type (a zarr-python 3 extension)"
    return None


def compare_zarrita(js, base, zarr_format, arrays, oracles, view, failures, skips, work):
    readable = []
    for array in sorted(arrays):
        if max_bytes_exceeded(arrays[array]["meta"], zarr_format):
            skips.append(f"{view} {array}: shape {arrays[array]['meta']['shape']} is over "
                         f"{MAX_READ_BYTES} bytes (its chunks: e2e.every_array)")
        else:
            readable.append(array)
    # Both versions at once: two node processes keep both cores busy.
    with concurrent.futures.ThreadPoolExecutor(len(ZARRITA)) as pool:
        runs = dict(zip(ZARRITA, pool.map(
            lambda package: run_zarrita(js, package, base, zarr_format, readable, work),
            ZARRITA)))
    for package, results in runs.items():
        equal, label = 0, f"{view} {package}"
        for array in sorted(readable):
            meta, r = arrays[array]["meta"], results[array]
            dtype = served_dtype(meta, zarr_format)
            lacks = zarrita_lacks(package, dtype, meta["shape"], zarr_format)
            if lacks:
                outcome = r["error"][:100] if "error" in r else "read"
                skips.append(f"{label} {array}: {lacks} ({outcome})")
                continue
            if "error" in r:
                failures.add(label, array, f"zarrita: {r['error'][:400]}")
                continue
            try:
                want, oracle = oracles.digest(array, meta["shape"], dtype)
            except c.OracleUnavailable as e:
                skips.append(f"{label} {array}: read, no oracle: {e}")
                continue
            except ValueError as e:
                if documented_difference(array):
                    skips.append(f"{label} {array}: documented difference: {e}")
                else:
                    failures.add(label, array, f"zarrita: {e}")
                continue
            if r["sha256"] != want:
                if documented_difference(array):
                    skips.append(f"{label} {array}: documented difference from {oracle}")
                else:
                    failures.add(label, array, f"zarrita: values differ from {oracle} (digest "
                                               f"of {r['data_type']} {r['shape']})")
                continue
            equal += 1
        print(f"{label}: read {len(readable)} arrays, {equal} equal to their oracle")
        if equal < MIN_COMPARED:
            failures.add(label, "*", f"zarrita compared only {equal} arrays (minimum "
                                     f"{MIN_COMPARED})")


def prove_zarrita_raises(js, base, zarr_format, array, fault_key, failures, work):
    proxy = FaultProxy(int(base.rsplit(":", 1)[1].strip("/")), fault_key)
    try:
        for package in ZARRITA:
            r = run_zarrita(js, package, proxy.base, zarr_format, [array], work)[array]
            if "error" not in r:
                failures.add(f"v{zarr_format} compat {package}", array,
                             f"zarrita: injected 500 did not fail the read of {fault_key}")
            else:
                print(f"proof: {package} fails on the injected 500 of {fault_key}: "
                      f"{r['error'][:120]}")
    finally:
        proxy.close()


# --- main ----------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", choices=["http", "zarrita"], default="http")
    args = parser.parse_args()
    started = time.time()
    refzarr, work, shared = c.env("REFZARR_BIN"), c.env("REFZARR_WORK"), c.env("REFZARR_SHARED_DIR")
    js = None
    if args.clients == "zarrita":
        js = install_js(c.env("REFZARR_JS_SOURCE"), c.env("REFZARR_JS_WORK"))
    index, files = build_index(refzarr, work, shared)
    oracles = Oracles(files)
    failures, skips = c.Failures(CAUSES), []
    views = (VIEWS if args.clients == "http"
             else [v for v in VIEWS if v[1] == "compat"] + SHARDED_VIEWS)
    listed, refs, sources = {}, None, SourceBytes()
    for zarr_format, codecs, shards in views:
        t0 = time.time()
        with ServedView(refzarr, index, zarr_format, codecs, work, shards) as view:
            arrays = walk_view(view, zarr_format, failures, chunks=args.clients == "http")
            listed[view.name] = set(arrays)
            if args.clients == "http":
                if refs is None:
                    refs = read_refs(refzarr, index, arrays)
                count, compared = check_chunks(view, arrays, zarr_format, codecs, refs, sources,
                                               failures)
                same = f", {compared} compared with the source" if codecs == "passthrough" else ""
                print(f"{view.name}: {len(arrays)} arrays listed, {count} chunks fetched{same} "
                      f"({time.time() - t0:.1f} s)", flush=True)
            else:
                print(f"{view.name}: {len(arrays)} arrays listed", flush=True)
            if view.server.proc.poll() is not None:
                failures.add(view.name, "*", f"refzarr serve exited with "
                                             f"{view.server.proc.returncode}")
            if args.clients == "http" and (zarr_format, codecs) == (2, "compat"):
                array, fault_key = fault_target(view, arrays, zarr_format, failures)
                prove_zarr_python_raises(view.url(), array, fault_key, failures)
                compare_zarr_python(view.url(), arrays, oracles, view.name, failures, skips)
            if args.clients == "zarrita":
                array, fault_key = fault_target(view, arrays, zarr_format, failures)
                prove_zarrita_raises(js, view.url(), zarr_format, array, fault_key, failures, work)
                compare_zarrita(js, view.url(), zarr_format, arrays, oracles, view.name, failures,
                                skips, work)
            print(f"{view.name}: done in {time.time() - t0:.1f} s", flush=True)
    first = next(iter(listed))
    for name, keys in listed.items():
        for a in sorted(keys ^ listed[first])[:5]:
            where = (name, first) if a in keys else (first, name)
            failures.add(name, a, f"listed in {where[0]} but not in {where[1]}")
    print(f"\n{len(skips)} skipped:")
    for line in skips:
        print("  skip " + line)
    failures.print_table(f"every array ({args.clients})")
    print(f"\ntotal {time.time() - started:.1f} s")
    sys.exit(1 if failures.rows else 0)


if __name__ == "__main__":
    main()
