"""End to end: zarr-python (Debian's python3-zarr) opens `refzarr export`'s kerchunk JSON through
fsspec's ReferenceFileSystem, and every array equals tifffile's pixels (libtiff where tifffile lacks
the codec). Arrays whose stored chunks need codecs numcodecs lacks must fail loudly, never read
wrong. Usage: REFZARR_BIN=... REFZARR_SAMPLES_BIN=... REFZARR_WORK=... export_e2e.py"""
import json
import os
import subprocess
import sys
from collections.abc import MutableMapping

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli", "http"))
import e2e_common as c  # noqa: E402


class KeyByKeyStore(MutableMapping):
    """The reference file system as a read-only zarr store, one key per request. fsspec 2022.11
    (Debian 12) fails a whole batch when one key is absent from the references (a missing chunk),
    where zarr needs a KeyError for that key alone to read it as the fill value."""

    def __init__(self, fs):
        self.fs = fs

    def __getitem__(self, key):
        try:
            return self.fs.cat(key)
        except (KeyError, FileNotFoundError):
            raise KeyError(key)

    def __contains__(self, key):
        return key in self.fs.references

    def __iter__(self):
        return iter(self.fs.references)

    def __len__(self):
        return len(self.fs.references)

    def __setitem__(self, key, value):
        raise PermissionError("read-only")

    def __delitem__(self, key):
        raise PermissionError("read-only")

    def listdir(self, path=""):
        prefix = path.rstrip("/") + "/" if path else ""
        return sorted({k[len(prefix):].split("/", 1)[0] for k in self.fs.references
                       if k.startswith(prefix)})


def arrays(group, zarr, prefix=""):
    """(key, array or the exception opening it raised) for every array below `group`: an array
    whose codec numcodecs lacks fails to open, which is the loud failure expected of it."""
    for name in sorted(group.array_keys()):
        try:
            item = zarr.open_array(group.store, mode="r", path=f"{group.path}/{name}".strip("/"))
        except Exception as e:
            item = e
        yield prefix + name, item
    for name in sorted(group.group_keys()):
        yield from arrays(group[name], zarr, prefix + name + "/")


def main():
    import fsspec
    import zarr
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    samples, index = c.make_index(refzarr, c.env("REFZARR_SAMPLES_BIN"), work)
    out = os.path.join(work, "refs.json")
    done = subprocess.run([refzarr, "export", index, "-o", out], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("export failed: " + done.stderr)
    # The export names every array whose chunks need more than numcodecs.
    flagged = set()
    for line in done.stderr.splitlines():
        if line.startswith("note: "):
            flagged.add(line[len("note: "):].split(":", 1)[0])
    with open(out) as f:
        refs = json.load(f)
    if refs.get("version") != 1:
        sys.exit("not a kerchunk version 1 file")
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="file")
    root = zarr.open_group(KeyByKeyStore(fs), mode="r")

    tally, loud = c.Tally(), 0
    for key, arr in arrays(root, zarr):
        if key in flagged:
            # Chunks that need codecs numcodecs lacks: reading must fail, or be right.
            message = c.compare_safely(arr, samples, key)
            if message is not None and "read failed" in message:
                loud += 1
            elif message is not None and not message.startswith("skip:"):
                tally.add(f"{key}: needs other codecs and read WRONG pixels: {message}")
            continue
        tally.add(c.compare_safely(arr, samples, key))
    failures = tally.finish("export", 20, f", {loud} flagged arrays refused by numcodecs")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
