#!/usr/bin/python3
"""`refzarr import` end to end (docs/kerchunk.md):
1. round trip: the samples indexed, `refzarr export`ed, then `refzarr import`ed: every key of the
   exported JSON, read through fsspec's ReferenceFileSystem from that JSON (the independent
   side), equals what `refzarr serve --codecs passthrough` answers for it from the imported index
   (chunks byte for byte, metadata as JSON), and the imported index lists no key the JSON lacks;
2. tifffile's own kerchunk writer (`ZarrTiffStore.write_fsspec`, versions 0 and 1 with its URL
   template, deflate tiles with numcodecs' zlib): imported and served, zarr-python reads the
   pixels tifffile reads;
3. hostile reference files are refused, exit 1, naming the key, and leave the index as it was:
   an absolute path outside the root, a '..' escape, a symlink out of the root, URLs without an
   allowed prefix (an internal address), user info (whose password never shows), escaped dot
   segments under an allowed prefix, `gen`;
4. a source changed after the import is stale (served as an error, not as bytes).
Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_WORK."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "http"))
import e2e_common as c  # noqa: E402
from serve_e2e import Server  # noqa: E402


def run(*args, ok=True):
    done = subprocess.run(list(args), capture_output=True, text=True)
    if ok and done.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def passthrough(refzarr, index, work, tag):
    s = Server(refzarr, index, 2, work, tag=tag)
    s.args += ["--codecs", "passthrough"]
    return s


def round_trip(refzarr, work, failures):
    import fsspec
    samples, index = c.make_index(refzarr, c.env("REFZARR_SAMPLES_BIN"), work)
    exported = os.path.join(work, "refs.json")
    run(refzarr, "export", index, "-o", exported)
    imported = os.path.join(work, "imported.db")
    done = run(refzarr, "import", "-o", imported, exported, "--root", samples)
    print(done.stderr.strip())
    with open(exported) as f:
        refs = json.load(f)["refs"]
    fs = fsspec.filesystem("reference", fo=exported, remote_protocol="file")
    compared = 0
    with passthrough(refzarr, imported, work, "-imported") as server:
        for key in sorted(refs):
            want = fs.cat(key)
            status, _, got = server.request("GET", key)
            if status != 200:
                failures.append(f"round trip: {key}: {status} {got[:200]!r}")
                continue
            name = key.rsplit("/", 1)[-1]
            if name in (".zarray", ".zattrs", ".zgroup"):
                same = json.loads(got) == json.loads(want)
            else:
                same = got == want
            if not same:
                failures.append(f"round trip: {key}: served bytes differ from the JSON's")
            compared += 1
    # The same tree as the original index: `ls -r` lists every key and directory. `.zmetadata`
    # is the view's own consolidated metadata, rendered at each scanned file's group: the
    # original has one per TIFF, the import one at its root (the reference file's group).
    def tree(index):
        return {k for k in run(refzarr, "ls", "-r", index).stdout.split()
                if k.rsplit("/", 1)[-1] != ".zmetadata"}
    original, again = tree(index), tree(imported)
    if original != again:
        failures.append(f"round trip: trees differ: only in the original "
                        f"{sorted(original - again)[:5]}, only in the import "
                        f"{sorted(again - original)[:5]}")
    values = {k for k in again if not k.endswith("/")}
    if values != set(refs):
        failures.append(f"round trip: imported keys other than the JSON's: "
                        f"{sorted(values ^ set(refs))[:5]}")
    if compared < 200:
        failures.append(f"round trip: only {compared} keys compared")
    print(f"round trip: {compared} keys equal")
    return samples, imported


def tifffile_writer(refzarr, work, failures):
    import fsspec
    import numpy as np
    import tifffile
    import zarr
    folder = os.path.join(work, "tifffile")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "deflate.tif")
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4000, size=(3, 200, 300), dtype=np.uint16)
    tifffile.imwrite(path, pixels, tile=(64, 64), compression="zlib")
    for version in (0, 1):
        refs = os.path.join(folder, f"deflate.v{version}.json")
        with tifffile.TiffFile(path) as tif:
            with tif.series[0].aszarr() as store:
                store.write_fsspec(refs, url=folder, version=version)
        index = os.path.join(work, f"tifffile-v{version}.db")
        if os.path.exists(index):
            os.remove(index)
        done = run(refzarr, "import", "-o", index, refs)
        with passthrough(refzarr, index, work, f"-tifffile-v{version}") as server:
            # tifffile's JSON has the array at its root: it is array "0" of the index.
            arr = zarr.open(fsspec.get_mapper(server.url("0")), mode="r")
            got = arr[...]
        if got.shape != pixels.shape or not np.array_equal(got, tifffile.imread(path)):
            failures.append(f"tifffile v{version}: pixels differ ({got.shape} vs {pixels.shape})")
        else:
            print(f"tifffile v{version}: {got.size} pixels equal ({done.stderr.strip()})")


def hostile(refzarr, work, failures, samples, imported):
    folder = os.path.join(work, "hostile")
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, "etc-link")
    if not os.path.islink(link):
        os.symlink("/etc", link)
    zarray = json.dumps({"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "|u1",
                         "compressor": None, "filters": None, "fill_value": 0, "order": "C"})
    cases = {
        "absolute": ["/etc/passwd", 0, 4],
        "dotdot": ["../../../../../../../etc/passwd", 0, 4],
        "symlink": [link + "/passwd", 0, 4],
        "internal-url": ["http://169.254.169.254/latest/meta-data", 0, 4],
        "userinfo": ["http://user:hunter2secret@127.0.0.1:9/data/x", 0, 4],
        "escaped-dots": ["http://127.0.0.1:9/data/%2e%2e/private/x", 0, 4],
        "scheme": ["gopher://127.0.0.1/x", 0, 4],
    }
    before = run(refzarr, "ls", "-r", imported).stdout
    for name, ref in cases.items():
        doc = {"version": 1, "refs": {".zgroup": '{"zarr_format": 2}',
                                      "a/.zarray": zarray, "a/0": ref}}
        path = os.path.join(folder, name + ".json")
        with open(path, "w") as f:
            json.dump(doc, f)
        done = run(refzarr, "import", "-o", imported, path, "--root", folder,
                   "--allow-prefix", "http://127.0.0.1:9/data/", ok=False)
        if done.returncode != 1:
            failures.append(f"hostile {name}: exit {done.returncode}, expected 1: {done.stderr}")
        elif "'a/0'" not in done.stderr:
            failures.append(f"hostile {name}: the message does not name the key: {done.stderr}")
        if "hunter2secret" in done.stderr:
            failures.append(f"hostile {name}: the password reached the message")
        print(f"hostile {name}: {done.stderr.strip()}")
    gen = os.path.join(folder, "gen.json")
    with open(gen, "w") as f:
        json.dump({"version": 1, "refs": {}, "gen": [{"key": "a/{{i}}", "url": "x",
                                                      "dimensions": {"i": 3}}]}, f)
    done = run(refzarr, "import", "-o", imported, gen, ok=False)
    if done.returncode != 1 or "gen" not in done.stderr:
        failures.append(f"gen: expected a refusal naming it: {done.returncode} {done.stderr}")
    if run(refzarr, "ls", "-r", imported).stdout != before:
        failures.append("a refused import changed the index")


def stale_after_import(refzarr, work, failures):
    folder = os.path.join(work, "stale")
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "data.bin")
    with open(data, "wb") as f:
        f.write(bytes(range(16)))
    refs = os.path.join(folder, "refs.json")
    with open(refs, "w") as f:
        json.dump({".zgroup": '{"zarr_format": 2}',
                   "a/.zarray": json.dumps({"zarr_format": 2, "shape": [16], "chunks": [8],
                                            "dtype": "|u1", "compressor": None,
                                            "filters": None, "fill_value": 0, "order": "C"}),
                   "a/0": ["data.bin", 0, 8], "a/1": ["data.bin", 8, 8],
                   "b": "base64:aGVsbG8="}, f)
    index = os.path.join(work, "stale.db")
    if os.path.exists(index):
        os.remove(index)
    run(refzarr, "import", "-o", index, refs)
    server = passthrough(refzarr, index, work, "-stale")
    server.args += ["--revalidate", "0"]  # every read checks the source
    with server:
        status, _, body = server.request("GET", "a/1")
        if status != 200 or body != bytes(range(8, 16)):
            failures.append(f"version 0 import: a/1 is {status} {body!r}")
        status, _, body = server.request("GET", "b")
        if status != 200 or body != b"hello":
            failures.append(f"version 0 import: inline base64 value b is {status} {body!r}")
        c.rewrite_in_place(data)
        status, _, body = server.request("GET", "a/0")
        if status == 200:
            failures.append(f"a changed source was served after import: {body!r}")


def main():
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    failures = []
    samples, imported = round_trip(refzarr, work, failures)
    tifffile_writer(refzarr, work, failures)
    hostile(refzarr, work, failures, samples, imported)
    stale_after_import(refzarr, work, failures)
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures[:40]))
        sys.exit(1)
    print("OK: kerchunk import")


if __name__ == "__main__":
    main()
