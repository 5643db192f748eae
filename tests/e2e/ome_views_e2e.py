#!/usr/bin/python3
"""OME-TIFF / ImageJ / SVS / COG views end to end.

Indexes the microscopy and slide samples and the realdata OME/COG TIFFs, serves the index as Zarr v2
(OME-NGFF 0.4) and v3 (0.5), and checks with independent readers:
  - tifffile's `series` (count, axes -> (t, c, z, y, x) shape, pyramid level shapes) agree with the
    view, except for the documented differences (docs/tiff.md);
  - every level array read by zarr-python over HTTP equals tifffile's level, or GDAL's decoding of
    the level's IFD where tifffile lacks the codec (JPEG, LZW, WebP without imagecodecs);
  - every group's .zattrs (v2) and zarr.json attributes (v3) validate against the official OME-NGFF
    schemas with validate_ngff.py (strict image schemas where the data allows).
Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_SHARED_DIR, REFZARR_VALIDATE_NGFF, REFZARR_WORK.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import tifffile
import zarr
import fsspec

AXIS_TO_TCZYX = {"T": 0, "C": 1, "S": 1, "Z": 2, "I": 2, "Q": 2, "Y": 3, "X": 4}

SAMPLE_FILES = [
    "ome/multiseries_2images.ome.tif", "ome/shuffled_planes.ome.tif",
    "ome/pyramid_subifds.ome.tif", "ome/multifile/multifile_z0.ome.tif",
    "ome/multifile/multifile_z1.ome.tif", "ome/multifile/multifile_z2.ome.tif",
    "imagej/hyperstack_u16_t4_z3_c2_be.tif", "svs/aperio_style_jpeg_pyramid.svs",
    "pyramids/u16_subifd_pyramid_deflate.tif", "pyramids/u8_cog_reduced_ifds.tif",
    "stacks/u16_zstack_10pages_deflate.tif", "stacks/two_series_u8_u16.tif",
]
REALDATA_FILES = [
    "tlnagy+OMETIFF.jl/test/testdata/singles/multi-channel-z-series.ome.tif",
    "tlnagy+OMETIFF.jl/test/testdata/singles/181003_multi_pos_time_course_1_MMStack.ome.tif",
    "tlnagy+OMETIFF.jl/test/testdata/multiples/master/multifile-Z1.ome.tiff",
    "tlnagy+OMETIFF.jl/test/testdata/multiples/master/multifile-Z2.ome.tiff",
    "rasterio+rasterio/tests/data/cogeo.tif",
    "cogeotiff+rio-cogeo/tests/fixtures/image_web_z5_z11.tif",
    "cogeotiff+rio-cogeo/tests/fixtures/image_rgb_mask.tif",
    "fsspec+kerchunk/tests/lcmap_tiny_cog_2019.tif",
    "image-rs+image-tiff/tests/geotiff/usda_naip_256_webp_z3.tif",
]
# Series names refzarr gives deliberately otherwise than tifffile (docs/tiff.md).
NAME_DIFFERENCES = {("svs", "Thumbnail"): "thumbnail", ("svs", "Label"): "label",
                    ("svs", "Macro"): "macro"}


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"missing environment variable {name}")
    return value


class Server:
    def __init__(self, refzarr, index, zarr_format, work):
        self.log = os.path.join(work, f"serve-v{zarr_format}.err")
        self.args = [refzarr, "serve", index, "--port", "0", "--zarr-format", str(zarr_format)]

    def __enter__(self):
        self.err = open(self.log, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        end = time.time() + 15
        while time.time() < end:
            m = re.search(r"on http://127\.0\.0\.1:(\d+)/", open(self.log).read())
            if m:
                self.base = f"http://127.0.0.1:{m.group(1)}/"
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        sys.exit("refzarr serve did not start: " + open(self.log).read())

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.err.close()

    def get_json(self, key):
        try:
            with urllib.request.urlopen(self.base + urllib.request.quote(key), timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise


def as_tczyx_shape(shape, axes):
    out = [1] * 5
    for n, a in zip(shape, axes):
        if a not in AXIS_TO_TCZYX:
            return None
        out[AXIS_TO_TCZYX[a]] *= n
    return tuple(out)


def as_tczyx(data, axes):
    targets = [AXIS_TO_TCZYX[a] for a in axes]
    order = sorted(range(len(axes)), key=lambda i: targets[i])
    return np.transpose(data, order).reshape(as_tczyx_shape(data.shape, axes))


def gdal_level(path, level):
    """The level's pixels decoded by GDAL from its IFD (single-page, main-chain levels only)."""
    from osgeo import gdal
    if len(level.pages) != 1 or level.pages[0] is None:
        return None
    page = level.keyframe
    if not isinstance(page.index, int):
        return None  # a SubIFD: GDAL cannot address it
    ds = gdal.Open(f"GTIFF_DIR:{page.index + 1}:{path}")
    if ds is None:
        return None
    data = ds.ReadAsArray()
    if data.ndim == 2:
        data = data[np.newaxis]
    return data.reshape((1, data.shape[0], 1) + data.shape[1:])


def check_file(root, group, path, failures, counts):
    with tifffile.TiffFile(path) as tif:
        series = tif.series
        kind = series[0].kind if series else ""
        for s_index, s in enumerate(series):
            key = f"{group}/{s_index}"
            if key not in root:
                failures.append(f"{key}: tifffile has series {s_index} ({s.axes} {s.shape}), "
                                f"refzarr has none")
                continue
            node = root[key]
            want_name = NAME_DIFFERENCES.get((kind, s.name), s.name)
            ms = node.attrs.get("multiscales", [{}])[0]
            if want_name and kind in ("ome", "svs") and ms.get("name", "") != want_name:
                failures.append(f"{key}: name {ms.get('name')!r}, tifffile {s.name!r}")
            if len(s.levels) != len(ms.get("datasets", [])):
                failures.append(f"{key}: {len(ms.get('datasets', []))} levels, tifffile "
                                f"{len(s.levels)}")
            for k, level in enumerate(s.levels):
                lkey = f"{key}/{k}"
                if str(k) not in node:
                    failures.append(f"{lkey}: missing")
                    continue
                arr = node[str(k)]
                want_shape = as_tczyx_shape(level.shape, level.axes)
                if tuple(arr.shape) != want_shape:
                    failures.append(f"{lkey}: shape {arr.shape}, tifffile {level.axes} "
                                    f"{level.shape} -> {want_shape}")
                    continue
                try:
                    want = as_tczyx(level.asarray(), level.axes)
                    oracle = "tifffile"
                except Exception:
                    want = gdal_level(path, level)
                    oracle = "GDAL"
                if want is None:
                    counts["skipped"].append(f"{lkey}: no oracle can decode it")
                    continue
                got = arr[...]
                if not np.array_equal(got, want.astype(got.dtype, copy=False)):
                    bad = np.count_nonzero(got != want)
                    failures.append(f"{lkey}: {bad} of {got.size} pixels differ from {oracle}")
                else:
                    counts[oracle] += 1
        extra = [k for k in root[group].group_keys() if k.isdigit() and int(k) >= len(series)]
        for k in extra:
            failures.append(f"{group}/{k}: refzarr has a series tifffile does not")


def write_imagej_with_luts(path, byteorder):
    """A 2-z, 3-channel uint16 ImageJ hyperstack with one LUT per channel and ranges for two."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.arange(2 * 3 * 16 * 16, dtype=np.uint16).reshape(2, 3, 16, 16)
    luts = []
    for rgb in ((255, 0, 255), (0, 200, 50), (10, 20, 30)):
        luts.append(np.stack([np.linspace(0, v, 256).astype(np.uint8) for v in rgb]))
    tifffile.imwrite(path, data, imagej=True, byteorder=byteorder,
                     metadata={"axes": "ZCYX", "LUTs": luts, "mode": "composite",
                               "Ranges": (1.0, 100.0, 5.0, 500.0, 0.0, 0.0)})


def check_imagej_channels(zattrs, path, rel, failures):
    """omero channel colours and windows against tifffile's reading of the IJMetadata tag."""
    with tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata
        pixels, axes = tif.series[0].asarray(), tif.series[0].axes
    luts, ranges = meta["LUTs"], meta["Ranges"]
    channels = (zattrs or {}).get("omero", {}).get("channels", [])
    if len(channels) != len(luts):
        failures.append(f"{rel}: {len(channels)} omero channels, tifffile reads {len(luts)} LUTs")
        return
    for c, (channel, lut) in enumerate(zip(channels, luts)):
        color = "%02X%02X%02X" % tuple(int(v) for v in lut[:, 255])
        if channel["color"] != color:
            failures.append(f"{rel}: channel {c} colour {channel['color']}, LUT ends at {color}")
        low, high = ranges[2 * c], ranges[2 * c + 1]
        window = channel["window"]
        if high > low:
            expected = (low, high)
        else:
            # No range in the file: the percentiles of the middle z plane of the channel
            # (docs/ome.md, display windows); the hyperstack has one level.
            plane = np.take(np.take(pixels, pixels.shape[axes.index("Z")] // 2, axes.index("Z")),
                            c, axes.replace("Z", "").index("C"))
            expected = tuple(np.percentile(plane.astype(np.float64), [0.1, 99.9]).tolist())
        if not np.allclose((window["start"], window["end"]), expected, rtol=0, atol=1e-6):
            failures.append(f"{rel}: channel {c} window {window}, expected {expected}")


def validate(validator, schemas, files, strict, failures, label):
    args = ["/usr/bin/python3", validator, "--schemas", schemas] + (["--strict"] if strict else [])
    r = subprocess.run(args + files, capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"{label}: validation failed:\n{r.stdout}{r.stderr}")
    return r.returncode == 0


def main():
    refzarr, samples_bin = env("REFZARR_BIN"), env("REFZARR_SAMPLES_BIN")
    shared, validator = env("REFZARR_SHARED_DIR"), env("REFZARR_VALIDATE_NGFF")
    work = tempfile.mkdtemp(prefix="ome_views_", dir=os.environ.get("REFZARR_WORK"))
    try:
        samples = os.path.join(work, "samples")
        subprocess.run([samples_bin, samples, "-q"], check=True)
        # One folder: samples under s/, realdata under r/ (symlinks keep multi-file sets together).
        tree = os.path.join(work, "tree")
        inputs = {}
        for rel in SAMPLE_FILES:
            inputs["s/" + rel] = os.path.join(samples, rel)
        realdata = os.path.join(shared, "realdata", "tiff")
        for rel in REALDATA_FILES:
            if os.path.exists(os.path.join(realdata, rel)):
                inputs["r/" + rel] = os.path.join(realdata, rel)
        for rel, src in inputs.items():
            dst = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(src, dst)
        for rel in REALDATA_FILES:  # members of the multi-file set, not checked themselves
            if "multiples/master" in rel:
                folder = os.path.dirname(os.path.join(realdata, rel))
                for name in os.listdir(folder):
                    dst = os.path.join(tree, "r", os.path.dirname(rel), name)
                    if not os.path.exists(dst):
                        os.symlink(os.path.join(folder, name), dst)
        # ImageJ hyperstacks with channel LUTs and display ranges, written by tifffile in both
        # byte orders: their omero channels must carry the same colours and windows.
        ij_files = {}
        for order in "<>":
            rel = f"w/imagej_luts_{'le' if order == '<' else 'be'}.tif"
            path = os.path.join(tree, rel)
            write_imagej_with_luts(path, order)
            inputs[rel] = path
            ij_files[rel] = path
        index = os.path.join(work, "views.refs.db")
        r = subprocess.run([refzarr, "index", "-o", index, tree], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"refzarr index failed:\n{r.stdout}{r.stderr}")
        failures = []
        counts = {"tifffile": 0, "GDAL": 0, "skipped": []}
        with Server(refzarr, index, 2, work) as v2, Server(refzarr, index, 3, work) as v3:
            root = zarr.open_group(fsspec.get_mapper(v2.base), mode="r")
            for rel, src in inputs.items():
                check_file(root, rel, src, failures, counts)
            for rel, path in ij_files.items():
                check_imagej_channels(v2.get_json(rel + "/0/.zattrs"), path, rel, failures)
            # Metadata of every group under each checked file, both versions.
            docs = os.path.join(work, "docs")
            os.makedirs(docs)
            v2_files, v2_strict, v3_files, v3_strict = [], [], [], []
            for rel in inputs:
                groups = [rel] + [f"{rel}/{k}" for k in root[rel].group_keys()]
                for g in groups:
                    base = os.path.join(docs, g.replace("/", "__"))
                    zattrs, zjson = v2.get_json(g + "/.zattrs"), v3.get_json(g + "/zarr.json")
                    if zattrs is None or zjson is None:
                        failures.append(f"{g}: .zattrs {zattrs is not None}, zarr.json "
                                        f"{zjson is not None}")
                        continue
                    json.dump(zattrs, open(base + ".zattrs", "w"))
                    json.dump(zjson, open(base + ".zarr.json", "w"))
                    image = "multiscales" in zattrs
                    (v2_strict if image else v2_files).append(base + ".zattrs")
                    (v3_strict if image else v3_files).append(base + ".zarr.json")
            validate(validator, os.path.join(shared, "schemas"), v2_files + v3_files, False,
                     failures, "bf2raw/OME groups")
            validate(validator, os.path.join(shared, "schemas"), v2_strict + v3_strict, False,
                     failures, "images")
            # Images also pass the strict schema (name, type and metadata of every multiscale).
            validate(validator, os.path.join(shared, "schemas"), v2_strict + v3_strict, True,
                     failures, "images (strict)")
            print(f"validated {len(v2_files) + len(v2_strict)} v2 .zattrs and "
                  f"{len(v3_files) + len(v3_strict)} v3 zarr.json ({len(v2_strict)} + "
                  f"{len(v3_strict)} images, strict)")
        print(f"{len(inputs)} files: {counts['tifffile']} levels equal to tifffile, "
              f"{counts['GDAL']} equal to GDAL, {len(counts['skipped'])} skipped")
        for s in counts["skipped"]:
            print("  skip " + s)
        for f in failures:
            print("FAIL " + f)
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
