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


def all_keys(refzarr, index):
    done = run([refzarr, "ls", "-r", index])
    return [k for k in done.stdout.splitlines() if not k.endswith("/")]


def compare_served(refzarr, local, remote, work, tag, env):
    """Every key of the local index, fetched from a server of each index: equal bytes."""
    keys = all_keys(refzarr, local)
    expect(keys == all_keys(refzarr, remote), f"{tag}: the remote index lists other keys")
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
            print(f"{tag}: {len(keys)} keys compared through serve, {differ} differ")
            expect(len(keys) > 3000, f"{tag}: only {len(keys)} keys")
            compare_arrays(a, b, tag)
    finally:
        os.environ.clear()
        os.environ.update(old)


def zarr_arrays(server):
    import fsspec
    import zarr
    root = zarr.open_group(fsspec.get_mapper(server.url("")), mode="r")
    return dict(c.walk_arrays(root))


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
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=True):
            FAILURES.append(f"{tag}: {key}: the remote array differs")
        compared += 1
    print(f"{tag}: {compared} arrays equal through zarr-python")
    expect(compared > 100, f"{tag}: only {compared} arrays compared")


def index_remote(refzarr, index, inputs, env, label, extra=()):
    done = run([refzarr, "index", "-o", index, *extra, *inputs], env=env)
    expect(done.returncode in (0, 1), f"{label}: refzarr index exited {done.returncode}: "
                                       f"{done.stderr[-1500:]}")
    print(f"{label}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
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
    refs = json.load(open(out))["refs"]
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
            if not np.array_equal(values, served[key][...], equal_nan=True):
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
    chunk = next(k for k in all_keys(refzarr, index) if k.startswith("0/") and k[2:3].isdigit())
    first = run([refzarr, "cat", index, chunk])
    expect(first.returncode == 0, f"replace: cat before the change failed: {first.stderr}")
    with serve_e2e.Server(refzarr, index, 2, work, "-replace") as server:
        before = requests.get(server.url(chunk))
        expect(before.status_code == 200, f"replace: served {before.status_code} before the change")
        data = bytearray(open(target, "rb").read())
        data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # same size, other bytes
        open(target, "wb").write(data)
        os.utime(target, (time.time() + 5, time.time() + 5))
        # Another chunk (never read) and the one read before: neither may be served.
        for key in sorted({chunk, *[k for k in all_keys(refzarr, index) if k.startswith("0/")][-1:]}):
            after = requests.get(server.url(key))
            expect(after.status_code >= 500, f"replace: {key} served {after.status_code} after the "
                                             "object was replaced")
        time.sleep(0.2)
        log = open(server.log_path).read()
        expect(url in log, f"replace: the server's log does not name {url}: {log[-500:]}")
    again = run([refzarr, "cat", index, chunk])
    expect(again.returncode != 0 and url in again.stderr,
           f"replace: cat after the change: exit {again.returncode}, {again.stderr[-300:]}")


def check_secrets(paths, s3):
    for path in paths:
        if not os.path.exists(path):
            continue
        data = open(path, "rb").read()
        for secret in (s3.secret_key, s3.access_key):
            expect(secret.encode() not in data, f"a credential appears in {path}")


def main():
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    archive = make_archive(work)
    local = os.path.join(work, "local.refs.db")
    done = run([refzarr, "index", "-o", local, archive])
    expect(done.returncode in (0, 1), f"local index exited {done.returncode}")
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
        stats = proxy.stats()
        print(f"http: {stats['requests']} requests through the proxy, faults {stats.get('faults_applied')}")
        expect(stats.get("faults_pending") in (0, [], {}, None),
               f"http: faults not all applied: {stats.get('faults_pending')}")
        compare_served(refzarr, local, http_index, work, "http", {})

        https_index = os.path.join(work, "https.refs.db")
        index_remote(refzarr, https_index, [webs.url + urllib.parse.quote(f) for f in files], {},
                     "https", ["--ca-file", webs.ca_file])
        compare_served(refzarr, local, https_index, work, "https", {"CURL_CA_BUNDLE": webs.ca_file})

        creds = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                 "AWS_REGION": s3.region, "AWS_ENDPOINT_URL": s3.endpoint}
        s3_index = os.path.join(work, "s3.refs.db")
        index_remote(refzarr, s3_index, [f"s3://{s3.bucket}/"], creds, "s3")
        compare_served(refzarr, local, s3_index, work, "s3", creds)

        # Wrong credentials: a clear message, no secret in it.
        bad = dict(creds, AWS_SECRET_ACCESS_KEY="not-the-secret-0123456789")
        wrong = run([refzarr, "index", "-o", os.path.join(work, "bad.refs.db"),
                     f"s3://{s3.bucket}/samples/tiled/u16_zstd.tif"], env=bad)
        expect(wrong.returncode != 0, "s3: wrong credentials indexed")
        expect("access denied" in wrong.stderr and "SignatureDoesNotMatch" in wrong.stderr,
               f"s3: wrong credentials: {wrong.stderr[-400:]}")
        expect("not-the-secret" not in wrong.stderr + wrong.stdout, "s3: the secret is in a message")

        check_export(refzarr, local, http_index, work)
        check_replaced(refzarr, archive, web, work)
        check_secrets([s3_index, s3_index + "-wal", *[os.path.join(work, f) for f in os.listdir(work)
                                                      if f.endswith((".err", ".log", ".json"))]], s3)
    if FAILURES:
        print(f"{len(FAILURES)} failures:")
        for f in FAILURES[:40]:
            print("  " + f)
        sys.exit(1)
    print("remote: all checks passed")


if __name__ == "__main__":
    main()
