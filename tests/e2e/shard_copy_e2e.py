#!/usr/bin/python3
"""A sharded view copied out of the mount is an ordinary sharded Zarr v3 store.

Indexes the TIFF and HDF5 samples and the realdata (every_array_e2e.build_index), mounts the index
with `refzarr mount --zarr-format 3 --shards auto` (compat codecs), copies the whole tree out with
`cp -r`, then, without refzarr: every file of the copy has the size the mount listed; every
array's zarr.json names one sharding_indexed codec (0-d arrays excepted); every OME-NGFF group's
attributes validate against the 0.5 schemas of ../shared/schemas; and nginx serves the copy to
zarrita.js 0.5 and 0.7, which read every array equal to its tifffile/h5py oracle (as
every_array_e2e.compare_zarrita does for the served views). Environment: as every_array_e2e.py,
with REFZARR_JS_SOURCE and REFZARR_JS_WORK for zarrita.
"""
import json
import os
import shutil
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
sys.path.insert(0, os.path.join(here, "..", "cli", "fuse"))
sys.path.insert(0, os.path.join(here, "..", "support", "remote"))
sys.path.insert(0, here)
import e2e_common as c  # noqa: E402
import every_array_e2e as ea  # noqa: E402
import mount_e2e  # noqa: E402
import remote_servers  # noqa: E402


def main():
    started = time.time()
    refzarr, work, shared = c.env("REFZARR_BIN"), c.env("REFZARR_WORK"), c.env("REFZARR_SHARED_DIR")
    js = ea.install_js(c.env("REFZARR_JS_SOURCE"), c.env("REFZARR_JS_WORK"))
    index, files = ea.build_index(refzarr, work, shared)
    failures, skips = c.Failures([]), []
    listed = subprocess.run([refzarr, "ls", "-r", "-l", index, "--zarr-format", "3",
                             "--shards", "auto"], capture_output=True, text=True, timeout=600)
    if listed.returncode != 0:
        sys.exit(f"refzarr ls failed: {listed.stderr[-2000:]}")
    sizes = {}
    for line in listed.stdout.splitlines():
        kind, size, key = line.split(None, 2)
        if not key.endswith("/") and size != "-":
            sizes[key] = int(size)
    mnt, copy = os.path.join(work, "mnt"), os.path.join(work, "copy")
    with mount_e2e.Mounted(refzarr, index, mnt, 3, work, ["--shards", "auto"], tag="-shards"):
        t0 = time.time()
        done = subprocess.run(["cp", "-r", mnt + "/.", copy], capture_output=True, text=True,
                              timeout=600)
        print(f"cp -r of the sharded mount: {time.time() - t0:.1f} s")
        if done.returncode != 0:
            failures.add("cp -r", "*", f"cp exited {done.returncode}: {done.stderr[-400:]}")
    copied = {}
    for root, _, names in os.walk(copy):
        for name in names:
            path = os.path.join(root, name)
            copied[os.path.relpath(path, copy)] = os.path.getsize(path)
    for key, size in sizes.items():
        if key not in copied:
            failures.add("cp -r", key, "listed by the view, missing from the copy")
        elif copied[key] != size:
            failures.add("cp -r", key, f"{copied[key]} bytes copied, the listing says {size}")
    validators = c.ngff_validators(shared, "0.5")
    arrays, groups, validated = {}, 0, 0
    for rel in sorted(copied):
        if os.path.basename(rel) != "zarr.json":
            continue
        with open(os.path.join(copy, rel)) as f:
            meta = json.load(f)
        node = os.path.dirname(rel)
        if meta.get("node_type") == "array":
            arrays[node] = {"meta": meta}
            codecs = meta["codecs"]
            if meta["shape"] and (len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed"):
                failures.add("copy", node, f"not sharded: codecs {codecs}")
        else:
            groups += 1
            errors, picks = c.validate_ngff(meta.get("attributes", {}), validators, node)
            for e in errors:
                failures.add("copy", node, e)
            validated += bool(picks) and not errors
    print(f"copy: {len(copied)} files, {len(arrays)} arrays, {groups} groups, {validated} OME-NGFF "
          f"0.5 groups valid")
    oracles = ea.Oracles(files)
    with remote_servers.Nginx(copy) as web:
        ea.compare_zarrita(js, web.url, 3, arrays, oracles, "nginx copy", failures, skips, work)
    print(f"\n{len(skips)} skipped:")
    for line in skips:
        print("  skip " + line)
    failures.print_table("copy of the sharded mount")
    print(f"\ntotal {time.time() - started:.1f} s")
    sys.exit(1 if failures.rows else 0)


if __name__ == "__main__":
    main()
