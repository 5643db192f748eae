"""Shared helpers of the front-end end-to-end tests: sample index, array walk, pixel oracle."""
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
    want = as_tczyx(expected, axes)
    if want is None or want.shape != got.shape:
        if np.squeeze(expected).shape == np.squeeze(got).shape:
            want, got = np.squeeze(expected), np.squeeze(got)
        else:
            return f"{key}: shape {got.shape} but tifffile {expected.shape} ({axes})"
    if want.dtype == np.bool_ and got.dtype == np.uint8:
        # 1-bit samples: tifffile reads them as bool, refzarr serves them unpacked as uint8 0/1.
        want = want.astype(np.uint8)
    if got.dtype.newbyteorder("=") != want.dtype.newbyteorder("="):
        # GDAL before 3.7 has no Int8 and reads int8 arrays as int16: compare the values then.
        widened = (allow_widening and got.dtype.kind == want.dtype.kind
                   and np.can_cast(want.dtype, got.dtype, "safe"))
        if not widened:
            return f"{key}: dtype {got.dtype} but tifffile {want.dtype}"
        want = want.astype(got.dtype)
    if not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
        bad = int(np.count_nonzero(got != want))
        return f"{key}: {bad} of {got.size} pixels differ from tifffile"
    return None


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
