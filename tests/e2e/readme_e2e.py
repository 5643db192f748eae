"""The README's "Using it from Python and viewers" snippets, run as a user would copy them: each
block is read from README.md (so the documentation cannot drift from what is tested), its
placeholders (127.0.0.1:8000, /mnt/archive, refs.json, a.tif) replaced by this test's server port,
mount point, export file and a sample, and executed; the pixels it reads are compared with
tifffile's. The viewer URLs are fetched as a viewer page on another origin would.
Usage: REFZARR_BIN=... REFZARR_SAMPLES_BIN=... REFZARR_WORK=... readme_e2e.py"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import tifffile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli", "http"))
import e2e_common as c  # noqa: E402

REFZARR = c.env("REFZARR_BIN")
WORK = c.env("REFZARR_WORK")
SAMPLE = "pyramids/u16_subifd_pyramid_deflate.tif"  # deflate tiles, every tile stored, 3 levels

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
with open(README) as f:
    readme = f.read()
section = re.search(r"^## Using it from Python and viewers\n(.*?)^## ", readme, re.S | re.M)
if section is None:
    sys.exit("README.md has no section 'Using it from Python and viewers'")
snippets = dict(re.findall(r"<!-- readme-snippet: (\w+) -->\s*```\w*\n(.*?)```", section.group(1), re.S))
for name in ["serve", "mount", "kerchunk", "viewers"]:
    if name not in snippets:
        sys.exit(f"README.md: no snippet '{name}' in the section")

samples, index = c.make_index(REFZARR, c.env("REFZARR_SAMPLES_BIN"), WORK)
with tifffile.TiffFile(os.path.join(samples, SAMPLE)) as tif:
    want = tif.series[0].levels[0].asarray()
failures = []


def substitute(name, text, replacements):
    for placeholder, value in replacements.items():
        if placeholder not in text:
            sys.exit(f"README snippet '{name}' no longer holds {placeholder!r}: update this test")
        text = text.replace(placeholder, value)
    return text


def run_snippet(name, replacements):
    code = substitute(name, snippets[name], replacements)
    namespace = {}
    try:
        exec(compile(code, f"README.md:{name}", "exec"), namespace)
    except Exception as e:
        failures.append(f"snippet {name}: {type(e).__name__}: {e}")
        return
    plane = np.asarray(namespace.get("plane"))
    if plane.shape != want.shape or not np.array_equal(plane, want):
        failures.append(f"snippet {name}: plane {plane.shape} differs from tifffile's {want.shape}")
    else:
        print(f"snippet {name}: {plane.shape} {plane.dtype} equals tifffile")


def start(args, log_path, ready):
    log = open(log_path, "w")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 15
    while time.time() < deadline:
        found = ready()
        if found:
            return proc, found
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"{' '.join(args[:2])} did not start: {open(log_path).read()}")


# ---- serve: zarr-python + fsspec, and the viewers' URLs -------------------------------------------
serve_log = os.path.join(WORK, "serve.err")


def served_port():
    m = re.search(r"on http://127\.0\.0\.1:(\d+)/", open(serve_log).read())
    return m and m.group(1)


server, port = start([REFZARR, "serve", index, "--port", "0"], serve_log, served_port)
try:
    host = f"127.0.0.1:{port}"
    run_snippet("serve", {"127.0.0.1:8000": host, "a.tif": SAMPLE})
    for line in substitute("viewers", snippets["viewers"], {"127.0.0.1:8000": host, "a.tif": SAMPLE}).splitlines():
        viewer, _, how = line.partition(":")
        how = how.strip()
        if viewer == "vizarr":
            url = urllib.parse.parse_qs(urllib.parse.urlparse(how).query)["source"][0]
        elif viewer == "neuroglancer":
            url = how.removeprefix("zarr://")
        else:
            url = how.split()[-1]
        # What the viewer asks first, from its own origin: the image's attributes, then a level.
        request = urllib.request.Request(url + "/.zattrs", headers={"Origin": "https://hms-dbmi.github.io"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                attrs = json.load(r)
                cors = r.headers.get("Access-Control-Allow-Origin")
            with urllib.request.urlopen(url + "/0/.zarray", timeout=10) as r:
                shape = json.load(r)["shape"]
        except Exception as e:
            failures.append(f"{viewer}: {url}: {e}")
            continue
        if "multiscales" not in attrs or cors not in ("*", "https://hms-dbmi.github.io") or \
                shape[3:] != list(want.shape):
            failures.append(f"{viewer}: {url}: multiscales {'multiscales' in attrs}, CORS {cors}, "
                            f"level 0 {shape}")
        else:
            print(f"{viewer}: {url} is an OME-NGFF image readable cross-origin")
finally:
    server.terminate()
    server.wait(10)

# ---- export: kerchunk references through fsspec's reference file system --------------------------
refs = os.path.join(WORK, "refs.json")
subprocess.run([REFZARR, "export", index, "-o", refs], check=True, stdout=subprocess.DEVNULL)
run_snippet("kerchunk", {"refs.json": refs, "a.tif": SAMPLE})

# ---- mount: zarr-python on the file system ------------------------------------------------------
if not os.path.exists("/dev/fuse"):
    failures.append("mount snippet: /dev/fuse is missing, the mount cannot be tested here")
else:
    mnt = os.path.join(WORK, "mnt")
    os.makedirs(mnt, exist_ok=True)
    mounted, _ = start([REFZARR, "mount", index, mnt, "-f"], os.path.join(WORK, "mount.err"),
                       lambda: os.path.ismount(mnt))
    try:
        run_snippet("mount", {"/mnt/archive": mnt, "a.tif": SAMPLE})
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        try:
            mounted.wait(10)
        except subprocess.TimeoutExpired:
            mounted.kill()

if failures:
    sys.exit("\n".join(failures))
print("every README snippet runs and reads tifffile's pixels")
