"""End to end: `refzarr info` (text and --json), `ls -l`, `refzarr thumbnail` and the display windows
the index gives, checked against independent readers: h5py for the HDF5 images (Imaris,
BigDataViewer: levels, dtype, chunks), tifffile (shapes, dtypes, tiles, pixels;
libtiff's tiffcp or GDAL where tifffile lacks a codec), numpy (percentiles, the composite a
thumbnail must be) and PIL (decodes the PNG). The samples come from refzarr-samples, a realdata
OME-TIFF and COG from the shared corpus, and TIFFs written here by tifffile for each window source.
Usage: REFZARR_BIN=... REFZARR_SAMPLES_BIN=... REFZARR_HDF5_SAMPLES_BIN=... REFZARR_SHARED_DIR=... REFZARR_WORK=... info_thumbnail_e2e.py"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import tifffile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli", "http"))
import e2e_common as c  # noqa: E402

try:
    from PIL import Image
except ImportError:
    sys.exit("PIL (Debian's python3-pil) is needed to decode the thumbnails")

REFZARR = c.env("REFZARR_BIN")
SAMPLES_BIN = c.env("REFZARR_SAMPLES_BIN")
HDF5_SAMPLES_BIN = c.env("REFZARR_HDF5_SAMPLES_BIN")
SHARED = c.env("REFZARR_SHARED_DIR")
WORK = c.env("REFZARR_WORK")
problems = []


def fail(message):
    problems.append(message)
    print("FAIL:", message)


def run(*args, check=True):
    done = subprocess.run([REFZARR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and done.returncode != 0:
        sys.exit(f"refzarr {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def tczyx_shape(shape, axes):
    out = [1] * 5
    for size, axis in zip(shape, axes):
        out[c.AXIS_TO_TCZYX[axis]] *= size
    return out


# ---- the archive: samples, two realdata files, and TIFFs for each window source ----------------

shutil.rmtree(WORK, ignore_errors=True)  # never an index left by an older build
samples = os.path.join(WORK, "samples")
subprocess.run([SAMPLES_BIN, samples], check=True, stdout=subprocess.DEVNULL)
realdata = os.path.join(SHARED, "realdata", "tiff")
REAL = {
    "real/multi-channel-z-series.ome.tif":
        os.path.join(realdata, "tlnagy+OMETIFF.jl/test/testdata/singles/multi-channel-z-series.ome.tif"),
    "real/cogeo.tif": os.path.join(realdata, "rasterio+rasterio/tests/data/cogeo.tif"),
    "real/webp_rgba.tif":
        os.path.join(realdata, "libsdl-org+libtiff/test/images/webp_lossless_rgba_alpha_fully_opaque.tif"),
}
os.makedirs(os.path.join(samples, "real"))
for name, path in REAL.items():
    if not os.path.exists(path):
        sys.exit(f"realdata file missing: {path}")
    shutil.copy(path, os.path.join(samples, name))  # into the work tree only, never the repo

# The HDF5 samples: a BigDataViewer file (with its XML) and an Imaris file are images.
subprocess.run([HDF5_SAMPLES_BIN, os.path.join(samples, "hdf5")], check=True, stdout=subprocess.DEVNULL)

windows = os.path.join(samples, "windows")
os.makedirs(windows)
rng = np.random.default_rng(13)
yy, xx = np.mgrid[0:96, 0:80]
# 12-bit camera data: 0..4095 in uint16; SignificantBits says so.
sig = (np.stack([yy * 40 + xx * 3, 4095 - yy * 40]) + rng.integers(0, 60, (2, 96, 80))).clip(0, 4095)
tifffile.imwrite(os.path.join(windows, "sigbits12.ome.tif"), sig.astype(np.uint16), tile=(32, 32),
                 compression="zlib", metadata={"axes": "CYX", "SignificantBits": 12})
# 12-bit data with no word on its range, a z stack whose planes differ: percentiles of the middle z.
stack = np.stack([(yy * 10 + xx + 500 * z + rng.integers(0, 200, (96, 80))) for z in range(5)])
tifffile.imwrite(os.path.join(windows, "camera12_stack.tif"), stack.astype(np.uint16),
                 metadata=None)
# The range in SMinSampleValue / SMaxSampleValue (tags 340, 341).
tifffile.imwrite(os.path.join(windows, "sminmax.tif"), (yy * 30 + xx).astype(np.uint16),
                 metadata=None, extratags=[(340, "H", 1, 200, True), (341, "H", 1, 3000, True)])

index = os.path.join(WORK, "all.refs.db")
subprocess.run([REFZARR, "index", "-o", index, samples], stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
if not os.path.exists(index):
    sys.exit("refzarr index wrote no index")

info = json.loads(run("info", index, "--json", "--limit", "0").stdout)
images = {im["path"]: im for im in info["image_list"]}
if len(images) != info["images"] or info["images_truncated"]:
    fail(f"info --limit 0 lists {len(images)} images of {info['images']}")

# ---- info --json against tifffile: every TIFF image's levels, dtype and tiles ------------------

checked = 0
for path, im in sorted(images.items()):
    file_group, series = path.rsplit("/", 1)
    source = os.path.join(samples, file_group)
    if not os.path.isfile(source) or not series.isdigit() or im["scanner"] != "tiff":
        continue  # the HDF5 images are checked against h5py below
    try:
        tif = tifffile.TiffFile(source)
    except Exception as e:
        fail(f"{path}: tifffile cannot open {file_group}: {e}")
        continue
    with tif:
        if int(series) >= len(tif.series):
            continue  # multi-file members read alone (samples/README.md: tifffile ignores BinaryOnly)
        s = tif.series[int(series)]
        if len(s.levels) != len(im["levels"]):
            # tifffile 2023.2 and refzarr agree on pyramids of SubIFDs and reduced IFDs alike.
            fail(f"{path}: {len(im['levels'])} levels, tifffile {len(s.levels)}")
            continue
        for lv, mine in zip(s.levels, im["levels"]):
            want = tczyx_shape(lv.shape, lv.axes)
            if mine["shape"] != want:
                fail(f"{path}/{mine['path']}: shape {mine['shape']}, tifffile {want} ({lv.axes})")
        served = np.dtype(im["dtype"]).newbyteorder("=")
        if served != s.dtype.newbyteorder("=") and not (s.dtype == np.bool_ and served == np.uint8):
            # (1-bit samples are served unpacked as uint8 0/1)
            fail(f"{path}: dtype {im['dtype']}, tifffile {s.dtype}")
        page = s.keyframe
        want_chunks = [page.tilelength, page.tilewidth] if page.is_tiled else \
            [min(page.rowsperstrip, page.imagelength), page.imagewidth]
        if not page.is_tiled and page.compression == 1 and len(page.dataoffsets) == 1 and \
                page.planarconfig == 1:
            # libtiff chops one uncompressed strip into strips of about 8 KiB (docs/tiff.md):
            # ChopUpSingleUncompressedStrip's rows per strip.
            row_bytes = page.imagewidth * page.samplesperpixel * page.bitspersample // 8
            rows = 8192 // row_bytes if row_bytes <= 8192 else 1
            if 0 < rows < want_chunks[0]:
                want_chunks[0] = rows
        if im["chunks"][3:] != want_chunks:
            fail(f"{path}: chunks {im['chunks']}, tifffile tiles/strips {want_chunks}")
        sizes = {a["name"]: a["size"] for a in im["axes"]}
        if [sizes[a] for a in "tczyx"] != im["levels"][0]["shape"]:
            fail(f"{path}: axes sizes {sizes} are not level 0's shape")
        if im["source"] != source or im["scanner"] != "tiff" or im["stale"]:
            fail(f"{path}: source {im['source']} scanner {im['scanner']} stale {im['stale']}")
        checked += 1
if checked < 40:
    fail(f"only {checked} images checked against tifffile")
for name in REAL:
    if f"{name}/0" not in images:
        fail(f"realdata {name} has no image in info")

# ---- info --json against h5py: the HDF5 images' levels, dtype and chunks ------------------------
# hdf5_image_oracle assembles each level from the datasets the format's layout names (Imaris:
# DataSet/ResolutionLevel r/TimePoint t/Channel c/Data cropped to its stated size; BigDataViewer:
# tNNNNN/sNN/<level>/cells); the chunks are those datasets' own.
h5py = c._h5py()
HDF5_IMAGES = {"hdf5/sample.ims/0": "DataSet/ResolutionLevel {level}/TimePoint 0/Channel 0/Data",
               "hdf5/bdv.h5/0": "t00000/s00/{level}/cells"}
for path, dataset in HDF5_IMAGES.items():
    im = images.get(path)
    if im is None:
        fail(f"{path}: not an image in info ({sorted(p for p in images if p.startswith('hdf5/'))})")
        continue
    source = os.path.join(samples, path.rsplit("/", 1)[0])
    if im["source"] != source or im["scanner"] != "hdf5" or im["stale"]:
        fail(f"{path}: source {im['source']} scanner {im['scanner']} stale {im['stale']}")
    for level, mine in enumerate(im["levels"]):
        try:
            want = c.hdf5_image_oracle(source, 0, level)
        except c.OracleUnavailable as e:
            fail(f"{path} level {level}: {e}")
            continue
        if mine["shape"] != list(want.shape):
            fail(f"{path}/{mine['path']}: shape {mine['shape']}, h5py {list(want.shape)}")
        with h5py.File(source, "r") as f:
            ds = f[dataset.format(level=level)]
            if mine["chunks"][2:] != list(ds.chunks):
                fail(f"{path}/{mine['path']}: chunks {mine['chunks']}, h5py {ds.chunks}")
    if np.dtype(im["dtype"]).newbyteorder("=") != want.dtype.newbyteorder("="):
        fail(f"{path}: dtype {im['dtype']}, h5py {want.dtype}")
    if len(im["levels"]) < 2:
        fail(f"{path}: {len(im['levels'])} levels; the sample has a pyramid")
    sizes = {a["name"]: a["size"] for a in im["axes"]}
    if [sizes[a] for a in "tczyx"] != im["levels"][0]["shape"]:
        fail(f"{path}: axes sizes {sizes} are not level 0's shape")
    if len(im["channels"]) != im["levels"][0]["shape"][1]:
        fail(f"{path}: {len(im['channels'])} channels for c = {im['levels'][0]['shape'][1]}")
    checked += 1

# Physical scales and units: the OME sample says 0.325 x 0.325 x 1.5 micrometre.
ome = images.get("ome/multiseries_2images.ome.tif/0")
axes = {a["name"]: a for a in ome["axes"]} if ome else {}
if not ome or axes["x"].get("unit") != "micrometer" or abs(axes["x"]["scale"] - 0.325) > 1e-9 \
        or abs(axes["z"]["scale"] - 1.5) > 1e-9:
    fail(f"OME sample axes: {ome and ome['axes']}")
# Codecs: LZW is stored as imagecodecs_lzw and served transcoded as blosc.
lzw = images["stripped/u16_lzw_pred2_rps7.tif/0"]
if "lzw" not in lzw["stored_codec"] or not lzw["served_codec"].startswith("blosc") or not lzw["transcoded"]:
    fail(f"LZW codecs: {lzw['stored_codec']} / {lzw['served_codec']}")
deflate = images["bigtiff/u16_tiled_deflate_le.tif/0"]
if deflate["stored_codec"] != "zlib" or deflate["served_codec"] != "zlib" or deflate["transcoded"]:
    fail(f"deflate codecs: {deflate['stored_codec']} / {deflate['served_codec']}")

# ---- display windows: from the file, else the percentiles of the smallest level ---------------


def window_of(path, channel=0):
    ch = images[path]["channels"][channel]
    return ch["window"], ch["window_source"]


for ch in range(2):
    w, src = window_of("windows/sigbits12.ome.tif/0", ch)
    if w != [0, 4095] or "SignificantBits=12" not in src:
        fail(f"SignificantBits 12: channel {ch} window {w} from {src}")
w, src = window_of("windows/sminmax.tif/0")
if w != [200, 3000] or "SMinSampleValue" not in src:
    fail(f"SMin/SMaxSampleValue: window {w} from {src}")
w, src = window_of("windows/camera12_stack.tif/0")
want = np.percentile(stack[2].astype(np.float64), [0.1, 99.9])
if not np.allclose(w, want, rtol=0, atol=1e-6) or not src.startswith("percentiles"):
    fail(f"12-bit stack: window {w} from {src}, numpy's percentiles of z 2 {want.tolist()}")
# A pyramid sample: the smallest level, tifffile's pixels.
with tifffile.TiffFile(os.path.join(samples, "pyramids/u16_subifd_pyramid_deflate.tif")) as tif:
    smallest = tif.series[0].levels[-1].asarray().astype(np.float64)
w, src = window_of("pyramids/u16_subifd_pyramid_deflate.tif/0")
want = np.percentile(smallest, [0.1, 99.9])
if not np.allclose(w, want, rtol=0, atol=1e-6) or "level 2" not in src:
    fail(f"pyramid: window {w} from {src}, numpy's percentiles of the smallest level {want.tolist()}")
# 8-bit data keeps 0-255.
w, src = window_of("rgb/rgb_u8_chunky_tiled_none.tif/0")
if w != [0, 255]:
    fail(f"uint8 RGB: window {w} from {src}")

# --no-data-windows: the windows files state stay, the rest get the dtype's range and no
# percentiles are read, whether the scans run in workers or in the indexing process.
for mode in ([], ["--in-process"]):
    plain = os.path.join(WORK, f"no-data-windows{'-'.join([''] + mode)}.refs.db")
    run("index", "-o", plain, windows, "--no-data-windows", *mode)
    stated = {im["path"]: im for im in json.loads(run("info", plain, "--json").stdout)["image_list"]}
    for ch in range(2):
        w = stated["sigbits12.ome.tif/0"]["channels"][ch]
        if w["window"] != [0, 4095] or "SignificantBits=12" not in w["window_source"]:
            fail(f"--no-data-windows {mode}: SignificantBits window {w}")
    w = stated["camera12_stack.tif/0"]["channels"][0]
    if w["window"] != [0, 65535] or w["window_source"].startswith("percentiles"):
        fail(f"--no-data-windows {mode}: a window from the data: {w}")

# ---- info as text, ls -l ----------------------------------------------------------------------

text = run("info", index, "pyramids/u16_subifd_pyramid_deflate.tif").stdout
for needle in ["image pyramids/u16_subifd_pyramid_deflate.tif/0", "dtype:    uint16",
               "level 2:  1 x 1 x 1 x 48 x 64", "(tiff scanner), ok", "window",
               "percentiles 0.1/99.9 of level 2"]:
    if needle not in text:
        fail(f"info PATH lacks {needle!r}:\n{text}")
summary = run("info", index, "--limit", "3").stdout
if "index:" not in summary or summary.count("\nimage ") != 3 or "more images" not in summary:
    fail(f"info without PATH: summary, 3 images and a note expected:\n{summary}")
missing = run("info", index, "no/such/path", check=False)
if missing.returncode != 1 or "no/such/path" not in missing.stderr:
    fail(f"info of a missing path: exit {missing.returncode}, {missing.stderr!r}")

listing = run("ls", "-l", index, "pyramids/u16_subifd_pyramid_deflate.tif/0").stdout.splitlines()
kinds = {line.split()[-1]: (line.split()[0], line.split()[1]) for line in listing}
zattrs = run("cat", index, "pyramids/u16_subifd_pyramid_deflate.tif/0/.zattrs").stdout
if kinds.get("pyramids/u16_subifd_pyramid_deflate.tif/0/0/", ("",))[0] != "array" or \
        kinds.get("pyramids/u16_subifd_pyramid_deflate.tif/0/.zattrs") != \
        ("metadata", str(len(zattrs.encode()) - 1)):  # cat ends metadata with a newline
    fail(f"ls -l: {listing}")
top = [line.split() for line in
       run("ls", "-l", index, "pyramids/u16_subifd_pyramid_deflate.tif").stdout.splitlines()]
if ["image", "-", "pyramids/u16_subifd_pyramid_deflate.tif/0/"] not in top:
    fail(f"ls -l of a file group shows no image 0: {top}")

# ---- thumbnails: PIL's decoding of the PNG against a composite of tifffile's pixels -----------


def dtype_range(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)
    return float(-np.finfo(dtype).max), float(np.finfo(dtype).max)


def expected_thumbnail(path, size):
    """The composite of tifffile's pixels: the level, plane, colours and windows of the rules."""
    im = images[path]
    file_group, series = path.rsplit("/", 1)
    levels = im["levels"]
    chosen = len(levels) - 1
    while chosen > 0 and max(levels[chosen]["shape"][3:]) < size:
        chosen -= 1
    pixels, axes, _ = c.tiff_oracle(os.path.join(samples, file_group), int(series), chosen)
    data = c.as_tczyx(pixels, axes).astype(np.float64)
    plane = data[0, :, data.shape[2] // 2]
    wide = not (np.dtype(im["dtype"]).itemsize == 1 and np.dtype(im["dtype"]).kind != "f")
    acc = np.zeros(plane.shape[1:] + (3,))
    for ch, values in zip(im["channels"], plane):
        if ch["label"].lower() == "alpha":
            continue
        start, end = ch["window"]
        if wide and (start, end) == dtype_range(im["dtype"]):
            start, end = np.percentile(values[np.isfinite(values)], [0.1, 99.9])
        level = np.clip((values - start) / (end - start), 0, 1) if end > start else \
            (values >= end).astype(float)
        rgb = [int(ch["color"][i:i + 2], 16) / 255 for i in (0, 2, 4)]
        acc += np.nan_to_num(level)[..., None] * np.array(rgb)
    acc = np.minimum(acc, 1)
    h, w = acc.shape[:2]
    oh, ow = h, w
    if max(h, w) > size:
        scale = size / max(h, w)
        oh, ow = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.zeros((oh, ow, 3))
    for oy in range(oh):
        for ox in range(ow):
            out[oy, ox] = acc[oy * h // oh:(oy + 1) * h // oh, ox * w // ow:(ox + 1) * w // ow].mean((0, 1))
    return np.rint(out * 255)


CASES = [
    ("ome/multiseries_2images.ome.tif/0", 512),        # uint16, 2 channels with colours, z 3
    ("rgb/rgb_u8_chunky_tiled_none.tif/0", 512),       # interleaved RGB uint8
    ("pyramids/u16_subifd_pyramid_deflate.tif/0", 100),  # level 1 of 3, shrunk to 100 x 75
    ("tiled/f32_deflate_pred3.tif/0", 512),            # float32, predictor 3 (decoded by libtiff)
    ("stripped/u16_lzw_pred2_rps7.tif/0", 40),         # LZW, transcoded chunks
    ("stacks/u16_zstack_10pages_deflate.tif/0", 512),  # middle z of 10
    ("windows/sigbits12.ome.tif/0", 512),
    ("tiled/u32_none.tif/0", 512),                     # uint32
    ("jpeg/rgb_ycbcr_tiled_q75.tif/0", 512),           # JPEG YCbCr, decoded by libtiff (tiffcp)
    ("real/webp_rgba.tif/0", 512),                     # RGBA (alpha not drawn), WebP
    ("real/multi-channel-z-series.ome.tif/0", 128),
    ("real/cogeo.tif/0", 64),
]
for path, size in CASES:
    png = os.path.join(WORK, path.replace("/", "_") + ".png")
    done = run("thumbnail", index, path, "-o", png, "--size", str(size), check=False)
    if done.returncode != 0:
        fail(f"thumbnail {path}: exit {done.returncode}: {done.stderr}")
        continue
    got = np.asarray(Image.open(png).convert("RGB")).astype(np.float64)
    want = expected_thumbnail(path, size)
    if got.shape != want.shape:
        fail(f"thumbnail {path}: {got.shape}, expected {want.shape}")
        continue
    diff = np.abs(got - want)
    if diff.max() > 2 or got.max() == 0:
        fail(f"thumbnail {path}: differs from tifffile's composite by up to {diff.max()} "
             f"({int((diff > 2).sum())} values), max {got.max()}")
    print(f"thumbnail {path}: {got.shape[1]} x {got.shape[0]}, max diff {diff.max()}")

bad = run("thumbnail", index, "no/such/image", "-o", os.path.join(WORK, "x.png"), check=False)
if bad.returncode != 1 or "no/such/image" not in bad.stderr or os.path.exists(os.path.join(WORK, "x.png")):
    fail(f"thumbnail of a missing image: exit {bad.returncode}, {bad.stderr!r}")

if problems:
    sys.exit(f"{len(problems)} problem(s)")
print("info, ls -l, windows and thumbnails agree with tifffile, numpy and PIL")
