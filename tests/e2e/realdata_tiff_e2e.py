"""Every TIFF in ../shared/realdata either indexes with correct pixels, or each array refused and
each file that fails is named with its reason (EXPECTED_REFUSED, EXPECTED_FAILED: any other
refusal or failure fails the test, and so does an expected one that does not happen). No crash,
no hang.

Pixels are read through `refzarr serve` (compat codecs) with zarr-python over fsspec HTTP and
compared with an independent reader of the same IFDs: tifffile; where tifffile lacks the codec
(no imagecodecs in Debian), libtiff itself through ctypes (TIFFReadEncodedStrip/Tile on the whole
file, JPEG YCbCr as RGB); for old-style JPEG, GDAL (which reads it through libtiff's RGBA
interface). Where tifffile cannot even parse the file (IFD loops), libtiff walks it. No array may
go uncompared.
Usage: REFZARR_BIN=... REFZARR_SHARED_DIR=... REFZARR_WORK=... realdata_tiff_e2e.py"""
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse

import numpy as np

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402


# Deliberate, documented differences from tifffile (docs/tiff.md, "Differences from tifffile").
KNOWN_DIFFERENCES = {
    # tifffile flattens SubIFDs into a page sequence; refzarr treats SubIFDs as pyramid levels.
    "image-rs+image-tiff/tests/subsubifds.tif/0/0",
}

# Arrays refused at index time (file/array: words of the reason) and files that fail (words of
# the error). docs/tiff.md ("What is refused") explains each kind.
EXPECTED_REFUSED = {
    "rasterio+rasterio/tests/data/corrupt.tif/0/0":
        "IFD 0: tile 3 (offset 260000, 47086 bytes) lies past the end of the file (298232 bytes)",
}
EXPECTED_FAILED = {
    "image-rs+image-tiff/tests/fuzz_images/oor_panic/colormap-shl-overflow.tiff":
        'Incorrect count for "PlanarConfiguration"',
    "image-rs+image-tiff/tests/fuzz_images/oor_panic/graydepth-invert-overflow-5a0aad5024cc4ff3.tiff":
        'Incorrect count for "SamplesPerPixel"',
}


class Libtiff:
    """The few libtiff calls an oracle needs, through ctypes; messages silenced."""

    TAGS = {"width": (256, ctypes.c_uint32), "length": (257, ctypes.c_uint32),
            "bps": (258, ctypes.c_uint16), "compression": (259, ctypes.c_uint16),
            "photometric": (262, ctypes.c_uint16), "spp": (277, ctypes.c_uint16),
            "rps": (278, ctypes.c_uint32), "planar": (284, ctypes.c_uint16),
            "tile_width": (322, ctypes.c_uint32), "tile_length": (323, ctypes.c_uint32),
            "sample_format": (339, ctypes.c_uint16)}

    def __init__(self):
        lib = ctypes.CDLL(ctypes.util.find_library("tiff") or "libtiff.so.6")
        lib.TIFFOpen.restype = ctypes.c_void_p
        lib.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.TIFFClose.argtypes = [ctypes.c_void_p]
        for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
            getattr(lib, name).restype = ctypes.c_void_p
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name)(None)
        lib.TIFFSetSubDirectory.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.TIFFReadDirectory.argtypes = [ctypes.c_void_p]
        lib.TIFFCurrentDirOffset.restype = ctypes.c_uint64
        lib.TIFFCurrentDirOffset.argtypes = [ctypes.c_void_p]
        lib.TIFFIsTiled.argtypes = [ctypes.c_void_p]
        for name in ("TIFFStripSize", "TIFFTileSize"):
            getattr(lib, name).restype = ctypes.c_int64
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("TIFFNumberOfStrips", "TIFFNumberOfTiles"):
            getattr(lib, name).restype = ctypes.c_uint32
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("TIFFReadEncodedStrip", "TIFFReadEncodedTile"):
            getattr(lib, name).restype = ctypes.c_int64
            getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p,
                                           ctypes.c_int64]
        self.lib = lib

    def _field(self, tif, name):
        tag, kind = self.TAGS[name]
        value = kind()
        self.lib.TIFFGetFieldDefaulted(ctypes.c_void_p(tif), ctypes.c_uint32(tag), ctypes.byref(value))
        return value.value

    def directories(self, path):
        """(IFD offset, width, length, samples) of every main-chain IFD libtiff reads, in order,
        then of every SubIFD."""
        tif = self.lib.TIFFOpen(path.encode(), b"r")
        if not tif:
            raise RuntimeError("libtiff cannot open the file")
        out, subs = [], []
        try:
            while True:
                out.append((self.lib.TIFFCurrentDirOffset(tif), self._field(tif, "width"),
                            self._field(tif, "length"), self._field(tif, "spp")))
                count, offsets = ctypes.c_uint16(), ctypes.POINTER(ctypes.c_uint64)()
                if self.lib.TIFFGetField(ctypes.c_void_p(tif), ctypes.c_uint32(330),
                                         ctypes.byref(count), ctypes.byref(offsets)):
                    subs += [offsets[i] for i in range(count.value)]
                if not self.lib.TIFFReadDirectory(tif):
                    break
            for sub in subs:
                if self.lib.TIFFSetSubDirectory(tif, sub):
                    out.append((sub, self._field(tif, "width"), self._field(tif, "length"),
                                self._field(tif, "spp")))
        finally:
            self.lib.TIFFClose(tif)
        return out

    def decode(self, path, ifd_offset):
        """The IFD's samples as libtiff decodes them: (samples, length, width), sub-byte and odd
        sizes unpacked most significant bit first into the next unsigned size."""
        tif = self.lib.TIFFOpen(path.encode(), b"r")
        if not tif:
            raise RuntimeError("libtiff cannot open the file")
        try:
            if not self.lib.TIFFSetSubDirectory(tif, ifd_offset):
                raise RuntimeError(f"libtiff cannot read the IFD at {ifd_offset}")
            f = {name: self._field(tif, name) for name in self.TAGS}
            if f["compression"] == 7 and f["photometric"] == 6:  # JPEG YCbCr: as RGB
                self.lib.TIFFSetField(ctypes.c_void_p(tif), ctypes.c_uint32(65538), ctypes.c_int(1))
            tiled = bool(self.lib.TIFFIsTiled(tif))
            width, length, spp, bps = f["width"], f["length"], f["spp"], f["bps"]
            seg_w = f["tile_width"] if tiled else width
            seg_h = f["tile_length"] if tiled else min(f["rps"], length)
            count = self.lib.TIFFNumberOfTiles(tif) if tiled else self.lib.TIFFNumberOfStrips(tif)
            size = self.lib.TIFFTileSize(tif) if tiled else self.lib.TIFFStripSize(tif)
            samples = spp if f["planar"] == 1 else 1
            nbytes = 1 if bps <= 8 else 2 if bps <= 16 else 4 if bps <= 32 else 8
            kind = {2: "i", 3: "f"}.get(f["sample_format"], "u") if bps in (8, 16, 32, 64) else "u"
            dtype = np.dtype(f"<{kind}{nbytes}")
            out = np.zeros((spp, length, width), dtype)
            across = -(-width // seg_w)
            down = -(-length // seg_h)
            buf = ctypes.create_string_buffer(size)
            for i in range(count):
                read = self.lib.TIFFReadEncodedTile if tiled else self.lib.TIFFReadEncodedStrip
                got = read(tif, i, buf, size)
                if got < 0:
                    raise RuntimeError(f"libtiff cannot decode segment {i}")
                plane, k = divmod(i, across * down)
                y0, x0 = (k // across) * seg_h, (k % across) * seg_w
                stride = -(-seg_w * samples * bps // 8)
                rows = min(seg_h, got // stride, length - y0)
                raw = np.frombuffer(buf.raw[:rows * stride], np.uint8).reshape(rows, stride)
                if bps in (8, 16, 32, 64):
                    values = raw.view(dtype).reshape(rows, seg_w, samples)
                elif bps % 8 != 0:
                    bits = np.unpackbits(raw, axis=1)[:, :seg_w * samples * bps]
                    bits = bits.reshape(rows, seg_w * samples, bps).astype(np.uint64)
                    weights = (1 << np.arange(bps - 1, -1, -1, dtype=np.uint64))
                    values = (bits * weights).sum(axis=2).astype(dtype).reshape(rows, seg_w, samples)
                else:
                    raise RuntimeError(f"{bps}-bit samples are not handled by this oracle")
                cols = min(seg_w, width - x0)
                planes = slice(None) if samples == spp else slice(plane, plane + 1)
                out[planes, y0:y0 + rows, x0:x0 + cols] = np.moveaxis(values[:, :cols, :], 2, 0)
            return out
        finally:
            self.lib.TIFFClose(tif)


LIBTIFF = Libtiff()


def gdal_ifd(path, page_index):
    """GDAL's pixels of main IFD `page_index`: (bands, length, width)."""
    from osgeo import gdal
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.Open(f"GTIFF_DIR:{page_index + 1}:{path}")
        if ds is None:
            raise RuntimeError(f"GDAL cannot open IFD {page_index}")
        data = ds.ReadAsArray()
        return data if data.ndim == 3 else data[np.newaxis]
    finally:
        gdal.PopErrorHandler()


def page_pixels(path, page):
    """One tifffile page decoded by libtiff (GDAL for old-style JPEG), in the page's axes."""
    if page.compression == 6:
        samples, who = gdal_ifd(path, page.index), "GDAL"
    else:
        samples, who = LIBTIFF.decode(path, page.offset), "libtiff"
    axes = page.axes
    if axes.endswith("S"):
        return np.moveaxis(samples, 0, -1), who
    if axes.startswith("S"):
        return samples, who
    return samples[0], who


def expected_level(path, series, level, shape):
    """(pixels in refzarr's (t, c, z, y, x), oracle name) of one series level."""
    import tifffile
    with tifffile.TiffFile(path) as tif:
        try:
            s = tif.series[series]
        except Exception as e:
            # tifffile cannot make series of the file (an IFD loop): libtiff walks it. Series 0
            # of a plain TIFF is the z stack of the uniform IFDs from IFD 0 on (docs/tiff.md).
            t, samples, z, length, width = shape
            found = [d for d in LIBTIFF.directories(path) if d[1:] == (width, length, samples)]
            if t != 1 or series != 0 or level != 0 or len(found) < z:
                raise RuntimeError(f"tifffile has no series ({e}) and libtiff has "
                                   f"{len(found)} IFDs of that shape") from e
            planes = [LIBTIFF.decode(path, d[0]) for d in found[:z]]
            return np.stack(planes, axis=1)[np.newaxis], "libtiff"
        if level >= len(s.levels):
            raise RuntimeError(f"tifffile has no level {level}")
        lv = s.levels[level]
        try:
            return c.as_tczyx(lv.asarray(), lv.axes), "tifffile"
        except Exception:
            pass  # no imagecodecs here: the codec is decoded by libtiff (or GDAL)
        pages = [page_pixels(path, p) for p in lv.pages]
        data = np.stack([p for p, _ in pages]).reshape(lv.shape)
        return c.as_tczyx(data, lv.axes), pages[0][1]


def compare(arr, tiffs, key):
    """None when the served array equals its oracle, else a message. Counts the oracle used."""
    m = re.match(r"(.+?\.(?:tif|tiff|svs|btf|tf8))/(\d+)/(\d+)$", key, re.IGNORECASE)
    if not m:
        return f"{key}: not a TIFF series level"
    path = os.path.join(tiffs, m.group(1))
    got = arr[...]
    try:
        want, who = expected_level(path, int(m.group(2)), int(m.group(3)), got.shape)
    except Exception as e:
        return f"{key}: no oracle reads it: {type(e).__name__}: {e}"
    ORACLES[who] = ORACLES.get(who, 0) + 1
    if who == "GDAL":
        GDAL_KEYS.append(key)
    if want is None or want.shape != got.shape:
        if want is not None and np.squeeze(want).shape == np.squeeze(got).shape:
            want, got = np.squeeze(want), np.squeeze(got)
        else:
            return f"{key}: shape {got.shape} but {who} {None if want is None else want.shape}"
    if want.dtype == np.bool_ and got.dtype == np.uint8:
        want = want.astype(np.uint8)  # 1-bit samples: tifffile's bool, refzarr's 0/1
    if got.dtype.newbyteorder("=") != want.dtype.newbyteorder("="):
        return f"{key}: dtype {got.dtype} but {who} {want.dtype}"
    if not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
        return f"{key}: {int(np.count_nonzero(got != want))} of {got.size} pixels differ from {who}"
    return None


ORACLES = {}
GDAL_KEYS = []


def check_outcomes(report, stderr):
    """Every refusal and failure is expected, named in the log and has a reason."""
    failures, refused, failed = [], {}, {}
    for f in report["files"]:
        if f["outcome"] == "failed":
            failed[f["group"]] = f["error"]
            if f["group"] not in stderr and f["path"] not in stderr:
                failures.append(f"{f['group']} failed without a message naming it")
        for r in f.get("refused", []):
            refused[f"{f['group']}/{r['path']}"] = r["reason"]
    for kind, got, expected in (("refused array", refused, EXPECTED_REFUSED),
                                ("failed file", failed, EXPECTED_FAILED)):
        for name, reason in sorted(got.items()):
            print(f"{kind}: {name}: {reason}")
            if not reason:
                failures.append(f"{kind} {name} has no reason")
            elif name not in expected:
                failures.append(f"unexpected {kind} {name}: {reason}")
            elif expected[name] not in reason:
                failures.append(f"{kind} {name}: reason {reason!r} lacks {expected[name]!r}")
        for name in sorted(set(expected) - set(got)):
            failures.append(f"expected {kind} {name} did not happen")
    return failures


def main():
    import fsspec
    import zarr
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    tiffs = os.path.join(c.env("REFZARR_SHARED_DIR"), "realdata", "tiff")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    index = os.path.join(work, "real.refs.db")
    try:
        done = subprocess.run([refzarr, "index", "--json", "-o", index, tiffs],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        sys.exit("refzarr index hung on the realdata TIFFs")
    if done.returncode not in (0, 1):
        sys.exit(f"refzarr index crashed (exit {done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    failures = check_outcomes(report, done.stderr)
    print(f"indexed {report['indexed']}, failed {report['failed']}, skipped {report['skipped']}")

    tally = c.Tally()
    with serve_e2e.Server(refzarr, index, 2, work) as server:
        root = zarr.open_group(fsspec.get_mapper(server.url("")), mode="r")
        served = set()
        for key, arr in c.walk_arrays(root):
            # fsspec lists names as the HTML listing spells them ('+' as %2B).
            key = urllib.parse.unquote(key)
            served.add(key)
            try:
                message = compare(arr, tiffs, key)
            except Exception as e:
                message = f"{key}: read failed: {type(e).__name__}: {e}"
            if message is not None and key in KNOWN_DIFFERENCES:
                print(f"  documented difference: {message}")
                message = None
            tally.add(message)
        for key in sorted(set(EXPECTED_REFUSED) & served):
            failures.append(f"refused array {key} is served")
        print("oracles: " + ", ".join(f"{n} {who}" for who, n in sorted(ORACLES.items())))
        if not any("ojpeg" in k for k in GDAL_KEYS):
            failures.append("no old-style JPEG array was compared with GDAL")
        for key in GDAL_KEYS:
            print(f"  equal to GDAL: {key}")
        # Every group's OME-NGFF 0.4 metadata validates against the official schemas.
        validators = c.ngff_validators(c.env("REFZARR_SHARED_DIR"), "0.4")
        checked = 0

        def groups(group, prefix=""):
            yield prefix, group
            for name, sub in sorted(group.groups()):
                yield from groups(sub, prefix + name + "/")
        for key, group in groups(root):
            problems, picks = c.validate_ngff(group.attrs.asdict(), validators, key or "/")
            failures += problems
            checked += bool(picks)
        print(f"OME-NGFF 0.4: {checked} groups validated")
        if checked < 10:
            failures.append(f"only {checked} OME-NGFF groups validated")
    failures += tally.finish("realdata", 60)
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
