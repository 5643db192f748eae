#!/usr/bin/python3
"""Remote archives end to end, on real servers started here on loopback (tests/support/remote):
the samples, the HDF5 samples and every realdata file are indexed from nginx over HTTP/1.1
(through a fault-injecting proxy: 503, 429, a reset and a truncated body on the way), from nginx
over HTTPS with HTTP/2, and from an S3 store (s3rver behind a front that checks every SigV4
signature with botocore) as a prefix, and each remote index must equal the local index of the same
files: the same keys, every key's bytes equal through `refzarr serve`, and zarr-python reading
every array of the remote index equal to the local one. Also: the kerchunk export of the HTTP
index names the URLs and fsspec's HTTP file system reads its arrays from the origin equal to the
local ones; an object replaced after indexing is refused (5xx from serve, an error from cat, both
naming the URI), never served; wrong S3 credentials fail clearly; no credential reaches the
index, the export or a log.
Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_HDF5_SAMPLES_BIN, REFZARR_SHARED_DIR,
REFZARR_WORK, REFZARR_JS_WORK (where s3rver is installed with npm ci)."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

import numpy as np
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli", "http"))
sys.path.insert(0, os.path.join(HERE, "..", "support", "remote"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402
import remote_servers  # noqa: E402

FAILURES = []


def expect(condition, message):
    if not condition:
        FAILURES.append(message)
        print("FAIL: " + message)


def run(args, env=None, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def make_archive(work):
    """The archive: samples, HDF5 samples, a copy of every realdata file."""
    archive = os.path.join(work, "archive")
    subprocess.run([c.env("REFZARR_SAMPLES_BIN"), os.path.join(archive, "samples"), "-q"], check=True)
    subprocess.run([c.env("REFZARR_HDF5_SAMPLES_BIN"), os.path.join(archive, "hdf5")], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.copytree(os.path.join(c.env("REFZARR_SHARED_DIR"), "realdata"),
                    os.path.join(archive, "realdata"))
    return archive


def indexed_files(refzarr, index):
    """The archive paths (relative, '/'-separated) of the sources the index scanned or failed."""
    done = run([refzarr, "info", "--json", index])
    info = json.loads(done.stdout)
    return sorted(f["group"] for f in info["files"] if f["status"] in ("ok", "failed", "stale"))


def all_keys(refzarr, index, env=None):
    done = run([refzarr, "ls", "-r", index], env=env)
    expect(done.returncode == 0, f"ls -r {index}: {done.stderr[-300:]}")
    return [k for k in done.stdout.splitlines() if not k.endswith("/")]


def sampled(keys):
    """Every metadata key, and of each array's chunks the first, the last and about 30 between
    (the references of all of them are compared through the exports)."""
    arrays = {k.rsplit("/", 1)[0] for k in keys if k.endswith((".zarray", "zarr.json"))}
    chunks, out = {}, []
    for k in keys:
        if k.rsplit("/", 1)[-1] in (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"):
            out.append(k)
            continue
        parent = k
        while "/" in parent and parent not in arrays:
            parent = parent.rsplit("/", 1)[0]
        chunks.setdefault(parent if parent in arrays else k, []).append(k)
    for group in chunks.values():
        step = max(1, len(group) // 30)
        out.extend(sorted(set(group[::step]) | {group[-1]}))
    return out


def same_exports(refzarr, local, remote, work, tag, env, origin):
    """The kerchunk exports of both indexes: the same keys, metadata and [source, offset, length]
    of every chunk (a local path and the remote URI naming the same archive file)."""
    exports = []
    for index, name in ((local, "local"), (remote, tag)):
        out = os.path.join(work, f"{name}.export.json")
        if name == "local" and os.path.exists(out):
            exports.append(json.load(open(out))["refs"])  # exported for an earlier tag
            continue
        done = run([refzarr, "export", index, "-o", out], env=env)
        expect(done.returncode == 0, f"{tag}: export of {name}: {done.stderr[-300:]}")
        exports.append(json.load(open(out))["refs"] if done.returncode == 0 else {})
    a, b = exports
    expect(sorted(a) == sorted(b), f"{tag}: the exports hold other keys")
    differ = 0
    for key, value in a.items():
        other = b.get(key)
        if isinstance(value, list) and isinstance(other, list):
            rel = os.path.relpath(value[0], origin[0])
            same = urllib.parse.unquote(other[0]) == origin[1] + rel and value[1:] == other[1:]
        else:
            same = value == other
        if not same:
            differ += 1
            if differ <= 5:
                FAILURES.append(f"{tag}: export key {key}: local {value}, remote {other}")
    stamp(f"{tag}: {len(a)} exported keys compared, {differ} differ")


def compare_served(refzarr, local, remote, work, tag, env, arrays=True):
    """Keys of the local index (sampled), fetched from a server of each index: equal bytes."""
    keys = all_keys(refzarr, local)
    expect(keys == all_keys(refzarr, remote, env), f"{tag}: the remote index lists other keys")
    keys = sampled(keys)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        with serve_e2e.Server(refzarr, local, 2, work, "-local-" + tag) as a, \
             serve_e2e.Server(refzarr, remote, 2, work, "-" + tag) as b:
            sa, sb = requests.Session(), requests.Session()
            differ = 0
            for key in keys:
                q = urllib.parse.quote(key)
                ra, rb = sa.get(a.url(q)), sb.get(b.url(q))
                if ra.status_code != rb.status_code or ra.content != rb.content:
                    differ += 1
                    if differ <= 5:
                        FAILURES.append(f"{tag}: {key}: local {ra.status_code} {len(ra.content)} "
                                        f"bytes, remote {rb.status_code} {len(rb.content)} bytes")
            stamp(f"{tag}: {len(keys)} keys compared through serve, {differ} differ")
            expect(len(keys) > 2000, f"{tag}: only {len(keys)} keys")
            if arrays:
                compare_arrays(a, b, tag)
    finally:
        os.environ.clear()
        os.environ.update(old)


def zarr_arrays(server, under=("samples", "hdf5")):
    """The arrays of the samples and HDF5 samples (realdata arrays, some of thousands of tiny
    chunks, are compared key by key)."""
    import fsspec
    import zarr
    out = {}
    for folder in under:
        root = zarr.open_group(fsspec.get_mapper(server.url(folder + "/")), mode="r")
        out.update({folder + "/" + k: v for k, v in c.walk_arrays(root)})
    return out


def compare_arrays(local_server, remote_server, tag):
    """zarr-python reads every array of both servers: equal values."""
    local, remote = zarr_arrays(local_server), zarr_arrays(remote_server)
    expect(sorted(local) == sorted(remote), f"{tag}: zarr-python sees other arrays")
    compared = 0
    for key, arr in local.items():
        if key not in remote:
            continue
        try:
            a, b = arr[...], remote[key][...]
        except Exception as e:
            FAILURES.append(f"{tag}: {key}: read failed: {type(e).__name__}: {e}")
            continue
        nan = a.dtype.kind in "fc"
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=nan):
            FAILURES.append(f"{tag}: {key}: the remote array differs")
        compared += 1
    stamp(f"{tag}: {compared} arrays equal through zarr-python")
    expect(compared > 100, f"{tag}: only {compared} arrays compared")


def index_remote(refzarr, index, inputs, env, label, extra=()):
    done = run([refzarr, "index", "-o", index, *extra, *inputs], env=env)
    expect(done.returncode in (0, 1), f"{label}: refzarr index exited {done.returncode}: "
                                       f"{done.stderr[-1500:]}")
    stamp(f"{label}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    return done


def check_export(refzarr, local, remote, work):
    """The kerchunk export of the HTTP index points at the URLs; fsspec reads them."""
    import fsspec
    import zarr
    sys.path.insert(0, HERE)
    from export_e2e import KeyByKeyStore, arrays
    out = os.path.join(work, "http.json")
    done = run([refzarr, "export", remote, "-o", out])
    expect(done.returncode == 0, f"export: exit {done.returncode}: {done.stderr[-500:]}")
    # The samples' arrays (fsspec 2022's reference file system is slow on the realdata's 60,000
    # keys, whose references the exports' comparison checks).
    refs = {k: v for k, v in json.load(open(out))["refs"].items()
            if k.startswith(("samples/", "hdf5/")) or "/" not in k}
    urls = {v[0] for v in refs.values() if isinstance(v, list)}
    expect(urls and all(u.startswith("http://127.0.0.1:") for u in urls),
           f"export: chunk references name {sorted(urls)[:3]}, not the HTTP origin")
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="http")
    root = zarr.open_group(KeyByKeyStore(fs), mode="r")
    with serve_e2e.Server(refzarr, local, 2, work, "-export-local") as server:
        served = zarr_arrays(server)
        compared = 0
        for key, arr in arrays(root, zarr):
            if isinstance(arr, Exception) or key not in served:
                continue  # a codec numcodecs lacks (the local export test covers those)
            try:
                values = arr[...]
            except Exception:
                continue
            expected = served[key][...]
            if not np.array_equal(values, expected, equal_nan=expected.dtype.kind in "fc"):
                FAILURES.append(f"export: {key}: read from the origin differs from the local index")
            compared += 1
        print(f"export: {compared} arrays read by fsspec from the HTTP origin, equal")
        expect(compared >= 20, f"export: only {compared} arrays compared")


def check_replaced(refzarr, archive, web, work):
    """An object replaced after indexing: serve answers 5xx and cat fails, both naming the URI."""
    folder = os.path.join(archive, "replace")
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, "x.tif")
    shutil.copy(os.path.join(archive, "samples", "tiled", "u16_zstd.tif"), target)
    index = os.path.join(work, "replace.refs.db")
    url = web.url + "replace/x.tif"
    done = run([refzarr, "index", "-o", index, url])
    expect(done.returncode == 0, f"replace: index failed: {done.stderr}")
    chunks = [k for k in all_keys(refzarr, index) if k.rsplit("/", 1)[-1][:1].isdigit()]
    chunk = chunks[0]
    first = subprocess.run([refzarr, "cat", index, chunk], capture_output=True)
    expect(first.returncode == 0, f"replace: cat before the change failed: {first.stderr}")
    with serve_e2e.Server(refzarr, index, 2, work, "-replace") as server:
        before = requests.get(server.url(chunk))
        expect(before.status_code == 200, f"replace: served {before.status_code} before the change")
        data = bytearray(open(target, "rb").read())
        data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # same size, other bytes
        open(target, "wb").write(data)
        os.utime(target, (time.time() + 5, time.time() + 5))
        time.sleep(1.2)  # remote sources are stat'ed at most once a second
        # Another chunk (never read) and the one read before: neither may be served.
        for key in sorted({chunk, chunks[-1]}):
            after = requests.get(server.url(key))
            expect(after.status_code >= 500, f"replace: {key} served {after.status_code} after the "
                                             "object was replaced")
        log = open(server.log_path).read()
        expect(url in log, f"replace: the server's log does not name {url}: {log[-500:]}")
    again = subprocess.run([refzarr, "cat", index, chunk], capture_output=True)
    again.stderr = again.stderr.decode(errors="replace")
    expect(again.returncode != 0 and url in again.stderr,
           f"replace: cat after the change: exit {again.returncode}, {again.stderr[-300:]}")


def check_secrets(paths, s3):
    for path in paths:
        if not os.path.exists(path):
            continue
        data = open(path, "rb").read()
        for secret in (s3.secret_key, s3.access_key):
            expect(secret.encode() not in data, f"a credential appears in {path}")


def stamp(what, start=[time.time()]):
    print(f"[{time.time() - start[0]:.0f} s] {what}", flush=True)


def main():
    start = time.time()
    stamp("start")
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    archive = make_archive(work)
    local = os.path.join(work, "local.refs.db")
    done = run([refzarr, "index", "-o", local, archive])
    expect(done.returncode in (0, 1), f"local index exited {done.returncode}")
    stamp("local index")
    files = indexed_files(refzarr, local)
    print(f"archive: {len(files)} files indexed or failed locally")
    expect(len(files) > 80, f"only {len(files)} files in the archive")

    js = os.environ.get("REFZARR_JS_WORK")
    with remote_servers.Nginx(archive) as web, remote_servers.Nginx(archive, https=True) as webs, \
            remote_servers.S3Server(archive, js_work=js) as s3, \
            remote_servers.FaultProxy(web.url) as proxy:
        # HTTP through the proxy, with faults the retries must absorb (fewer in a row than the
        # attempts a request gets).
        proxy.set_latency(2)
        for kind in ("503", "reset", "truncate", "429"):
            proxy.fail_next(1, kind)
        http_index = os.path.join(work, "http.refs.db")
        base = proxy.url if proxy.url.endswith("/") else proxy.url + "/"
        index_remote(refzarr, http_index, [base + urllib.parse.quote(f) for f in files], {}, "http")
        stamp("http index")
        stats = proxy.stats()
        print(f"http: {stats['requests']} requests through the proxy, faults {stats.get('faults_applied')}")
        expect(stats.get("faults_pending") in (0, [], {}, None),
               f"http: faults not all applied: {stats.get('faults_pending')}")
        compare_served(refzarr, local, http_index, work, "http", {})
        same_exports(refzarr, local, http_index, work, "http", {}, (archive, base))

        https_index = os.path.join(work, "https.refs.db")
        index_remote(refzarr, https_index, [webs.url + urllib.parse.quote(f) for f in files], {},
                     "https", ["--ca-file", webs.ca_file])
        tls = {"CURL_CA_BUNDLE": webs.ca_file}
        compare_served(refzarr, local, https_index, work, "https", tls, arrays=False)
        same_exports(refzarr, local, https_index, work, "https", tls, (archive, webs.url))

        creds = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                 "AWS_REGION": s3.region, "AWS_ENDPOINT_URL": s3.endpoint}
        s3_index = os.path.join(work, "s3.refs.db")
        index_remote(refzarr, s3_index, [f"s3://{s3.bucket}/"], creds, "s3")
        compare_served(refzarr, local, s3_index, work, "s3", creds, arrays=False)
        same_exports(refzarr, local, s3_index, work, "s3", creds,
                     (archive, f"s3://{s3.bucket}/"))

        # Wrong credentials: a clear message, no secret in it.
        bad = dict(creds, AWS_SECRET_ACCESS_KEY="not-the-secret-0123456789")
        wrong = run([refzarr, "index", "-o", os.path.join(work, "bad.refs.db"),
                     f"s3://{s3.bucket}/samples/tiled/u16_zstd.tif"], env=bad)
        expect(wrong.returncode != 0, "s3: wrong credentials indexed")
        expect("access denied" in wrong.stderr and "SignatureDoesNotMatch" in wrong.stderr,
               f"s3: wrong credentials: {wrong.stderr[-400:]}")
        expect("not-the-secret" not in wrong.stderr + wrong.stdout, "s3: the secret is in a message")

        # An object deleted from the bucket leaves the index when its prefix is indexed again.
        before = indexed_files(refzarr, s3_index)
        gone = "samples/tiled/u16_zstd.tif"
        s3.delete(gone)
        again = index_remote(refzarr, s3_index, [f"s3://{s3.bucket}/"], creds, "s3 after a delete")
        expect(f"removed s3://{s3.bucket}/{gone} from the index (no longer listed under "
               f"s3://{s3.bucket}/)" in again.stderr, f"s3: a deleted object: {again.stderr[-600:]}")
        after = indexed_files(refzarr, s3_index)
        expect(gone in before and gone not in after and len(after) == len(before) - 1,
               f"s3: after deleting {gone}: {len(before)} -> {len(after)} files")
        s3.put(gone, open(os.path.join(archive, gone), "rb").read())  # as it was, for what follows

        check_export(refzarr, local, http_index, work)
        check_replaced(refzarr, archive, web, work)
        check_secrets([s3_index, s3_index + "-wal", *[os.path.join(work, f) for f in os.listdir(work)
                                                      if f.endswith((".err", ".log", ".json"))]], s3)
    if FAILURES:
        print(f"{len(FAILURES)} failures:")
        for f in FAILURES[:40]:
            print("  " + f)
        sys.exit(1)
    print(f"remote: all checks passed in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
