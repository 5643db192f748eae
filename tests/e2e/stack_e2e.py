"""End to end: `refzarr index --stack` (file sequences as one image). Folders of one-plane TIFFs
written here by tifffile (tiled zlib uint16 with a missing plane; strips of uint8 named for auto
mode; a member that differs; two names of one plane) are indexed with patterns and `auto`, served,
and read by zarr-python over HTTP: every plane must equal tifffile reading its file, a missing
plane the fill value, and the NGFF metadata must validate against the official schemas. Then:
re-indexing finds the sequence unchanged, a rewritten member is re-indexed, a member changed
under a running server is stale (never served), and files indexed alone before are folded in.
Usage: REFZARR_BIN=... REFZARR_SHARED_DIR=... REFZARR_WORK=... stack_e2e.py"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import tifffile
import zarr
import fsspec

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402

REFZARR = c.env("REFZARR_BIN")
SHARED = c.env("REFZARR_SHARED_DIR")
WORK = c.env("REFZARR_WORK")
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
        print("FAIL:", message)


def run(*args):
    return subprocess.run([REFZARR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


shutil.rmtree(WORK, ignore_errors=True)
data = os.path.join(WORK, "data")
rng = np.random.default_rng(7)

# scan/: t 1..2, c 0..2, z 0, 2, 4, 6; (t 2, c 2, z 6) missing. Tiled 32 x 32, zlib.
scan = os.path.join(data, "scan")
os.makedirs(scan)
planes = {}
for t in (1, 2):
    for ch in range(3):
        for z in (0, 2, 4, 6):
            if (t, ch, z) == (2, 2, 6):
                continue
            name = f"scan_t{t:02d}_c{ch}_z{z:03d}.tif"
            plane = rng.integers(0, 4095, (70, 90), dtype=np.uint16)
            tifffile.imwrite(os.path.join(scan, name), plane, tile=(32, 32), compression="zlib")
            planes[name] = (t - 1, ch, z // 2)
with open(os.path.join(scan, "notes.txt"), "w") as f:
    f.write("acquisition notes")

# auto/: pos01_ch{1,2}_z{01..05} in strips (uint8), one lone overview file.
auto = os.path.join(data, "auto")
os.makedirs(auto)
for ch in (1, 2):
    for z in range(1, 6):
        tifffile.imwrite(os.path.join(auto, f"pos01_ch{ch}_z{z:02d}.tif"),
                         rng.integers(0, 255, (40, 50), dtype=np.uint8), rowsperstrip=8)
tifffile.imwrite(os.path.join(auto, "overview.tif"), rng.integers(0, 255, (20, 20), dtype=np.uint8))

# odd/: frame_z3 is wider than the others; dup/: a_z1 and a_z01 are one plane.
odd = os.path.join(data, "odd")
os.makedirs(odd)
for z in (1, 2, 3):
    width = 64 if z == 3 else 60
    tifffile.imwrite(os.path.join(odd, f"frame_z{z}.tif"), np.zeros((30, width), np.uint8))
dup = os.path.join(data, "dup")
os.makedirs(dup)
for name in ("a_z1.tif", "a_z01.tif", "a_z2.tif"):
    tifffile.imwrite(os.path.join(dup, name), np.zeros((8, 8), np.uint8))

index = os.path.join(WORK, "stack.refs.db")
rules = ["--stack", "scan_t{t}_c{c}_z{z}.tif", "--stack", "frame_z{z}.tif", "--stack",
         "a_z{z}.tif", "--stack", "auto"]
done = run("index", "-o", index, data, *rules, "--json")
print(done.stderr)
check(done.returncode == 1, f"index with two bad sequences exits 1, not {done.returncode}")
report = json.loads(done.stdout)
outcomes = {f["group"]: f for f in report["files"]}
check(outcomes.get("scan/scan", {}).get("outcome") == "indexed", f"scan/scan indexed: {outcomes.get('scan/scan')}")
check(outcomes.get("auto/pos01", {}).get("outcome") == "indexed", f"auto/pos01 indexed: {outcomes.get('auto/pos01')}")
check(outcomes.get("auto/overview.tif", {}).get("outcome") == "indexed", "a lone file stays a file")
odd_f = outcomes.get("odd/frame", {})
check(odd_f.get("outcome") == "failed" and "frame_z3.tif differs from" in odd_f.get("error", "")
      and "shape" in odd_f.get("error", ""), f"a differing member is refused, named: {odd_f}")
dup_f = outcomes.get("dup/a", {})
check(dup_f.get("outcome") == "failed" and "'a_z01.tif' and 'a_z1.tif' are the same plane"
      in dup_f.get("error", ""), f"two names of one plane are refused: {dup_f}")
check("1 of 24 planes have no file and read as the fill value (t=2 c=2 z=6)" in done.stderr,
      "the missing plane is reported")
check(not any(g.startswith("scan/scan_t") or g.startswith("odd/frame_z") for g in outcomes),
      f"members are not indexed as files of their own: {sorted(outcomes)}")


def served_planes(server, group):
    root = zarr.open_group(fsspec.get_mapper(server.url()), mode="r")
    return root[group + "/0/0"], root[group + "/0"].attrs.asdict()


validators = c.ngff_validators(SHARED, "0.4")
with serve_e2e.Server(REFZARR, index, 2, WORK) as server:
    arr, attrs = served_planes(server, "scan/scan")
    check(arr.shape == (2, 3, 4, 70, 90), f"scan shape {arr.shape}")
    check(arr.chunks == (1, 1, 1, 32, 32), f"scan chunks {arr.chunks}")
    failures, picks = c.validate_ngff(attrs, validators, "scan/scan/0")
    check(picks == ["image"] and not failures, f"scan's NGFF image validates: {picks} {failures}")
    got = arr[:]
    seen = set()
    for name, (t, ch, z) in planes.items():
        want = tifffile.imread(os.path.join(scan, name))
        check(np.array_equal(got[t, ch, z], want), f"scan plane {name} equals tifffile's")
        seen.add((t, ch, z))
    check(not got[1, 2, 3].any(), "the missing plane reads as the fill value 0")
    check(len(seen) == 23, f"23 planes compared, {len(seen)}")
    labels = [ch["label"] for ch in attrs["omero"]["channels"]]
    check(labels == ["c=0", "c=1", "c=2"], f"one channel per c: {labels}")
    arr, attrs = served_planes(server, "auto/pos01")
    check(arr.shape == (1, 2, 5, 40, 50), f"auto shape {arr.shape}")
    got = arr[:]
    for ch in (1, 2):
        for z in range(1, 6):
            want = tifffile.imread(os.path.join(auto, f"pos01_ch{ch}_z{z:02d}.tif"))
            check(np.array_equal(got[0, ch - 1, z - 1], want), f"auto plane ch{ch} z{z} equals tifffile's")
    failures, picks = c.validate_ngff(attrs, validators, "auto/pos01/0")
    check(picks == ["image"] and not failures, f"auto's NGFF image validates: {picks} {failures}")

# Unchanged: a second run stats the members and scans nothing.
again = run("index", "-o", index, data, *rules, "--json")
outcomes = {f["group"]: f["outcome"] for f in json.loads(again.stdout)["files"]}
check(outcomes.get("scan/scan") == "unchanged" and outcomes.get("auto/pos01") == "unchanged",
      f"an unchanged sequence is not re-scanned: {outcomes}")

# A member rewritten (same name, new pixels) re-indexes the sequence.
name = "scan_t01_c1_z004.tif"
new_plane = rng.integers(0, 4095, (70, 90), dtype=np.uint16)
tifffile.imwrite(os.path.join(scan, name), new_plane, tile=(32, 32), compression="zlib")
third = run("index", "-o", index, data, *rules, "--json")
outcomes = {f["group"]: f["outcome"] for f in json.loads(third.stdout)["files"]}
check(outcomes.get("scan/scan") == "indexed", f"a changed member re-indexes its sequence: {outcomes}")
with serve_e2e.Server(REFZARR, index, 2, WORK, tag="-after") as server:
    arr, _ = served_planes(server, "scan/scan")
    check(np.array_equal(arr[0, 1, 2], new_plane), "the rewritten plane is served")
    # Changed under the running server: stale, never its new bytes.
    tifffile.imwrite(os.path.join(scan, name), new_plane + 1, tile=(32, 32), compression="zlib")
    status, _, body = server.request("GET", "scan/scan/0/0/0/1/2/0/0")
    check(status >= 500, f"a member changed after indexing is refused, got {status}")

# Files indexed alone before, then as a sequence: the sequence replaces them.
solo = os.path.join(WORK, "solo.refs.db")
run("index", "-o", solo, auto)
before = run("ls", solo).stdout.split()
check("pos01_ch1_z01.tif/" in before, f"indexed alone first: {before}")
run("index", "-o", solo, auto, "--stack", "auto")
after = run("ls", solo).stdout.split()
check(sorted(after) == sorted([".zattrs", ".zgroup", "overview.tif/", "pos01/"]),
      f"the sequence replaced its files: {after}")

if problems:
    sys.exit(f"{len(problems)} problems")
print("stack e2e: all checks passed")
