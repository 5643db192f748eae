#!/usr/bin/python3
"""Shard objects of `refzarr serve --zarr-format 3 --codecs passthrough --shards auto`, decoded
from the Zarr v3 sharding specification alone, without refzarr's code.

Indexes the TIFF and HDF5 samples and the realdata (every_array_e2e.build_index). For every array
the view lists: its zarr.json names one "sharding_indexed" codec with an index at the end coded
[bytes little-endian, crc32c]; for every shard the listing (`refzarr ls -l`) shows, HEAD gives the
listed size, a suffix range gives the index, whose CRC-32C (crcmod, Debian's python3-crcmod) must
match; each entry (offset, nbytes as little-endian uint64; 2^64-1 for a missing chunk) must point
into the shard body (fetched whole once, and by a range for the first and last inner chunk), and
each inner chunk must equal the source file's bytes at the range `refzarr refs` gives, read here
with pread. Every stored chunk must be inside exactly one listed shard, every missing entry must be
a chunk the index lacks. Environment: as every_array_e2e.py (REFZARR_BIN, REFZARR_SAMPLES_BIN,
REFZARR_HDF5_SAMPLES_BIN, REFZARR_SHARED_DIR, REFZARR_WORK).
"""
import http.client
import json
import math
import os
import struct
import subprocess
import sys
import time
import urllib.parse

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
sys.path.insert(0, here)
import e2e_common as c  # noqa: E402
import every_array_e2e as ea  # noqa: E402

try:
    import crcmod.predefined
except ImportError:
    sys.exit("python3-crcmod is missing (the independent CRC-32C): apt-get install python3-crcmod")

crc32c = crcmod.predefined.mkCrcFun("crc-32c")
MISSING = (1 << 64) - 1
MIN_ARRAYS = 150  # arrays whose every shard was decoded


class Client:
    def __init__(self, port):
        self.port, self.conn = port, None

    def request(self, method, key, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, "/" + urllib.parse.quote(key), headers=headers or {})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def listed_view(refzarr, index):
    """({array}, {array: {shard key below the array: size}}) from `refzarr ls -r -l`."""
    done = subprocess.run([refzarr, "ls", "-r", "-l", index, "--zarr-format", "3", "--codecs",
                           "passthrough", "--shards", "auto"], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        sys.exit(f"refzarr ls failed: {done.stderr[-2000:]}")
    arrays, shards = set(), {}
    for line in done.stdout.splitlines():
        kind, size, key = line.split(None, 2)
        if kind == "array":
            arrays.add(key.rstrip("/"))
        elif kind == "chunk":
            array, sep, rest = key.rpartition("/c/")
            if not sep:  # a 0-d array's one chunk "c"
                array, rest = key[:-2], ""
            shards.setdefault(array, {})["c" + ("/" + rest if rest else "")] = \
                None if size == "-" else int(size)
    return arrays, shards


def check_array(client, array, shards, refs, sources, failures):
    """Decodes every shard of `array`; returns the inner chunks compared."""
    status, _, body = client.request("GET", array + "/zarr.json")
    if status != 200:
        failures.add("v3 shards", array, f"zarr.json: HTTP {status}")
        return 0
    meta = json.loads(body)
    shape, codecs = meta["shape"], meta["codecs"]
    if not shape:
        return 0  # 0-d arrays are served unsharded
    if len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
        failures.add("v3 shards", array, f"codecs are not one sharding_indexed: {codecs}")
        return 0
    conf = codecs[0]["configuration"]
    inner = conf["chunk_shape"]
    outer = meta["chunk_grid"]["configuration"]["chunk_shape"]
    if conf.get("index_location", "end") != "end" or conf["index_codecs"] != [
            {"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]:
        failures.add("v3 shards", array, f"unexpected index codecs {conf}")
        return 0
    per = [o // i for o, i in zip(outer, inner)]
    if any(o % i for o, i in zip(outer, inner)):
        failures.add("v3 shards", array, f"shard shape {outer} not a multiple of {inner}")
        return 0
    grid = [math.ceil(s / i) for s, i in zip(shape, inner)]
    count = math.prod(per)
    index_bytes = 16 * count + 4
    covered = set()
    compared = 0
    for key, size in sorted(shards.items()):
        where = f"{array}/{key}"
        shard = [int(n) for n in key.split("/")[1:]]
        status, headers, _ = client.request("HEAD", where)
        length = int(headers.get("content-length", -1))
        if status != 200 or (size is not None and length != size):
            failures.add("v3 shards", array, f"HEAD {key}: HTTP {status}, {length} bytes, "
                                             f"listing says {size}")
            continue
        status, headers, tail = client.request("GET", where, {"Range": f"bytes=-{index_bytes}"})
        if status != 206 or len(tail) != index_bytes:
            failures.add("v3 shards", array, f"suffix range of {key}: HTTP {status}, "
                                             f"{len(tail)} bytes for {index_bytes}")
            continue
        raw, (crc,) = tail[:-4], struct.unpack("<I", tail[-4:])
        if crc32c(raw) != crc:
            failures.add("v3 shards", array, f"{key}: index CRC-32C {crc:#x} != "
                                             f"{crc32c(raw):#x}")
            continue
        entries = struct.unpack(f"<{2 * count}Q", raw)
        status, _, whole = client.request("GET", where)
        if status != 200 or len(whole) != length or whole[-index_bytes:] != tail:
            failures.add("v3 shards", array, f"GET {key}: HTTP {status}, {len(whole)} bytes, "
                                             "or its end is not the index")
            continue
        present = []
        for j in range(count):
            offset, nbytes = entries[2 * j], entries[2 * j + 1]
            local, rest = [], j
            for k in reversed(per):
                local.append(rest % k)
                rest //= k
            coords = tuple(s * k + l for s, k, l in zip(shard, per, reversed(local)))
            inside = all(x < g for x, g in zip(coords, grid))
            ref = refs.get(coords) if inside else None
            if offset == MISSING and nbytes == MISSING:
                if ref is not None:
                    failures.add("v3 shards", array, f"{key}: chunk {coords} is stored, the "
                                                     "shard index says missing")
                continue
            if not inside or ref is None:
                failures.add("v3 shards", array, f"{key}: entry {j} ({coords}) names a chunk "
                                                 "the index lacks")
                continue
            if offset + nbytes > length - index_bytes:
                failures.add("v3 shards", array, f"{key}: entry {j} past the shard body")
                continue
            covered.add(coords)
            got = whole[offset:offset + nbytes]
            uri, src_offset, src_length = ref
            if uri != "inline":
                want = sources.read(uri, src_offset, src_length)
                if got != want:
                    failures.add("v3 shards", array, f"{key}: inner chunk {coords} is not the "
                                                     f"source bytes at {src_offset}+{src_length}")
                    continue
            compared += 1
            present.append((offset, nbytes, got))
        for offset, nbytes, got in present[:1] + present[-1:]:
            status, _, part = client.request(
                "GET", where, {"Range": f"bytes={offset}-{offset + nbytes - 1}"})
            if status != 206 or part != got:
                failures.add("v3 shards", array, f"{key}: range {offset}+{nbytes}: HTTP "
                                                 f"{status}, not the inner chunk")
    missing = set(refs) - covered
    if missing:
        failures.add("v3 shards", array, f"{len(missing)} stored chunks in no listed shard, "
                                         f"e.g. {sorted(missing)[0]}")
    return compared


def main():
    started = time.time()
    refzarr, work, shared = c.env("REFZARR_BIN"), c.env("REFZARR_WORK"), c.env("REFZARR_SHARED_DIR")
    index, _ = ea.build_index(refzarr, work, shared)
    arrays, shards = listed_view(refzarr, index)
    refs = ea.read_refs(refzarr, index, arrays)
    failures, sources = c.Failures([]), ea.SourceBytes()
    decoded, chunks = 0, 0
    with ea.ViewServer(refzarr, index, 3, "passthrough", work, "auto") as server:
        client = Client(server.port)
        for array in sorted(arrays):
            if isinstance(refs.get(array), str):
                failures.add("v3 shards", array, f"refzarr refs: {refs[array]}")
                continue
            before = len(failures.rows)
            n = check_array(client, array, shards.get(array, {}), refs[array], sources, failures)
            chunks += n
            decoded += n > 0 and len(failures.rows) == before
    print(f"{len(arrays)} arrays, {decoded} decoded shard by shard, {chunks} inner chunks equal "
          f"to the source ({time.time() - started:.1f} s)")
    if decoded < MIN_ARRAYS:
        failures.add("v3 shards", "*", f"only {decoded} arrays decoded (at least {MIN_ARRAYS})")
    failures.print_table("shards decoded from the spec")
    sys.exit(1 if failures.rows else 0)


if __name__ == "__main__":
    main()
