"""Shared helpers of the front-end end-to-end tests: sample index, array walk, pixel oracle."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import sys
import time

import numpy as np
import tifffile

# tifffile axis letters -> position in refzarr's (t, c, z, y, x). I and Q (generic page sequences)
# become z, as the contracts map an unlabeled page stack.
AXIS_TO_TCZYX = {"T": 0, "C": 1, "S": 1, "Z": 2, "I": 2, "Q": 2, "Y": 3, "X": 4}


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"missing environment variable {name}")
    return value


def npm_ci(source, dest, what):
    """`npm ci` of source's package.json + package-lock.json into dest, unless an install of the
    same lock file is there (a stamp holds its hash). Exits with a failure naming `what` (the test
    needing it) when node or npm is missing or the install fails. Returns dest."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"FAIL: `{tool}` is not installed: {what} needs Node.js and npm "
                     f"(Debian: apt-get install nodejs npm; see the Makefile)")
    with open(os.path.join(source, "package-lock.json"), "rb") as f:
        lock = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(dest, "installed-lock.sha256")
    if not (os.path.exists(stamp) and open(stamp).read() == lock
            and os.path.isdir(os.path.join(dest, "node_modules"))):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(source, name), dest)
        done = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                              cwd=dest, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            sys.exit(f"FAIL: npm ci in {dest} failed (exit {done.returncode}):\n"
                     f"{done.stdout[-1500:]}{done.stderr[-3000:]}")
        with open(stamp, "w") as f:
            f.write(lock)
    return dest


def make_index(refzarr, samples_bin, work):
    """Writes the samples and indexes them; returns (samples_dir, index_path)."""
    samples = os.path.join(work, "samples")
    index = os.path.join(work, "samples.refs.db")
    # Always from scratch: an index left by an older build must never stand in for this one.
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([samples_bin, samples], check=True, stdout=subprocess.DEVNULL)
    # Exit status 1 is fine: the deliberately broken samples fail, the rest is indexed.
    subprocess.run([refzarr, "index", "-o", index, samples], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if not os.path.exists(index):
        sys.exit("refzarr index wrote no index")
    return samples, index


def as_tczyx(data, axes):
    """The tifffile array in refzarr's 5-D (t, c, z, y, x) order, or None when the axes do not map."""
    targets = [AXIS_TO_TCZYX.get(a) for a in axes]
    if None in targets or len(set(targets)) != len(targets):
        return None
    order = sorted(range(len(axes)), key=lambda i: targets[i])
    moved = np.transpose(data, order)
    shape = [1] * 5
    for i in order:
        shape[targets[i]] = data.shape[i]
    return moved.reshape(shape)


def _read_level(path, series, level):
    with tifffile.TiffFile(path) as tif:
        s = tif.series[series]
        lv = s.levels[level] if level < len(s.levels) else None
        if lv is None:
            return None, s.axes
        return lv.asarray(), lv.axes


def expected_pixels(samples, file_group, series, level):
    """Pixels of one series level of a sample file, read by tifffile (the oracle). Where tifffile
    lacks the codec (no imagecodecs in Debian), libtiff decodes instead: `tiffcp -c none` writes
    an uncompressed copy (JPEG YCbCr as RGB) that tifffile then reads."""
    path = os.path.join(samples, file_group)
    try:
        return _read_level(path, series, level)
    except Exception as first:
        if "imagecodecs" not in str(first):
            raise
        with tempfile.TemporaryDirectory() as tmp:
            plain = os.path.join(tmp, "plain.tif")
            done = subprocess.run(["tiffcp", "-c", "none", path, plain],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.returncode != 0 or not os.path.exists(plain):
                raise RuntimeError(f"libtiff cannot decode either: {done.stderr.decode()[:200]}")
            return _read_level(plain, series, level)


def compare_array(z, samples, key, allow_widening=False):
    """Compares the zarr array at `key` ("dir/file.tif/S/L") with tifffile. Returns None when equal,
    "skip: ..." when the oracle cannot read it, or a mismatch message."""
    m = re.match(r"(.+?\.(?:tif|tiff|svs|btf|tf8))/(\d+)/(\d+)$", key, re.IGNORECASE)
    if not m:
        return f"skip: {key} is not a TIFF series level"
    file_group, series, level = m.group(1), int(m.group(2)), int(m.group(3))
    try:
        expected, axes = expected_pixels(samples, file_group, series, level)
    except Exception as e:  # tifffile lacks a codec (JPEG without imagecodecs) or the series.
        return f"skip: tifffile cannot read {file_group} series {series} level {level}: {e}"
    if expected is None:
        return f"{key}: tifffile has no level {level}"
    got = z[...]
    want, problem = as_served(expected, axes, got.shape, got.dtype, "tifffile", allow_widening)
    if problem:
        return f"{key}: {problem}"
    if not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
        bad = int(np.count_nonzero(got != want))
        return f"{key}: {bad} of {got.size} pixels differ from tifffile"
    return None


def as_served(expected, axes, shape, dtype, oracle="tifffile", allow_widening=False):
    """An oracle's pixels (axes as tifffile letters, or None for HDF5: as stored) in the served
    array's shape and dtype, where the difference is one of layout only. Returns (array, None), or
    (None, why not). Axes of length 1 may differ (tifffile drops some a refzarr view keeps)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    want = np.asarray(expected) if axes is None else as_tczyx(expected, axes)
    if want is None or want.shape != shape:
        if np.squeeze(expected).shape == tuple(n for n in shape if n != 1):
            want = np.squeeze(expected).reshape(shape)
        else:
            return None, f"shape {shape} but {oracle} {np.shape(expected)} ({axes})"
    if want.dtype == np.bool_ and dtype in (np.uint8, np.int8):
        # 1-bit TIFF samples are served unpacked as uint8 0/1; HDF5 bools are int8 enums.
        want = want.astype(dtype)
    if dtype.newbyteorder("=") != want.dtype.newbyteorder("="):
        # GDAL before 3.7 has no Int8 and reads int8 arrays as int16: compare the values then.
        widened = (allow_widening and dtype.kind == want.dtype.kind
                   and np.can_cast(want.dtype, dtype, "safe"))
        if not widened:
            return None, f"dtype {dtype} but {oracle} {want.dtype}"
        want = want.astype(dtype)
    return want, None


def walk_arrays(group, prefix=""):
    """(key, array) for every array under a zarr-python group."""
    for name, item in sorted(group.items()):
        key = f"{prefix}{name}"
        if hasattr(item, "shape") and hasattr(item, "chunks"):
            yield key, item
        else:
            yield from walk_arrays(item, key + "/")


class Tally:
    """Outcomes of array comparisons: equal (message None), skipped ("skip: ..."), failed."""

    def __init__(self):
        self.equal, self.skipped, self.failures = 0, [], []

    def add(self, message):
        if message is None:
            self.equal += 1
        elif message.startswith("skip:"):
            self.skipped.append(message)
        else:
            self.failures.append(message)

    def finish(self, label, minimum, extra=""):
        """Prints the summary and every skip and failure; returns the failures, with one more
        when fewer than `minimum` arrays were compared (a test that compared nothing fails)."""
        print(f"{label}: {self.equal} arrays equal the oracle, {len(self.skipped)} skipped, "
              f"{len(self.failures)} differ{extra}")
        for s in self.skipped:
            print("  " + s)
        for f in self.failures:
            print("  FAIL " + f)
        if self.equal < minimum:
            self.failures.append(f"{label}: only {self.equal} arrays compared")
        return self.failures


def compare_safely(arr, samples, key):
    """compare_array, with a read error reported as a failure message."""
    try:
        if isinstance(arr, Exception):
            raise arr
        return compare_array(arr, samples, key)
    except Exception as e:
        return f"{key}: read failed: {type(e).__name__}: {e}"


def check_all_arrays(root, samples, label):
    """Reads every array under `root` and compares it with tifffile; returns the failure list."""
    tally = Tally()
    for key, arr in walk_arrays(root):
        tally.add(compare_safely(arr, samples, key))
    return tally.finish(label, 20)


def ngff_validators(shared, version):
    """jsonschema validators by schema name for OME-NGFF `version` ("0.4" or "0.5"), with every
    schema of that version registered so cross-file $refs resolve offline."""
    import jsonschema
    folder = os.path.join(shared, "schemas", f"ngff-{version}", "schemas")
    store, by_file = {}, {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            schema = json.load(f)
        store[schema.get("$id", name)] = schema
        by_file[name] = schema
    validators = {}
    for name in ("image", "bf2raw", "plate", "well", "label"):
        schema = by_file[f"{name}.schema"]
        cls = jsonschema.validators.validator_for(schema)
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        validators[name] = cls(schema, resolver=resolver)
    return validators


def validate_ngff(attrs, validators, where):
    """Validates OME-NGFF attributes (0.4: the .zattrs; 0.5: zarr.json attributes) with the schema
    the ome-ngff-validator would pick. Returns failure messages; [] when not OME metadata."""
    ome = attrs.get("ome", attrs)
    picks = [name for key, name in (("multiscales", "image"), ("bioformats2raw.layout", "bf2raw"),
                                    ("plate", "plate"), ("well", "well"), ("image-label", "label"))
             if key in ome]
    failures = []
    for name in picks:
        errors = sorted(validators[name].iter_errors(attrs), key=str)
        if errors:
            failures.append(f"{where}: not a valid {name}: {errors[0].message}")
    return failures, picks


class Timer:
    def __init__(self, seconds):
        self.end = time.time() + seconds

    def expired(self):
        return time.time() > self.end


def strict_stores():
    """(StrictFSStore, StrictDirectoryStore) exactly as README.md documents them: the block after
    the "strict-stores" marker, executed, so the recipe users copy is the one tested."""
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "README.md")
    with open(readme) as f:
        text = f.read()
    m = re.search(r"<!-- strict-stores:[^>]*-->\s*```python\n(.*?)```", text, re.S)
    if m is None:
        sys.exit("README.md has no strict-stores block")
    namespace = {}
    exec(m.group(1), namespace)
    return namespace["StrictFSStore"], namespace["StrictDirectoryStore"]


def write_tiled_tiff(path):
    """A 64 x 64 uint16 TIFF in four 32 x 32 tiles, pixels 1..4096 (no pixel is the fill value)."""
    pixels = np.arange(1, 64 * 64 + 1, dtype=np.uint16).reshape(64, 64)
    tifffile.imwrite(path, pixels, tile=(32, 32))
    return pixels


def rewrite_in_place(path):
    """Changes 16 bytes in the middle of `path`: same size, new content and mtime."""
    time.sleep(0.02)  # A new mtime even on coarse clocks.
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 16)


def peak_rss_mib(pid):
    """The peak resident memory of process `pid` (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def h5_stored_chunk_names(path, dataset):
    """Names of the stored chunks of a 1-D HDF5 dataset as Zarr v2 keys, by h5py (the oracle)."""
    import h5py
    with h5py.File(path, "r") as f:
        d = f[dataset]
        if d.chunks is None:
            return []
        return sorted((str(d.id.get_chunk_info(i).chunk_offset[0] // d.chunks[0])
                       for i in range(d.id.get_num_chunks())), key=int)


# --- Every array of a served view (every_array_e2e.py) --------------------------------------

class OracleUnavailable(Exception):
    """No independent reader can produce the pixels of an array (the reason is the message)."""


def tiff_oracle(path, series, level):
    """(pixels, tifffile axes, oracle name) of one series level of a TIFF: tifffile, libtiff through
    tiffcp where tifffile lacks the codec, else GDAL's decoding of the level's IFD (a single page of
    the main IFD chain). Raises OracleUnavailable with every reader's reason."""
    reasons = []
    try:
        pixels, axes = expected_pixels(os.path.dirname(path), os.path.basename(path), series, level)
        if pixels is None:
            raise OracleUnavailable(f"tifffile has no level {level} of series {series}")
        return pixels, axes, "tifffile"
    except OracleUnavailable:
        raise
    except Exception as e:
        reasons.append(f"tifffile/tiffcp: {type(e).__name__}: {str(e)[:160]}")
    try:
        from osgeo import gdal
        with tifffile.TiffFile(path) as tif:
            lv = tif.series[series].levels[level]
            page = lv.keyframe
            if len(lv.pages) != 1 or not isinstance(page.index, int):
                raise OracleUnavailable("GDAL: not a single page of the main IFD chain")
            index = page.index
        gdal.UseExceptions()
        data = gdal.Open(f"GTIFF_DIR:{index + 1}:{path}").ReadAsArray()
        return data, ("YX" if data.ndim == 2 else "CYX"), "GDAL"
    except Exception as e:
        reasons.append(f"GDAL: {type(e).__name__}: {str(e)[:160]}")
    raise OracleUnavailable("; ".join(reasons))


def _h5py():
    """h5py, with the HDF5 library told to find external raw files next to the HDF5 file
    (as h5dump does), not in our working directory. The library reads HDF5_EXTFILE_PREFIX once,
    when it starts, so the variable is set only around the first import: the refzarr processes
    this test starts later must not inherit it."""
    import importlib
    if "h5py" not in sys.modules:
        saved = os.environ.get("HDF5_EXTFILE_PREFIX")
        os.environ["HDF5_EXTFILE_PREFIX"] = "${ORIGIN}"
        try:
            importlib.import_module("h5py")
        finally:
            if saved is None:
                del os.environ["HDF5_EXTFILE_PREFIX"]
            else:
                os.environ["HDF5_EXTFILE_PREFIX"] = saved
    return sys.modules["h5py"]


def hdf5_oracle(path, name):
    """A dataset's values read by h5py (variable-length strings as str objects, as zarr's VLenUTF8
    gives them). Raises OracleUnavailable when h5py cannot open or read it."""
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as h5:
            ds = h5[name]
            values = ds[()]
            strings = h5py.check_string_dtype(ds.dtype)
    except Exception as e:
        raise OracleUnavailable(f"h5py: {type(e).__name__}: {str(e)[:160]}")
    if isinstance(values, h5py.Empty):
        raise OracleUnavailable("h5py: the dataset has a null dataspace")
    values = np.asarray(values)
    if strings is not None and strings.length is None:
        values = np.vectorize(lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b,
                              otypes=[object])(values).reshape(values.shape)
    return values


def _ims_size(attrs, names):
    """Imaris keeps numbers as arrays of one-character strings."""
    try:
        return [int(b"".join(attrs[n]).decode()) for n in names]
    except (KeyError, ValueError):
        return None


def hdf5_image_oracle(path, image, level):
    """The 5-D (t, c, z, y, x) level `level` of OME image `image` of an Imaris or BigDataViewer
    file, assembled with h5py from the datasets each format's layout names (docs/hdf5.md): Imaris
    `DataSet/ResolutionLevel r/TimePoint t/Channel c/Data` cropped to the image size its
    attributes give; BigDataViewer `tNNNNN/sNN/<level>/cells` of the setups whose levels agree,
    signed 16-bit read as unsigned as BigDataViewer does. Raises OracleUnavailable otherwise."""
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            if "DataSet/ResolutionLevel 0/TimePoint 0/Channel 0/Data" in f and image == 0:
                res = f[f"DataSet/ResolutionLevel {level}"]
                times = sorted((k for k in res if k.startswith("TimePoint ")),
                               key=lambda k: int(k.split()[1]))
                chans = sorted((k for k in res[times[0]] if k.startswith("Channel ")),
                               key=lambda k: int(k.split()[1]))
                first = res[times[0]][chans[0]]
                size = (_ims_size(f["DataSetInfo/Image"].attrs, "ZYX") if level == 0 else
                        _ims_size(first.attrs, ("ImageSizeZ", "ImageSizeY", "ImageSizeX")))
                if size is None:
                    raise OracleUnavailable(f"Imaris level {level} states no image size")
                z, y, x = size
                return np.stack([np.stack([res[t][ch]["Data"][:z, :y, :x] for ch in chans])
                                 for t in times])
            setups = sorted(k for k in f if re.fullmatch(r"s\d\d", k))
            times = sorted(k for k in f if re.fullmatch(r"t\d{5}", k))
            if not setups or not times:
                raise OracleUnavailable("neither an Imaris nor a BigDataViewer layout")
            groups = {}
            for sname in setups:
                levels = sorted(f[f"{times[0]}/{sname}"], key=int)
                cells = [f[f"{times[0]}/{sname}/{lv}/cells"] for lv in levels]
                sig = tuple((d.shape, d.chunks, d.dtype.str) for d in cells)
                groups.setdefault(sig, []).append(sname)
            members = list(groups.values())[image]
            data = np.stack([np.stack([f[f"{t}/{sname}/{level}/cells"][()] for sname in members])
                             for t in times])
            return data.view(np.uint16) if data.dtype == np.int16 else data
    except OracleUnavailable:
        raise
    except Exception as e:
        raise OracleUnavailable(f"h5py: {type(e).__name__}: {str(e)[:160]}")


def equal_values(got, want):
    """Whether a served array equals the oracle's (compound types field by field: refzarr spells
    padding as explicit void fields; NaNs equal)."""
    if want.dtype.names:
        return (got.dtype.names is not None and got.shape == want.shape and
                all(n in got.dtype.names and np.array_equal(got[n], want[n])
                    for n in want.dtype.names))
    if got.shape != want.shape:
        return False
    if got.dtype.kind in "fc":
        return np.array_equal(got, want, equal_nan=True)
    return np.array_equal(got, want)


def values_digest(values):
    """SHA-256 of an array's values as little-endian C-order bytes; object arrays (strings) as
    the compact JSON list of their values in C order, as read_arrays.mjs computes it."""
    import hashlib
    values = np.asarray(values)
    if values.dtype == object:
        text = json.dumps([str(v) for v in values.ravel()], ensure_ascii=False,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
    little = values.dtype.newbyteorder("<") if values.dtype.byteorder == ">" else values.dtype
    return hashlib.sha256(np.ascontiguousarray(values, dtype=little).tobytes()).hexdigest()


class HttpClient:
    """Plain GETs against one server with one keep-alive connection per thread. `port` may be
    changed (a restarted server): connections to the old port are dropped."""

    def __init__(self, port):
        import threading
        self.port, self.local = port, threading.local()

    def get(self, key, timeout=60):
        """(status, headers with lower-case names, body) of GET /key (key not yet %-encoded).
        Raises TimeoutError when the server does not answer within `timeout` seconds."""
        import http.client
        import urllib.parse
        path = "/" + urllib.parse.quote(key)
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None or conn.port != self.port:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionRefusedError):
                # An idle keep-alive connection the server closed: once more on a new one.
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
            except TimeoutError:
                conn.close()
                self.local.conn = None
                raise


class PipelinedClient:
    """Many GETs over one connection with up to `depth` requests in flight (HTTP/1.1
    pipelining): ten times the rate of one request per round trip, so a test can afford to fetch
    every chunk of every array. Answers come back in request order."""

    def __init__(self, port, depth=64):
        self.port, self.depth, self.sock, self.reader = port, depth, None, None

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def _read_response(self):
        """(status, headers, body, closes) of the next answer; raises ConnectionError when the
        connection ends first."""
        line = self.reader.readline()
        if not line:
            raise ConnectionError("connection closed before an answer")
        status = int(line.split()[1])
        headers = {}
        while True:
            h = self.reader.readline()
            if not h:
                raise ConnectionError("connection closed in the headers")
            if h in (b"\r\n", b"\n"):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self.reader.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.reader.readline().split(b";")[0], 16)
                parts.append(self.reader.read(size))
                self.reader.readline()
                if size == 0:
                    break
            body = b"".join(parts)
        else:
            body = self.reader.read()
        closes = headers.get("connection", "").lower() == "close"
        return status, headers, body, closes

    def fetch(self, keys, timeout, on_hang=None):
        """Yields (key, status, headers, body) for every key, in order. A key answered neither
        within `timeout` seconds nor on a second connection yields status None and a body saying
        why; `on_hang()` (which may restart the server and change `port`) runs first, then the
        remaining keys go out on a new connection."""
        import socket
        import urllib.parse
        keys, i, retried = list(keys), 0, set()
        while i < len(keys):
            batch = keys[i:i + self.depth]
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                self.reader = self.sock.makefile("rb")
            self.sock.settimeout(timeout)
            self.sock.sendall(b"".join(
                b"GET /" + urllib.parse.quote(k).encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                for k in batch))
            for key in batch:
                try:
                    status, headers, body, closes = self._read_response()
                except (TimeoutError, ConnectionError, OSError) as e:
                    self.close()
                    if isinstance(e, TimeoutError) or key in retried:
                        why = (f"no answer within {timeout} s" if isinstance(e, TimeoutError)
                               else f"no answer: {e}")
                        if on_hang:
                            why += on_hang()
                        yield key, None, {}, why.encode()
                        i += 1
                    else:
                        retried.add(key)  # a connection the server closed: once more
                    break
                yield key, status, headers, body
                i += 1
                if closes:
                    self.close()
                    break


def parse_listing(html_text):
    """(name, is_directory, size or None) of every entry of a `refzarr serve` HTML listing; the
    size is the one the listing states ("N bytes")."""
    import html as html_lib
    import urllib.parse
    out = []
    for href, size in re.findall(r'<a href="\./([^"]+)">[^<]*</a>(?: (\d+) bytes)?', html_text):
        name = urllib.parse.unquote(html_lib.unescape(href))
        is_dir = name.endswith("/")
        out.append((name.rstrip("/"), is_dir, int(size) if size else None))
    return out


class Failures:
    """Failures of the every-array suite as (view, array, error), printed as one table grouped
    by cause. The cause is the error with numbers, keys and paths taken out, unless a rule of
    `causes` ((regex, label) pairs, first match wins) names it."""

    def __init__(self, causes=()):
        self.rows, self.causes = [], list(causes)

    def add(self, view, array, error):
        self.rows.append((view, array, " ".join(str(error).split())))

    def cause(self, error):
        for pattern, label in self.causes:
            if re.search(pattern, error):
                return label
        generic = re.sub(r"'[^']*'|\"[^\"]*\"|\S*/\S*", "<…>", error)
        return re.sub(r"\d+", "N", generic)[:140]

    def print_table(self, title):
        groups = {}
        for view, array, error in self.rows:
            groups.setdefault(self.cause(error), []).append((view, array, error))
        print(f"\n=== {title}: {len(self.rows)} failures, {len(groups)} causes ===")
        for cause, rows in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            arrays = {a for _, a, _ in rows}
            print(f"\n--- {cause}  [{len(rows)} failures, {len(arrays)} arrays]")
            width = max(len(v) for v, _, _ in rows)
            for view, array, error in sorted(rows):
                print(f"  {view:<{width}}  {array}\n  {'':<{width}}    -> {error[:400]}")


def huge_sparse_cases(shared):
    """(path, dataset) of the realdata HDF5 files with huge, almost empty chunk grids: tlayouto.h5
    (2^33 x 257 chunk positions, none stored) and tbigdims.h5 (4 194 305 positions, 2 stored).
    A missing file is a failure (CI always has realdata), never a skip."""
    realdata = os.path.join(shared, "realdata", "hdf5", "vchoi-hdfgroup+hdf5")
    cases = [(os.path.join(realdata, "test", "testfiles", "tlayouto.h5"), "Dataset"),
             (os.path.join(realdata, "tools", "test", "h5dump", "testfiles", "tbigdims.h5"),
              "dset4gb")]
    for path, _ in cases:
        if not os.path.exists(path):
            sys.exit(f"huge listings: missing realdata file {path}")
    return cases
