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

    def __init__(self, refzarr, index, zarr_format, work):
        self.log_path = os.path.join(work, f"serve-v{zarr_format}.err")
        self.access_path = os.path.join(work, f"access-v{zarr_format}.log")
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

    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
