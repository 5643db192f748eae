"""Every TIFF in ../shared/realdata either indexes with correct pixels or fails cleanly: no crash,
no hang, a message naming the file. Pixels are read through `refzarr serve` (compat codecs) with
zarr-python over fsspec HTTP and compared with tifffile, or with libtiff (tiffcp) where tifffile
lacks the codec. Usage: REFZARR_BIN=... REFZARR_SHARED_DIR=... REFZARR_WORK=... realdata_tiff_e2e.py"""
import os
import shutil
import subprocess
import sys
import urllib.parse

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402


# Deliberate, documented differences from tifffile (docs/tiff.md, "Differences from tifffile").
KNOWN_DIFFERENCES = {
    # tifffile flattens SubIFDs into a page sequence; refzarr treats SubIFDs as pyramid levels.
    "image-rs+image-tiff/tests/subsubifds.tif/0/0",
}


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
    import json
    report = json.loads(done.stdout)
    failures = []
    for f in report["files"]:
        if f["outcome"] == "failed":
            print(f"refused: {f['group']}: {f['error']}")
            if f["group"] not in done.stderr and f["path"] not in done.stderr:
                failures.append(f"{f['group']} failed without a message naming it")
            if not f["error"]:
                failures.append(f"{f['group']} failed without a reason")
    print(f"indexed {report['indexed']}, refused {report['failed']}, skipped {report['skipped']}")

    tally = c.Tally()
    with serve_e2e.Server(refzarr, index, 2, work) as server:
        root = zarr.open_group(fsspec.get_mapper(server.url("")), mode="r")
        for key, arr in c.walk_arrays(root):
            # fsspec lists names as the HTML listing spells them ('+' as %2B).
            message = c.compare_safely(arr, tiffs, urllib.parse.unquote(key))
            if message is not None and urllib.parse.unquote(key) in KNOWN_DIFFERENCES:
                print(f"  documented difference: {message}")
                message = None
            tally.add(message)
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
    failures += tally.finish("realdata", 15)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
