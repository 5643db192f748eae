"""refzarr serve's browser pages in a real browser: Debian's headless Chromium, driven by
playwright-core (npm, pinned by tests/e2e/browser/package-lock.json, `npm ci` into the build tree),
opens the archive's folder pages (TIFF and HDF5 samples) and the viewer of a 2-D uint8 image (LZW, served as blosc), a
2-channel uint16 pyramid (OME-TIFF SubIFDs), an RGB image and a 10-plane z-stack, over a Zarr v2
and a Zarr v3 server. Checks, against tifffile's pixels (never refzarr's own):

- every card of the folders opened shows its image's thumbnail, drawn from the smallest level
  (t 0, middle z) with the channels' colours and windows, pixel for pixel (+-1 for rounding), and
  the image's shape, dtype, level count and channel names;
- the viewer at 1:1 draws level 0, at 1:4 level 2, at 2:1 with an offset the zoomed region;
  switching a channel off, changing a display window and moving the z and t sliders redraw what the
  same composite of tifffile's pixels gives, and differ from what was drawn before;
- no console error or warning, no failed request (no HTTP status >= 400 either), and no request
  to anywhere but the server on 127.0.0.1 (others are refused and reported);
- Zarr clients still get listings and keys at the same URLs (fsspec, Accept: */*).

Env: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_HDF5_SAMPLES_BIN, REFZARR_WORK, REFZARR_BROWSER_JS (tests/e2e/browser),
REFZARR_JS_WORK (where npm installs playwright-core). Fails, never skips, without Chromium, node
or npm."""
import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402

import numpy as np  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

U8 = "tiled/u8_lzw_pred2.tif/0"
PYRAMID = "ome/pyramid_subifds.ome.tif/0"
RGB = "rgb/rgb_u8_chunky_tiled_none.tif/0"
ZSTACK = "stacks/u16_zstack_10pages_deflate.tif/0"
HYPERSTACK = "imagej/hyperstack_u16_t4_z3_c2_be.tif/0"
# Folder pages whose every card is checked. (Not tiled/: its sparse sample's missing chunks are
# 404s, fill values for Zarr, but failed requests in the browser's console.)
# hdf5/ holds the HDF5 samples: an Imaris and a BigDataViewer pyramid whose levels halve z too.
CARD_FOLDERS = ["ome/", "rgb/", "stacks/", "pyramids/", "dtypes/", "hdf5/"]


def fail(message):
    sys.exit(f"FAIL: {message}")


def get(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, dict(r.headers), r.read()


class Oracle:
    """Pixels of the samples as tifffile reads them, in (t, c, z, y, x), and the channel settings
    the server's metadata gives (colours and windows are metadata; only pixels need an oracle)."""

    def __init__(self, samples, base, zarr_format):
        self.samples = samples
        self.base = base
        self.zarr_format = zarr_format
        self.cache = {}

    def level(self, key, level):
        if (key, level) not in self.cache:
            file_group, series = key.rsplit("/", 1)
            path = os.path.join(self.samples, file_group)
            if key.startswith("hdf5/"):
                data = c.hdf5_image_oracle(path, int(series), level)
                self.cache[(key, level)] = data
                return data
            pixels, axes, _ = c.tiff_oracle(path, int(series), level)
            data = c.as_tczyx(pixels, axes)
            if data is None:
                fail(f"{key}: tifffile axes {axes} do not map to (t, c, z, y, x)")
            self.cache[(key, level)] = data
        return self.cache[(key, level)]

    def channels(self, key):
        if self.zarr_format == 3:
            meta = json.loads(get(self.base + key + "/zarr.json")[2])["attributes"]["ome"]
        else:
            meta = json.loads(get(self.base + key + "/.zattrs")[2])
        out = []
        for ch in meta["omero"]["channels"]:
            color = int(ch["color"], 16)
            out.append({"active": ch.get("active", True), "start": ch["window"]["start"],
                        "end": ch["window"]["end"], "label": ch["label"],
                        "color": [(color >> 16) & 255, (color >> 8) & 255, color & 255]})
        return out


def composite(plane, channels):
    """(h, w, 3) uint8 of a (c, y, x) plane: each active channel's clamp((v - start) / (end -
    start), 0, 1) times its colour, added, clamped to 255 (what the pages promise to draw)."""
    acc = np.zeros(plane.shape[1:] + (3,))
    for c_index, ch in enumerate(channels):
        if not ch["active"]:
            continue
        v = plane[c_index].astype(np.float64)
        span = ch["end"] - ch["start"]
        f = np.clip((v - ch["start"]) / span, 0, 1) if span > 0 else (v >= ch["end"]).astype(float)
        f = np.nan_to_num(f, nan=0.0)
        acc += f[..., None] * np.array(ch["color"], dtype=np.float64)
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8)


def rgba(capture):
    data = np.frombuffer(base64.b64decode(capture["rgba"]), dtype=np.uint8)
    return data.reshape(capture["h"], capture["w"], 4)


def compare(failures, what, capture, want):
    if "error" in capture:
        failures.append(f"{what}: {capture['error']}")
        return None
    got = rgba(capture)
    if got.shape[:2] != want.shape[:2]:
        failures.append(f"{what}: drew {got.shape[1]} x {got.shape[0]}, expected "
                        f"{want.shape[1]} x {want.shape[0]}")
        return got
    if not np.all(got[..., 3] == 255):
        failures.append(f"{what}: {int(np.sum(got[..., 3] != 255))} pixels not opaque")
    diff = np.abs(got[..., :3].astype(int) - want.astype(int))
    if diff.max() > 1:
        bad = np.argwhere(diff.max(axis=2) > 1)
        y, x = bad[0]
        failures.append(f"{what}: {len(bad)} of {diff.shape[0] * diff.shape[1]} pixels differ "
                        f"from tifffile's composite, first at (y {y}, x {x}): drew "
                        f"{got[y, x, :3].tolist()}, expected {want[y, x].tolist()}")
    return got


def viewer_steps(zarr_format):
    """The browser's steps for the viewers; checked by check_viewers in the same order."""
    steps = [
        {"open": f"/{PYRAMID}/#zoom=1&x=0&y=0", "wait": "viewer"},
        {"capture": {"x": 0, "y": 0, "w": 256, "h": 192}},
        {"click": "#channel-0"},
        {"capture": {"x": 0, "y": 0, "w": 256, "h": 192}},
        {"fill": ["#end-1", "20000"]},
        {"capture": {"x": 0, "y": 0, "w": 256, "h": 192}},
        {"open": f"/{PYRAMID}/#zoom=0.25&x=0&y=0", "wait": "viewer"},
        {"capture": {"x": 0, "y": 0, "w": 64, "h": 48}},
        {"open": f"/{ZSTACK}/#zoom=1&x=0&y=0&z=0", "wait": "viewer"},
        {"capture": None},
        {"press": ["#z", "ArrowRight"]},
        {"capture": None},
        # Its ImageJ display range (0-4000) saturates every pixel: windows from the link instead.
        {"open": f"/{HYPERSTACK}/#zoom=1&x=0&y=0&t=2&z=1&w=0:65535,5000:40000", "wait": "viewer"},
        {"capture": None},
        {"press": ["#t", "ArrowRight"]},
        {"capture": None},
        {"open": f"/{RGB}/#zoom=1&x=0&y=0", "wait": "viewer"},
        {"capture": None},
        {"open": f"/{U8}/#zoom=1&x=0&y=0", "wait": "viewer"},
        {"capture": None},
        {"open": f"/{U8}/#zoom=2&x=10&y=20", "wait": "viewer"},
        {"capture": {"x": 0, "y": 0, "w": 120, "h": 80}},
        {"text": "#level-info"},
    ]
    return steps


def check_viewers(failures, oracle, results, tag):
    r = iter(results)
    step = lambda: next(r)  # noqa: E731

    def expect_title(result, key):
        if "error" in result:
            failures.append(f"{tag} {key}: {result['error']}")

    # Multichannel uint16 pyramid: level 0 at 1:1, then channel 0 off, then a window.
    expect_title(step(), PYRAMID)
    ch = oracle.channels(PYRAMID)
    level0 = oracle.level(PYRAMID, 0)[0, :, 0]
    both = compare(failures, f"{tag} {PYRAMID} 1:1", step(), composite(level0, ch))
    step()
    ch[0]["active"] = False
    one = compare(failures, f"{tag} {PYRAMID} channel 0 off", step(), composite(level0, ch))
    if both is not None and one is not None and np.array_equal(both, one):
        failures.append(f"{tag} {PYRAMID}: switching channel 0 off changed nothing")
    step()
    ch[1]["end"] = 20000
    windowed = compare(failures, f"{tag} {PYRAMID} window 0-20000", step(), composite(level0, ch))
    if one is not None and windowed is not None and np.array_equal(one, windowed):
        failures.append(f"{tag} {PYRAMID}: changing the window changed nothing")
    # 1:4 draws level 2 (64 x 48), both channels again (the new fragment resets them).
    expect_title(step(), PYRAMID)
    capture = step()
    if capture.get("level") != "2":
        failures.append(f"{tag} {PYRAMID} at 1:4: drew level {capture.get('level')}, expected 2")
    compare(failures, f"{tag} {PYRAMID} 1:4", capture,
            composite(oracle.level(PYRAMID, 2)[0, :, 0], oracle.channels(PYRAMID)))

    # z-stack: plane 0, then the slider one step right: plane 1.
    expect_title(step(), ZSTACK)
    stack = oracle.level(ZSTACK, 0)
    ch = oracle.channels(ZSTACK)
    h, w = stack.shape[3:]
    crop = lambda got: {**got, "w": w, "h": h, "rgba": base64.b64encode(  # noqa: E731
        rgba(got)[:h, :w].tobytes()).decode()} if "rgba" in got else got

    def slider(image, axis, before, plane, ch):
        """The view at `before`, one step of the axis' slider right, the view at before + 1: each
        equal to the oracle's plane (`plane(index)`), and not equal to each other."""
        after = before + 1
        first = compare(failures, f"{tag} {image} {axis} {before}", crop(step()),
                        composite(plane(before), ch))
        moved = step()
        if moved.get("value") != str(after):
            failures.append(f"{tag} {image}: the {axis} slider reads {moved.get('value')} after one "
                            f"step right from {before}, expected {after} ({moved.get('error', '')})")
        second = compare(failures, f"{tag} {image} {axis} {after}", crop(step()),
                         composite(plane(after), ch))
        if first is not None and second is not None and np.array_equal(first, second):
            failures.append(f"{tag} {image}: moving the {axis} slider changed nothing")

    slider(ZSTACK, "z", 0, lambda z: stack[0, :, z], ch)

    # ImageJ hyperstack (t 4, z 3, c 2): t 2, then the t slider one step right: t 3.
    expect_title(step(), HYPERSTACK)
    hyper = oracle.level(HYPERSTACK, 0)
    ch = oracle.channels(HYPERSTACK)
    ch[0]["start"], ch[0]["end"], ch[1]["start"], ch[1]["end"] = 0, 65535, 5000, 40000
    h, w = hyper.shape[3:]
    slider(HYPERSTACK, "t", 2, lambda t: hyper[t, :, 1], ch)

    # RGB: the three channels (red, green, blue, windows 0-255) are the image itself.
    expect_title(step(), RGB)
    rgb = oracle.level(RGB, 0)[0, :, 0]
    h, w = rgb.shape[1:]
    if oracle.channels(RGB)[0]["color"] != [255, 0, 0]:
        failures.append(f"{tag} {RGB}: channel 0 is not red: {oracle.channels(RGB)[0]}")
    compare(failures, f"{tag} {RGB} 1:1", crop(step()), np.moveaxis(rgb, 0, -1))

    # 2-D uint8 (LZW + predictor, served as blosc): grey, then 2:1 from (10, 20).
    expect_title(step(), U8)
    grey = oracle.level(U8, 0)[0, 0, 0]
    h, w = grey.shape
    compare(failures, f"{tag} {U8} 1:1", crop(step()), np.repeat(grey[..., None], 3, axis=2))
    expect_title(step(), U8)
    zoomed = np.repeat(np.repeat(grey[20:60, 10:70], 2, axis=0), 2, axis=1)
    compare(failures, f"{tag} {U8} 2:1 from (10, 20)", step(), np.repeat(zoomed[..., None], 3, axis=2))
    info = step()
    if "zoom 200" not in " ".join(info.get("text", [])):
        failures.append(f"{tag} {U8}: level info says {info}, expected zoom 200 %")


def card_folders(zarr_format):
    """The folders whose cards are checked: all over v2; over v3 (the same pages and decoders,
    other metadata) those with the OME pyramid, the multi-series files and the HDF5 images."""
    return CARD_FOLDERS if zarr_format == 2 else ["ome/", "hdf5/", "stacks/", "rgb/"]


def check_cards(failures, oracle, folders, results, tag):
    """Every card on the folder pages: its thumbnail and its facts."""
    seen = set()
    for folder, (opened, listed) in zip(folders, zip(results[0::2], results[1::2])):
        if "error" in opened or "error" in listed:
            failures.append(f"{tag} /{folder}: {opened.get('error') or listed.get('error')}")
            continue
        if not listed["cards"]:
            failures.append(f"{tag} /{folder}: no image cards")
        for card in listed["cards"]:
            key = card["key"]
            seen.add(key)
            what = f"{tag} card {key}"
            if card["state"] != "ready":
                failures.append(f"{what}: thumbnail {card['state']}")
                continue
            if card["href"] != f"/{key}/":
                failures.append(f"{what}: links to {card['href']}")
            level = int(card["thumbnail"]["level"])
            z = int(card["thumbnail"]["z"])
            data = oracle.level(key, level)
            full = oracle.level(key, 0)
            if level != _levels(oracle, key) - 1:
                failures.append(f"{what}: thumbnail from level {level}, not the smallest")
            middle = min(data.shape[2] - 1, full.shape[2] // 2 * data.shape[2] // full.shape[2])
            if z != middle:
                failures.append(f"{what}: thumbnail from the level's z {z}, not {middle}, the "
                                f"middle of level 0's {full.shape[2]} planes")
            compare(failures, f"{what} thumbnail", card["thumbnail"],
                    composite(data[0, :, z], oracle.channels(key)))
            shape = " × ".join(f"{a} {n}" for a, n in zip("tczyx", full.shape))
            if card["shape"] != shape:
                failures.append(f"{what}: shape '{card['shape']}', expected '{shape}'")
            if not card["meta"].startswith(f"{full.dtype.name} · {_levels(oracle, key)} level"):
                failures.append(f"{what}: '{card['meta']}', expected dtype {full.dtype.name}")
            labels = [ch["label"] for ch in oracle.channels(key)]
            if card["channels"] != labels:
                failures.append(f"{what}: channels {card['channels']}, expected {labels}")
    for key in (PYRAMID, RGB, ZSTACK, "hdf5/sample.ims/0", "hdf5/bdv.h5/0"):
        if key not in seen:
            failures.append(f"{tag}: no card for {key} (cards: {sorted(seen)})")


def _levels(oracle, key):
    """The number of pyramid levels tifffile (or, for HDF5, h5py) finds."""
    file_group, series = key.rsplit("/", 1)
    path = os.path.join(oracle.samples, file_group)
    if key.startswith("hdf5/"):
        levels = 0
        while True:
            try:
                c.hdf5_image_oracle(path, int(series), levels)
            except c.OracleUnavailable:
                return levels
            levels += 1
    import tifffile
    with tifffile.TiffFile(path) as tif:
        return len(tif.series[int(series)].levels)


def check_http(failures, base):
    """Browsers get the page; Zarr clients, fetch() and fsspec the listing, at the same URL."""
    status, headers, body = get(base, BROWSER_ACCEPT)
    if b'name="refzarr-zarr-format"' not in body or headers.get("Vary") != "Accept":
        failures.append(f"GET / as a browser: not the page ({status}, {headers}, {body[:200]!r})")
    status, headers, body = get(base, "*/*")
    if b'href="./ome/"' not in body:
        failures.append(f"GET / with Accept */*: not the listing ({status}, {body[:200]!r})")
    status, headers, body = get(base + "__refzarr__/main.js")
    if status != 200 or not headers.get("Content-Type", "").startswith("text/javascript"):
        failures.append(f"GET /__refzarr__/main.js: {status} {headers.get('Content-Type')}")
    import fsspec
    names = [e.rstrip("/").rsplit("/", 1)[-1] for e in fsspec.filesystem("http").ls(base + "ome/", detail=False)]
    if "pyramid_subifds.ome.tif" not in names:
        failures.append(f"fsspec ls of /ome/ lists {names}")


def main():
    refzarr = c.env("REFZARR_BIN")
    samples_bin = c.env("REFZARR_SAMPLES_BIN")
    work = c.env("REFZARR_WORK")
    if not os.access(CHROMIUM, os.X_OK):
        fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium "
             "(apt-get install chromium; it is in the Makefile's APT_PACKAGES)")
    source = c.env("REFZARR_BROWSER_JS")
    js = c.npm_ci(source, c.env("REFZARR_JS_WORK"), "the browser test")
    # The driver sits beside node_modules, so that its imports resolve there.
    shutil.copy(os.path.join(source, "drive_pages.mjs"), js)
    samples = os.path.join(work, "samples")
    index = os.path.join(work, "samples.refs.db")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([samples_bin, samples], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([c.env("REFZARR_HDF5_SAMPLES_BIN"), os.path.join(samples, "hdf5")], check=True,
                   stdout=subprocess.DEVNULL)
    # Exit status 1 is fine: the deliberately broken samples fail, the rest is indexed.
    subprocess.run([refzarr, "index", "-o", index, samples], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if not os.path.exists(index):
        fail("refzarr index wrote no index")
    failures = []
    for zarr_format in (2, 3):
        tag = f"v{zarr_format}"
        with serve_e2e.Server(refzarr, index, zarr_format, work) as server:
            base = f"http://127.0.0.1:{server.port}/"
            if zarr_format == 2:
                check_http(failures, base)
            steps = [{"open": "/"}, {"folders": True}]
            # An array's directory and a directory of chunk coordinates: pages of keys, and no
            # request for metadata that is not there (a 404 would be a failed request).
            chunks = f"/{PYRAMID}/0/0/0/" if zarr_format == 2 else f"/{PYRAMID}/0/c/0/"
            steps += [{"open": f"/{PYRAMID}/0/"}, {"text": "main > p"},
                      {"open": chunks}, {"text": "main > p"}]
            folders = card_folders(zarr_format)
            for folder in folders:
                steps += [{"open": f"/{folder}", "wait": "cards"}, {"cards": True}]
            steps += viewer_steps(zarr_format)
            jobs = os.path.join(work, f"steps-{tag}.json")
            with open(jobs, "w") as f:
                json.dump({"base": base, "chromium": CHROMIUM, "steps": steps}, f)
            start = time.time()
            done = subprocess.run(["node", os.path.join(js, "drive_pages.mjs"), jobs],
                                  capture_output=True, text=True, timeout=240)
            if done.returncode != 0:
                fail(f"{tag}: the browser driver failed (exit {done.returncode}):\n"
                     f"{done.stdout[-2000:]}{done.stderr[-4000:]}")
            report = json.loads(done.stdout)
            print(f"{tag}: {len(steps)} browser steps, {report['requests']} requests, "
                  f"{time.time() - start:.1f} s")
            for detector, worked in report["caught"].items():
                if not worked:
                    failures.append(f"{tag}: the driver did not catch its deliberate {detector} "
                                    "canary: its checks cannot be trusted")
            results = report["results"]
            oracle = Oracle(samples, base, zarr_format)
            listed = results[1].get("folders", [])
            for (what, got), want in zip(((f"/{PYRAMID}/0/", results[3]), (chunks, results[5])),
                                         ("A Zarr array", "Chunk keys of an array")):
                if not any(want in t for t in got.get("text", [])):
                    failures.append(f"{tag} page {what}: says {got}, expected '{want}'")
            results = results[:2] + results[6:]
            for want in ("ome/", "pyramids/", "rgb/", "stacks/", "tiled/"):
                if want not in listed:
                    failures.append(f"{tag} archive page: no folder {want} in {listed}")
            check_cards(failures, oracle, folders, results[2:2 + 2 * len(folders)], tag)
            check_viewers(failures, oracle, results[2 + 2 * len(folders):], tag)
            for line in report["console"]:
                failures.append(f"{tag} console: {line}")
            for line in report["failed"]:
                failures.append(f"{tag} failed request: {line}")
            for url in report["outside"]:
                failures.append(f"{tag} request outside 127.0.0.1: {url}")
    if failures:
        print("\n".join(f"FAIL: {f}" for f in failures))
        sys.exit(1)
    print("ok: archive pages, cards and viewers drew tifffile's pixels, with no console error, "
          "failed request or outside request")


if __name__ == "__main__":
    main()
