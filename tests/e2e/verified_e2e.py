#!/usr/bin/python3
"""Verified mode end to end (docs/verified.md): `refzarr index --checksums`, then
1. every recorded CRC-32C (`refzarr refs`) equals the CRC-32C that crcmod (Debian's
   python3-crcmod, an independent implementation) computes over the file's bytes at the
   reference's offset and length, for every array of the samples;
2. served with verification, zarr-python over fsspec's HTTP file system reads every array of the
   samples equal to tifffile;
3. a chunk edited in place in its middle (same size), while `serve --revalidate 3600` holds the
   file open and checked: the index without checksums serves the changed bytes (the hole verified
   mode closes), the checksummed one answers an error and never the changed bytes, for that
   chunk and then every chunk of the file (stale);
4. `refzarr merge` of checksummed indexes keeps every checksum, and the merged index refuses the
   edited chunk too.
Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_WORK."""
import os
import shutil
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


def refs(refzarr, index, array):
    """(key, uri, offset, length, crc32c or None) of every stored chunk of `array`."""
    out = []
    for line in run(refzarr, "refs", index, array).stdout.splitlines():
        fields = line.split("\t")
        crc = next((f[len("crc32c="):] for f in fields[4:] if f.startswith("crc32c=")), None)
        out.append((fields[0], fields[1], int(fields[2]), int(fields[3]), crc))
    return out


def arrays_of(refzarr, index):
    """Tree paths of every array of the index (`refzarr ls -r`, entries with a .zarray)."""
    listing = run(refzarr, "ls", "-r", index).stdout.split()
    return sorted({p[: -len("/.zarray")] for p in listing if p.endswith("/.zarray")})


def local_path(source):
    """`refzarr refs` shows local sources as their paths (DisplaySource)."""
    if not os.path.isabs(source):
        sys.exit(f"FAIL: expected a local path, got {source}")
    return source


def main():
    import crcmod.predefined
    import fsspec
    import zarr
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    failures = []
    crc32c = crcmod.predefined.mkCrcFun("crc-32c")

    # 1. The samples, checksummed: every CRC against crcmod over the file's own bytes.
    samples, plain_index = c.make_index(refzarr, c.env("REFZARR_SAMPLES_BIN"), work)
    index = os.path.join(work, "checksummed.db")
    run(refzarr, "index", "--checksums", "-o", index, samples, ok=False)
    checked = 0
    for array in arrays_of(refzarr, index):
        for key, uri, offset, length, crc in refs(refzarr, index, array):
            if uri == "inline":
                continue
            if crc is None:
                failures.append(f"{key}: no checksum recorded")
                continue
            with open(local_path(uri), "rb") as f:
                f.seek(offset)
                want = crc32c(f.read(length))
            if int(crc, 16) != want:
                failures.append(f"{key}: crc32c {crc} recorded, crcmod says {want:08x}")
            checked += 1
    if checked < 100:
        failures.append(f"only {checked} checksummed references in the samples")
    print(f"{checked} recorded CRC-32C values equal crcmod's")
    # The index without --checksums records none.
    some = arrays_of(refzarr, plain_index)[0]
    if any(r[4] is not None for r in refs(refzarr, plain_index, some)):
        failures.append("an index made without --checksums has checksums")

    # 2. Verified serving reads every array right.
    with Server(refzarr, index, 2, work, tag="-verified") as server:
        root = zarr.open(fsspec.get_mapper(server.url()), mode="r")
        failures += c.check_all_arrays(root, samples, "zarr-python over verified HTTP")

    # 3. An in-place edit the generation check does not see within --revalidate.
    edit_dir = os.path.join(work, "edit")
    shutil.rmtree(edit_dir, ignore_errors=True)
    os.makedirs(edit_dir)
    tif = os.path.join(edit_dir, "tiles.tif")
    c.write_tiled_tiff(tif)
    plain, verified = os.path.join(work, "edit-plain.db"), os.path.join(work, "edit-verified.db")
    run(refzarr, "index", "-o", plain, tif)
    run(refzarr, "index", "--checksums", "-o", verified, tif)
    tiles = refs(refzarr, verified, "0/0")
    if len(tiles) != 4:
        sys.exit(f"FAIL: expected 4 tiles, got {tiles}")
    key0, key1 = tiles[0][0], tiles[1][0]  # the served keys (dimension_separator "/")
    merged_a = os.path.join(work, "merge-a.db")
    other = os.path.join(edit_dir, "other")
    os.makedirs(other)
    c.write_tiled_tiff(os.path.join(other, "b.tif"))
    run(refzarr, "index", "--checksums", "-o", merged_a, "--root", edit_dir, tif)
    merged_b = os.path.join(work, "merge-b.db")
    run(refzarr, "index", "--checksums", "-o", merged_b, "--root", edit_dir,
        os.path.join(other, "b.tif"))
    merged = os.path.join(work, "merged.db")
    if os.path.exists(merged):
        os.remove(merged)
    run(refzarr, "merge", "-o", merged, merged_a, merged_b)
    # 4. merge keeps the checksums.
    for source, path in ((merged_a, "tiles.tif/0/0"), (merged_b, "other/b.tif/0/0")):
        if refs(refzarr, source, path) != refs(refzarr, merged, path):
            failures.append(f"merge changed the references or checksums of {path}")
    if any(r[4] is None for r in refs(refzarr, merged, "tiles.tif/0/0")):
        failures.append("merged references lost their checksums")

    servers = [Server(refzarr, plain, 2, work, tag="-edit-plain"),
               Server(refzarr, verified, 2, work, tag="-edit-verified"),
               Server(refzarr, merged, 2, work, tag="-edit-merged"),
               Server(refzarr, verified, 3, work, tag="-edit-sharded")]
    for s in servers:
        s.args += ["--revalidate", "3600"]
    # A sharded v3 view of stored bytes: its shards are slices of the file, checked like chunks.
    servers[3].args += ["--shards", "auto", "--codecs", "passthrough"]
    shard_key = "0/0/c/0/0/0/0/0"  # the whole plane of 4 tiles is one shard
    prefixes = ["", "", "tiles.tif/"]
    with servers[0] as s_plain, servers[1] as s_verified, servers[2] as s_merged, \
            servers[3] as s_sharded:
        status, _, body = s_sharded.request("GET", shard_key)
        if status != 200:
            sys.exit(f"FAIL: GET {shard_key} of the sharded view before the edit: {status} "
                     f"{body[:200]}")
        before = {}
        for s, p in zip((s_plain, s_verified, s_merged), prefixes):
            status, _, body = s.request("GET", p + key0)
            if status != 200:
                sys.exit(f"FAIL: GET {p + key0} before the edit: {status} {body[:200]}")
            before[id(s)] = body
        # The middle of tile 0, rewritten in place: same size.
        _, _, offset, length, _ = tiles[0]
        with open(tif, "r+b") as f:
            f.seek(offset + length // 2)
            f.write(b"\xa5" * 16)
        with open(tif, "rb") as f:
            f.seek(offset)
            edited = f.read(length)
        status, _, body = s_plain.request("GET", key0)
        if status != 200 or body != edited:
            failures.append(f"without checksums the edited tile was expected to be served as "
                            f"is (the hole verified mode closes): got {status}, "
                            f"{'edited bytes' if body == edited else 'other bytes'}")
        for s, p, label in ((s_verified, "", "verified"), (s_merged, "tiles.tif/", "merged")):
            status, _, body = s.request("GET", p + key0)
            if status == 200 or edited in body:
                failures.append(f"{label}: the edited chunk was served ({status})")
            elif b"changed since indexing" not in body and b"CRC-32C" not in body:
                print(f"{label}: refused with {status}: {body[:200]!r}")
            # The file is stale now: its other chunks fail too.
            status, _, body = s.request("GET", p + key1)
            if status == 200:
                failures.append(f"{label}: another chunk of the edited file was still served")
        status, _, body = s_sharded.request("GET", shard_key)
        if status == 200 or edited in body:
            failures.append(f"sharded: the shard holding the edited chunk was served ({status})")
        err = open(s_verified.log_path).read()
        print("verified server said:", err.strip().splitlines()[-1:] if err.strip() else "nothing")

    if failures:
        print("FAIL:\n  " + "\n  ".join(failures[:40]))
        sys.exit(1)
    print("OK: verified mode")


if __name__ == "__main__":
    main()
