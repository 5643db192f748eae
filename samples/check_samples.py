#!/usr/bin/python3
"""Checks refzarr-samples output against its manifest with two independent readers.

Runs the generator (REFZARR_SAMPLES_BIN) into a fresh folder (REFZARR_SAMPLES_OUT), then for every
file the manifest lists:
  * libtiff (`tiffinfo -D`) must read every IFD, SubIFDs included, and decode all data; the only
    tolerated errors are the deliberately missing tiles of sparse files;
  * tifffile must see the written number of pages with the right shapes and dtypes, and the series
    (axes, shape, dtype, name, pyramid levels) the generator intended;
  * pixel checksums: each lossless page and series level decoded by tifffile must match the
    generator's CRC-32; when tifffile lacks the codec here (LZW, zstd, float predictor: no
    imagecodecs), the page is decoded by libtiff instead (`tiffcp -c none`) and read back. JPEG pages
    are decoded by libtiff and only their shape is compared (lossy).
Files under bad/ must be rejected: tiffinfo fails, and tifffile raises or sees fewer IFDs.
Exits 1 with one line per failure naming the file.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy
import tifffile

failures = []
stats = {"files": 0, "pages_crc_tifffile": 0, "pages_crc_libtiff": 0, "pages_crc_tn3": 0, "series_crc": 0,
         "series_crc_skipped": 0, "lossy_pages": 0, "bad_rejected": 0}


def fail(path, message):
    failures.append(f"{path}: {message}")


def crc(array):
    a = numpy.ascontiguousarray(array)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    return zlib.crc32(a.tobytes()) & 0xFFFFFFFF


def squeeze(axes, shape):
    kept = [(a, n) for a, n in zip(axes, shape) if n != 1 or a in "XY"]
    return "".join(a for a, _ in kept), tuple(n for _, n in kept)


def missing_codec(exc):
    return isinstance(exc, ValueError) and "requires the 'imagecodecs' package" in str(exc)


def decode_float_predictor(tif, page):
    """Decodes a deflate + predictor 3 page by TIFF Technical Note 3, independently of libtiff.

    Each row of a tile or strip holds the bytes of its samples split into planes, most significant
    byte first, differenced bytewise with a stride of the samples per pixel.
    """
    import zlib as _zlib
    bps = page.bitspersample // 8
    spp = page.samplesperpixel if page.planarconfig == 1 else 1
    width = page.tilewidth if page.is_tiled else page.imagewidth
    length = page.tilelength if page.is_tiled else page.rowsperstrip
    out = numpy.zeros((page.imagelength, page.imagewidth * spp), dtype=f">f{bps}")
    across = -(-page.imagewidth // width) if page.is_tiled else 1
    fh = tif.filehandle
    for index, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
        fh.seek(offset)
        raw = numpy.frombuffer(_zlib.decompress(fh.read(count)), numpy.uint8)
        rows = raw.reshape(-1, width * spp * bps).astype(numpy.int64)
        rows = numpy.stack([numpy.cumsum(rows[:, k::spp], axis=1) for k in range(spp)], axis=2)
        rows = (rows.reshape(rows.shape[0], -1) % 256).astype(numpy.uint8)
        planes = rows.reshape(rows.shape[0], bps, width * spp)
        values = planes.transpose(0, 2, 1).copy().view(f">f{bps}").reshape(rows.shape[0], width * spp)
        y0, x0 = (index // across) * length, (index % across) * width * spp
        h = min(values.shape[0], page.imagelength - y0)
        w = min(values.shape[1], page.imagewidth * spp - x0)
        out[y0:y0 + h, x0:x0 + w] = values[:h, :w]
    return out.reshape(page.shape)


def tiffinfo(path):
    r = subprocess.run(["tiffinfo", "-D", path], capture_output=True, text=True)
    dirs = r.stdout.count("TIFF Directory at offset")
    errors = [l for l in r.stderr.splitlines() if l.strip()]
    return r.returncode, dirs, errors


class LibtiffDecoded:
    """The file re-encoded uncompressed by libtiff (tiffcp -c none), opened with tifffile."""

    def __init__(self, path, tmp):
        self.path, self.tmp, self.tif, self.error = path, tmp, None, None

    def page(self, i):
        if self.tif is None and self.error is None:
            out = os.path.join(self.tmp, "decoded.tif")
            r = subprocess.run(["tiffcp", "-c", "none", self.path, out], capture_output=True, text=True)
            if r.returncode != 0:
                self.error = f"tiffcp -c none failed: {r.stderr.strip()}"
            else:
                self.tif = tifffile.TiffFile(out)
        if self.error:
            raise RuntimeError(self.error)
        return self.tif.pages[i].asarray()

    def close(self):
        if self.tif is not None:
            self.tif.close()


def check_bad(path, entry):
    rc, dirs, errors = tiffinfo(path)
    if rc == 0 and dirs >= entry["ifds"]:
        fail(path, f"corrupt file read cleanly by libtiff (rc {rc}, {dirs} dirs)")
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) >= entry["ifds"]:
                fail(path, f"corrupt file read cleanly by tifffile ({len(tif.pages)} pages)")
    except Exception:  # noqa: BLE001 - any clean exception is the expected outcome
        pass
    stats["bad_rejected"] += 1


def check_libtiff(path, entry):
    rc, dirs, errors = tiffinfo(path)
    expected_dirs = entry["ifds"] + sum(p["subifds"] for p in entry["pages"])
    if dirs != expected_dirs:
        fail(path, f"tiffinfo lists {dirs} directories, expected {expected_dirs}")
    skipped = set()
    for p in entry["pages"]:
        skipped |= set(p["skipped_chunks"])
    unexpected = []
    for line in errors:
        if "Invalid tile byte count, tile" in line and int(line.rsplit(" ", 1)[1].rstrip(".")) in skipped:
            continue  # libtiff has no sparse-tile support: reading an unwritten tile is an error
        if "Cannot display data: th * rowsize > tilesize" in line:
            continue  # tiffinfo -D cannot dump subsampled YCbCr JPEG tiles raw; tiffcp decodes them
        unexpected.append(line)
    if unexpected:
        fail(path, f"tiffinfo -D errors: {unexpected[:3]}")
    if rc != 0 and not skipped:
        fail(path, f"tiffinfo -D exited {rc}")


def check_tifffile(path, entry, tmp):
    decoded = LibtiffDecoded(path, tmp)
    try:
        with tifffile.TiffFile(path) as tif:
            if tif.is_bigtiff != entry["bigtiff"]:
                fail(path, f"bigtiff {tif.is_bigtiff}, expected {entry['bigtiff']}")
            if tif.byteorder != entry["byte_order"]:
                fail(path, f"byte order {tif.byteorder}, expected {entry['byte_order']}")
            if len(tif.pages) != entry["ifds"]:
                fail(path, f"tifffile sees {len(tif.pages)} pages, expected {entry['ifds']}")
                return
            for i, want in enumerate(entry["pages"]):
                page = tif.pages[i]
                page = page.aspage() if hasattr(page, "aspage") else page
                if list(page.shape) != want["shape"] or page.dtype.name != want["dtype"]:
                    fail(path, f"page {i}: {page.shape} {page.dtype}, expected {want['shape']} {want['dtype']}")
                    continue
                if want["crc32"] is None:  # lossy: libtiff must decode it to the right shape
                    stats["lossy_pages"] += 1
                    try:
                        shape = list(decoded.page(i).shape)
                    except Exception as exc:  # noqa: BLE001
                        fail(path, f"page {i}: libtiff cannot decode: {exc}")
                        continue
                    if shape != want["shape"]:
                        fail(path, f"page {i}: libtiff decodes shape {shape}, expected {want['shape']}")
                    continue
                try:
                    got = crc(page.asarray())
                    stats["pages_crc_tifffile"] += 1
                except Exception as exc:  # noqa: BLE001
                    if not missing_codec(exc):
                        fail(path, f"page {i}: tifffile cannot decode: {exc}")
                        continue
                    if page.predictor == 3 and page.compression in (8, 32946) and page.planarconfig == 1:
                        spec = crc(decode_float_predictor(tif, page))
                        stats["pages_crc_tn3"] += 1
                        if spec != want["crc32"]:
                            fail(path, f"page {i}: TN3 decode CRC-32 {spec:08x}, expected {want['crc32']:08x}")
                    try:
                        got = crc(decoded.page(i))
                    except Exception as exc2:  # noqa: BLE001
                        fail(path, f"page {i}: libtiff cannot decode: {exc2}")
                        continue
                    stats["pages_crc_libtiff"] += 1
                if got != want["crc32"]:
                    fail(path, f"page {i}: pixel CRC-32 {got:08x}, expected {want['crc32']:08x}")

            series = tif.series
            if len(series) != len(entry["series"]):
                fail(path, f"tifffile finds {len(series)} series, expected {len(entry['series'])}")
                return
            for k, (s, want) in enumerate(zip(series, entry["series"])):
                axes, shape = squeeze(want["axes"], want["levels"][0]["shape"])
                if (s.axes, tuple(s.shape)) != (axes, shape) or s.dtype.name != want["dtype"]:
                    fail(path, f"series {k}: {s.axes} {s.shape} {s.dtype}, expected {axes} {shape} {want['dtype']}")
                    continue
                if "name" in want and s.name != want["name"]:
                    fail(path, f"series {k}: name {s.name!r}, expected {want['name']!r}")
                if len(s.levels) != len(want["levels"]):
                    fail(path, f"series {k}: {len(s.levels)} levels, expected {len(want['levels'])}")
                    continue
                for l, (level, wl) in enumerate(zip(s.levels, want["levels"])):
                    _, lshape = squeeze(want["axes"], wl["shape"])
                    if tuple(level.shape) != lshape:
                        fail(path, f"series {k} level {l}: shape {level.shape}, expected {lshape}")
                        continue
                    if wl["crc32"] is None:
                        continue
                    try:
                        got = crc(level.asarray())
                    except Exception as exc:  # noqa: BLE001
                        if missing_codec(exc):
                            stats["series_crc_skipped"] += 1
                        else:
                            fail(path, f"series {k} level {l}: tifffile cannot decode: {exc}")
                        continue
                    stats["series_crc"] += 1
                    if got != wl["crc32"]:
                        fail(path, f"series {k} level {l}: pixel CRC-32 {got:08x}, expected {wl['crc32']:08x}")
    except Exception as exc:  # noqa: BLE001
        fail(path, f"tifffile failed: {type(exc).__name__}: {exc}")
    finally:
        decoded.close()


def main():
    binary = os.environ["REFZARR_SAMPLES_BIN"]
    out = os.environ.get("REFZARR_SAMPLES_OUT") or tempfile.mkdtemp(prefix="refzarr-samples-")
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([binary, "--quiet", out], check=True)
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    on_disk = {os.path.relpath(os.path.join(d, n), out) for d, _, names in os.walk(out) for n in names}
    listed = {e["path"] for e in manifest["files"]}
    if on_disk - listed - {"manifest.json"}:
        fail(out, f"files not in the manifest: {sorted(on_disk - listed - {'manifest.json'})}")
    total = sum(e["size_bytes"] for e in manifest["files"])
    if total > 10 * 1024 * 1024:
        fail(out, f"sample set is {total} bytes, over the 10 MiB budget")
    for entry in manifest["files"]:
        path = os.path.join(out, entry["path"])
        stats["files"] += 1
        if not os.path.exists(path):
            fail(entry["path"], "listed in the manifest but not written")
            continue
        if entry["bad"]:
            check_bad(path, entry)
            continue
        check_libtiff(path, entry)
        with tempfile.TemporaryDirectory() as tmp:
            check_tifffile(path, entry, tmp)
    print(" ".join(f"{k}={v}" for k, v in stats.items()))
    for line in failures:
        print("FAIL", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
