#!/usr/bin/python3
"""`refzarr serve` end to end: index the samples, serve them on loopback, and read them with real
clients: zarr-python through fsspec's HTTP file system and GDAL's Zarr driver over /vsicurl/, both
compared with tifffile; plain HTTP checks (HEAD, ranges, 404, CORS, OPTIONS); the served OME-NGFF
metadata validated against the official schemas; v2 and v3 servers never share a key; SIGTERM stops
the server cleanly. Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_SHARED_DIR, REFZARR_WORK."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as c  # noqa: E402


class Server:
    """A `refzarr serve` process on an ephemeral loopback port."""

    def __init__(self, refzarr, index, zarr_format, work, tag=""):
        self.log_path = os.path.join(work, f"serve{tag}-v{zarr_format}.err")
        self.access_path = os.path.join(work, f"access{tag}-v{zarr_format}.log")
        self.args = [refzarr, "serve", index, "--port", "0", "--zarr-format", str(zarr_format),
                     "--access-log", self.access_path]

    def __enter__(self):
        self.err = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        timer = c.Timer(15)
        while not timer.expired():
            with open(self.log_path) as f:
                m = re.search(r"on http://127\.0\.0\.1:(\d+)/", f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        sys.exit("refzarr serve did not start: " + open(self.log_path).read())

    def stop(self):
        """SIGTERM; returns (exit code, seconds to exit)."""
        start = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed after 10 s"
        self.err.close()
        return code, time.time() - start

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()

    def url(self, key=""):
        return f"http://127.0.0.1:{self.port}/{key}"

    def request(self, method, key, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, "/" + urllib.parse.quote(key), headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def expect(failures, condition, message):
    if not condition:
        failures.append(message)


def first_chunk_key(server, array_key):
    status, _, body = server.request("GET", array_key + "/.zarray")
    meta = json.loads(body)
    sep = meta.get("dimension_separator", ".")
    return array_key + "/" + sep.join("0" * len(meta["shape"]))


def check_plain_http(server, array_keys, failures):
    """HEAD, ranges, 404, CORS, OPTIONS on real keys, with plain requests."""
    chunk = first_chunk_key(server, array_keys[0])
    status, headers, body = server.request("GET", chunk)
    expect(failures, status == 200, f"GET {chunk}: {status}")
    size = len(body)
    expect(failures, headers.get("content-type") == "application/octet-stream", "chunk content type")
    expect(failures, "content-encoding" not in headers, "chunk has Content-Encoding")
    expect(failures, headers.get("access-control-allow-origin") == "*", "CORS on chunk")
    status, headers, head_body = server.request("HEAD", chunk)
    expect(failures, status == 200 and head_body == b"" and
           headers.get("content-length") == str(size), f"HEAD {chunk}: {status} {headers}")
    status, headers, part = server.request("GET", chunk, {"Range": "bytes=1-10"})
    expect(failures, status == 206 and part == body[1:11] and
           headers.get("content-range") == f"bytes 1-10/{size}", f"range: {status} {headers}")
    status, headers, part = server.request("GET", chunk, {"Range": "bytes=-7"})
    expect(failures, status == 206 and part == body[-7:], f"suffix range: {status}")
    status, headers, _ = server.request("GET", chunk, {"Range": f"bytes={size}-"})
    expect(failures, status == 416 and headers.get("content-range") == f"bytes */{size}",
           f"unsatisfiable range: {status} {headers}")
    status, headers, _ = server.request("GET", array_keys[0] + "/99/99/99/99/99")
    expect(failures, status == 404, f"missing chunk: {status}")
    expect(failures, headers.get("access-control-allow-origin") == "*", "CORS on 404")
    status, headers, _ = server.request("OPTIONS", chunk, {
        "Origin": "http://viewer.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    expect(failures, status in (200, 204) and
           "range" in headers.get("access-control-allow-headers", "").lower(), f"OPTIONS: {status}")
    status, headers, _ = server.request("GET", array_keys[0] + "/.zarray")
    expect(failures, headers.get("content-type") == "application/json", "metadata content type")
    status, _, _ = server.request("PUT", chunk)
    expect(failures, status == 405, f"PUT: {status}")
    status, headers, body = server.request("GET", "")
    expect(failures, status == 200 and b"href=" in body and "text/html" in headers["content-type"],
           "root listing")


class GdalArray:
    """Reads one array through GDAL's Zarr driver over /vsicurl/, shaped like a zarr array."""

    def __init__(self, url, name):
        from osgeo import gdal
        # GDAL looks for coordinate arrays named by _ARRAY_DIMENSIONS in every parent, up past the
        # server root, and leaves an error behind; clear it so it does not fail the next open.
        gdal.ErrorReset()
        ds = gdal.OpenEx("/vsicurl/" + url, gdal.OF_MULTIDIM_RASTER)
        if ds is None:
            raise RuntimeError(f"GDAL cannot open {url}: {gdal.GetLastErrorMsg()}")
        self.ds = ds
        self.array = ds.GetRootGroup().OpenMDArray(name)
        if self.array is None:
            raise RuntimeError(f"GDAL cannot open array {name} of {url}")

    def __getitem__(self, _):
        return self.array.ReadAsArray()


def check_gdal(server, samples, array_keys, failures):
    from osgeo import gdal
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    gdal.SetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    compared = 0
    for key in array_keys:
        parent, name = key.rsplit("/", 1)
        try:
            message = c.compare_array(GdalArray(server.url(parent), name), samples, key,
                                      allow_widening=True)
        except Exception as e:
            message = f"{key}: GDAL read failed: {e}"
        if message is None:
            compared += 1
        elif not message.startswith("skip:"):
            failures.append("GDAL " + message)
    print(f"GDAL /vsicurl/: {compared} arrays equal to tifffile")
    expect(failures, compared >= 20, f"GDAL compared only {compared} arrays")


def listing_walk(server, key=""):
    """Every file key below `key`, following the HTML listings as a browser would."""
    status, _, body = server.request("GET", key + "/" if key else "")
    for href in re.findall(r'href="\./([^"]+)"', body.decode()):
        name = urllib.parse.unquote(href)
        child = f"{key}/{name}" if key else name
        if name.endswith("/"):
            # Not into arrays (".../file.tif/S/L/"): their chunk folders add nothing here.
            if not re.search(r"\.(tif|tiff|svs)/\d+/\d+/$", child):
                yield from listing_walk(server, child.rstrip("/"))
        else:
            yield child


def check_ngff_v2(root, shared, failures):
    validators = c.ngff_validators(shared, "0.4")
    kinds = {}

    def visit(group, path):
        bad, picks = c.validate_ngff(dict(group.attrs), validators, path or "/")
        failures.extend(bad)
        for p in picks:
            kinds[p] = kinds.get(p, 0) + 1
        for name, sub in group.groups():
            visit(sub, f"{path}/{name}" if path else name)

    visit(root, "")
    print(f"OME-NGFF 0.4: validated {kinds}")
    expect(failures, kinds.get("image", 0) >= 20, f"too few 0.4 images validated: {kinds}")


def check_v3(server, shared, failures):
    """The v3 view: zarr.json everywhere, OME-NGFF 0.5 attributes valid, no v2 keys."""
    validators = c.ngff_validators(shared, "0.5")
    kinds, keys = {}, list(listing_walk(server))
    for key in keys:
        expect(failures, not key.endswith((".zarray", ".zgroup", ".zattrs")),
               f"v3 server lists v2 key {key}")
        if key.endswith("zarr.json"):
            status, headers, body = server.request("GET", key)
            expect(failures, headers.get("content-type") == "application/json", f"{key} type")
            meta = json.loads(body)
            expect(failures, meta.get("zarr_format") == 3, f"{key} is not zarr v3")
            bad, picks = c.validate_ngff(meta.get("attributes", {}), validators, key)
            failures.extend(bad)
            for p in picks:
                kinds[p] = kinds.get(p, 0) + 1
    print(f"OME-NGFF 0.5: validated {kinds} over {len(keys)} listed keys")
    expect(failures, kinds.get("image", 0) >= 20, f"too few 0.5 images validated: {kinds}")
    status, _, _ = server.request("GET", ".zgroup")
    expect(failures, status == 404, f"v3 server answers .zgroup: {status}")


def check_stale_source(refzarr, work, failures):
    """A source rewritten in place under running servers: every key of its file answers 500
    naming it (.zattrs, .zgroup, .zmetadata, .zarray, zarr.json, chunks, listings), the folder
    above stays readable, each 500 is on the server's stderr, and the access log has every line
    while the server runs. zarr-python reads an array opened before the change as zeros; the
    README's StrictFSStore raises."""
    import fsspec
    import numpy as np
    import zarr
    StrictFSStore, _ = c.strict_stores()
    folder = os.path.join(work, "stale")
    os.makedirs(folder, exist_ok=True)
    tif = os.path.join(folder, "stale.tif")
    pixels = c.write_tiled_tiff(tif)
    index = os.path.join(work, "stale.refs.db")
    subprocess.run([refzarr, "index", "-o", index, folder], check=True, stdout=subprocess.DEVNULL)
    v2_keys = [".zattrs", ".zgroup", ".zmetadata", "0/.zattrs", "0/.zgroup", "0/0/.zarray",
               "0/0/.zattrs", "0/0/0/0/0/0/0", "0/0/0/0/0/1/1"]
    with Server(refzarr, index, 2, work, "-stale") as v2, \
            Server(refzarr, index, 3, work, "-stale") as v3:
        url = v2.url("stale.tif")
        plain = zarr.open(fsspec.get_mapper(url), mode="r")["0/0"]
        strict = zarr.open(StrictFSStore(url, mode="r"), mode="r")["0/0"]
        expect(failures, (plain[0, 0, 0] == pixels).all() and (strict[0, 0, 0] == pixels).all(),
               "stale: the array reads wrong before the change")
        for key in v2_keys:
            status, _, _ = v2.request("GET", "stale.tif/" + key)
            expect(failures, status == 200, f"stale: {key} answers {status} before the change")
        # Line-buffered: the access log has the requests while the server still runs.
        with open(v2.access_path) as f:
            logged = f.read()
        expect(failures, "GET /stale.tif/0/0/0/0/0/1/1 HTTP/1.1\" 200" in logged,
               "stale: the access log lags behind the requests: " + logged[-300:])

        c.rewrite_in_place(tif)
        got = plain[0, 0, 0]
        expect(failures, not got.any(),
               "stale: zarr-python no longer reads failed chunks as zeros (README says it does)")
        try:
            strict[0, 0, 0]
            failures.append("stale: the README's StrictFSStore read a changed source without error")
        except Exception as e:
            print(f"stale: StrictFSStore raised {type(e).__name__}: {str(e)[:120]}")
        for server, keys in ((v2, v2_keys + [""]),
                             (v3, ["zarr.json", "0/zarr.json", "0/0/zarr.json",
                                   "0/0/c/0/0/0/0/0", ""])):
            for key in keys:
                path = "stale.tif/" + key
                status, _, body = server.request("GET", path)
                expect(failures, status == 500 and tif.encode() in body,
                       f"stale: GET {path} (v{3 if server is v3 else 2}) answers {status}: "
                       f"{body[:200]!r}")
        for server in (v2, v3):
            status, _, _ = server.request("GET", "")
            expect(failures, status == 200, f"stale: the root listing answers {status}")

        # Re-indexed while both servers run, with a new file beside it: within the servers'
        # look at the index (at most once a second) they answer from the new state, no restart.
        # tifffile reads the rewritten file independently.
        import tifffile
        import time
        added = os.path.join(folder, "added.tif")
        added_pixels = c.write_tiled_tiff(added)
        subprocess.run([refzarr, "index", "-o", index, folder], check=True,
                       stdout=subprocess.DEVNULL)
        rewritten = tifffile.imread(tif)
        # Each server looks at the index on its own clock: wait for both.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (v2.request("GET", "added.tif/.zattrs")[0] == 200 and
                    v3.request("GET", "added.tif/zarr.json")[0] == 200):
                break
            time.sleep(0.2)
        for name, want in (("stale.tif", rewritten), ("added.tif", added_pixels)):
            arr = zarr.open(fsspec.get_mapper(v2.url(name)), mode="r")["0/0"]
            got = arr[0, 0, 0]
            expect(failures, got.shape == want.shape and (got == want).all(),
                   f"re-index: {name} through the running v2 server differs from tifffile")
            status, _, _ = v3.request("GET", name + "/0/0/zarr.json")
            expect(failures, status == 200,
                   f"re-index: {name}/0/0/zarr.json answers {status} on the running v3 server")
        v2.stop()
        v3.stop()
    log = open(v2.log_path).read()
    expect(failures, f"GET /stale.tif/.zattrs: 500: source {tif} changed" in log,
           "stale: the 500s are not on the server's stderr: " + log[-500:])
    expect(failures, "GET /stale.tif/: 500" in log, "stale: the failed listing is not logged")
    print(f"stale source: checked {len(v2_keys) + 1} v2 and 5 v3 keys")


def check_huge_sparse_listings(refzarr, work, shared, failures):
    """tlayouto.h5 (2^33 x 257 chunk positions, none stored) and tbigdims.h5 (4 194 305
    positions, 2 stored): their listings name the stored chunks only (h5py is the oracle), start
    at once and stay small in the server's memory."""
    for path, dataset in c.huge_sparse_cases(shared):
        name = os.path.basename(path)
        index = os.path.join(work, name + ".refs.db")
        subprocess.run([refzarr, "index", "-o", index, path], check=True,
                       stdout=subprocess.DEVNULL)
        with Server(refzarr, index, 2, work, "-" + name) as server:
            start = time.time()
            status, headers, body = server.request("GET", dataset + "/")
            seconds = time.time() - start
            rss = c.peak_rss_mib(server.proc.pid)
            names = [urllib.parse.unquote(h) for h in
                     re.findall(r'href="\./([^"]+)"', body.decode())]
            want = [".zarray", ".zattrs"] + c.h5_stored_chunk_names(path, dataset)
            expect(failures, status == 200 and names == want,
                   f"{name}: listing {status}, {names[:10]} but h5py says {want}")
            expect(failures, seconds < 5, f"{name}: the listing took {seconds:.1f} s")
            expect(failures, rss < 200, f"{name}: the server peaked at {rss:.0f} MiB")
            print(f"{name}: HTTP listing of {dataset}/ in {seconds * 1000:.0f} ms, "
                  f"server peak {rss:.0f} MiB, {len(names)} entries")


def main():
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    shared = c.env("REFZARR_SHARED_DIR")
    os.makedirs(work, exist_ok=True)
    samples, index = c.make_index(refzarr, c.env("REFZARR_SAMPLES_BIN"), work)
    failures = []

    import fsspec
    import zarr
    with Server(refzarr, index, 2, work) as server:
        root = zarr.open(fsspec.get_mapper(server.url()), mode="r")
        array_keys = [key for key, _ in c.walk_arrays(root)]
        failures += c.check_all_arrays(root, samples, "zarr-python over HTTP (v2)")
        check_plain_http(server, array_keys, failures)
        check_gdal(server, samples, array_keys, failures)
        check_ngff_v2(root, shared, failures)
        status, _, _ = server.request("GET", "zarr.json")
        expect(failures, status == 404, f"v2 server answers zarr.json: {status}")
        code, seconds = server.stop()
        expect(failures, code == 0, f"serve exited with {code} on SIGTERM")
        print(f"SIGTERM: exit code {code} after {seconds:.2f} s")
        with open(server.access_path) as f:
            lines = f.read().count("\n")
        expect(failures, lines > 100, f"access log has {lines} lines")

    with Server(refzarr, index, 3, work) as server:
        check_v3(server, shared, failures)

    check_stale_source(refzarr, work, failures)
    check_huge_sparse_listings(refzarr, work, shared, failures)

    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
