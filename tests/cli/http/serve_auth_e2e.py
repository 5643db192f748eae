#!/usr/bin/python3
"""`refzarr serve` beyond loopback, end to end with real clients, every answer checked against an
independent reader (tifffile for pixels, the sample files' bytes):

- binding to a non-loopback address (0.0.0.0 and this machine's own address) without --tokens,
  --signed-urls or --public refuses to start; --public starts; a tokens file others can read is
  refused;
- bearer tokens: curl without a token or with a wrong one gets 401; zarr-python through fsspec's
  HTTP file system with an Authorization header reads the token's file group equal to tifffile; the
  same token gets 404 for another group (curl and fsspec), as if it did not exist;
- signed URLs from `refzarr sign`: zarr-python reads the signed group from the printed URL alone
  (equal to tifffile); the URL does not open another group; an expired one is refused (403);
- headless Chromium (playwright-core) on a page of another origin fetch()es a signed URL's
  metadata and a ranged chunk, a token-authorised key, and sees the refusals: CORS works with both;
- TLS: a certificate made here by openssl; zarr-python reads over https equal to tifffile, curl
  verifies the certificate, plain http to the TLS port gets no answer;
- the access log has a line per request with client, status, bytes and time, and never a token or
  a signature.

Env: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_WORK, REFZARR_BROWSER_JS (tests/e2e/browser, for
its package-lock.json), REFZARR_JS_WORK. Fails, never skips, without Chromium, node or npm."""
import base64
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as c  # noqa: E402

import fsspec  # noqa: E402
import zarr  # noqa: E402

GROUP_A = "tiled/u8_lzw_pred2.tif"
GROUP_B = "rgb/rgb_u8_chunky_tiled_none.tif"
# Uncompressed, tiled, an order Zarr names: its tiles are served from the file itself.
GROUP_RAW = "bigtiff/i64_tiled_none_be.tif"
TOKEN_A = "tokA-" + base64.b32encode(os.urandom(20)).decode().lower()
TOKEN_ALL = "tokAll-" + base64.b32encode(os.urandom(20)).decode().lower()
CHROMIUM = "/usr/bin/chromium"

failures = []


def expect(ok, message):
    if not ok:
        failures.append(message)
        print("FAIL", message)


class Serve:
    """A `refzarr serve` process; .base is its URL (as printed), once it is up."""

    def __init__(self, refzarr, index, work, tag, extra):
        self.err_path = os.path.join(work, f"serve-{tag}.err")
        self.access_path = os.path.join(work, f"access-{tag}.log")
        self.args = [refzarr, "serve", index, "--port", "0", "--access-log", self.access_path,
                     *extra]

    def __enter__(self):
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        timer = c.Timer(15)
        while not timer.expired():
            text = open(self.err_path).read()
            m = re.search(r"on (https?)://[^:]+:(\d+)/", text)
            if m:
                self.scheme, self.port = m.group(1), int(m.group(2))
                self.base = f"{self.scheme}://127.0.0.1:{self.port}"
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        sys.exit(f"FAIL: refzarr serve {' '.join(self.args[3:])} did not start: " +
                 open(self.err_path).read())

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.err.close()


def refused_to_start(refzarr, index, extra, message, label):
    done = subprocess.run([refzarr, "serve", index, "--port", "0", *extra],
                          capture_output=True, text=True, timeout=20)
    expect(done.returncode == 1 and message in done.stderr,
           f"{label}: exit {done.returncode}, stderr {done.stderr.strip()[:300]!r}")


def curl(url, *args):
    """(status, body bytes) through the curl command-line client."""
    done = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args, url],
                          capture_output=True, timeout=30)
    body, _, status = done.stdout.rpartition(b"\n")
    if done.returncode != 0:
        return None, done.stderr.decode()
    return int(status), body


def compare_group(mapper, samples, group, label, **open_kwargs):
    try:
        root = zarr.open(mapper, mode="r")
        message = c.compare_array(root["0/0"], samples, f"{group}/0/0")
    except Exception as e:
        message = f"{type(e).__name__}: {e}"
    expect(message is None, f"{label}: {message}")
    if message is None:
        print(f"{label}: {group}/0/0 equals tifffile")


def own_address():
    """An address of this machine that is not loopback, or None."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    for a in out:
        if ":" not in a and not a.startswith("127."):
            return a
    return None


def check_refusals(refzarr, index, work):
    for host in ["0.0.0.0", own_address()]:
        if host is None:
            continue
        refused_to_start(refzarr, index, ["--bind", host], "refusing to serve on " + host,
                         f"--bind {host} without a policy")
    with Serve(refzarr, index, work, "public", ["--bind", "0.0.0.0", "--public"]) as s:
        status, body = curl(f"{s.base}/{GROUP_A}/0/0/.zarray")
        expect(status == 200, f"--public: {status}")
    shared = os.path.join(work, "tokens-shared")
    with open(shared, "w") as f:
        f.write(f"{TOKEN_A} /{GROUP_A}\n")
    os.chmod(shared, 0o644)
    refused_to_start(refzarr, index, ["--tokens", shared], "has mode 0644",
                     "a tokens file others can read")
    refused_to_start(refzarr, index, ["--signed-urls"], "no signing key",
                     "--signed-urls before any `refzarr sign`")


def check_tokens(s, samples):
    zarray = f"{s.base}/{GROUP_A}/0/0/.zarray"
    status, _ = curl(zarray)
    expect(status == 401, f"no token: {status}")
    status, _ = curl(zarray, "-H", "Authorization: Bearer wrong-token-0123456789")
    expect(status == 401, f"wrong token: {status}")
    status, body = curl(zarray, "-H", f"Authorization: Bearer {TOKEN_A}")
    expect(status == 200 and json.loads(body)["zarr_format"] == 2, f"token A: {status}")
    for key in (f"{GROUP_B}/0/0/.zarray", f"{GROUP_B}/", "", ".zgroup"):
        status, _ = curl(f"{s.base}/{key}", "-H", f"Authorization: Bearer {TOKEN_A}")
        expect(status == 404, f"token A reads {key!r} outside its prefix: {status}")
    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    compare_group(fsspec.get_mapper(f"{s.base}/{GROUP_A}", client_kwargs={"headers": headers}),
                  samples, GROUP_A, "fsspec + token A")
    try:
        zarr.open(fsspec.get_mapper(f"{s.base}/{GROUP_B}", client_kwargs={"headers": headers}),
                  mode="r")["0/0"][...]
        expect(False, "fsspec with token A opened the other group")
    except Exception as e:
        print(f"fsspec + token A on {GROUP_B}: {type(e).__name__} (refused, as it should be)")
    all_headers = {"Authorization": f"Bearer {TOKEN_ALL}"}
    compare_group(fsspec.get_mapper(f"{s.base}/{GROUP_B}", client_kwargs={"headers": all_headers}),
                  samples, GROUP_B, "fsspec + the token of /")


def sign(refzarr, index, prefix, expires, base):
    done = subprocess.run([refzarr, "sign", index, prefix, "--expires", expires, "--base-url",
                           base], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        sys.exit(f"FAIL: refzarr sign {prefix}: {done.stderr}")
    return done.stdout.strip()


def check_signed(refzarr, index, s, samples):
    url = sign(refzarr, index, GROUP_A, "2h", s.base)
    expect(url.startswith(s.base + "/__signed__/") and url.endswith(f"/{GROUP_A}/"),
           f"signed URL shape: {url}")
    compare_group(fsspec.get_mapper(url.rstrip("/")), samples, GROUP_A, "fsspec + signed URL")
    status, _ = curl(url + "0/0/.zarray")
    expect(status == 200, f"signed .zarray: {status}")
    other = url.replace(GROUP_A, GROUP_B)
    status, _ = curl(other + "0/0/.zarray")
    expect(status == 403, f"a signed URL moved to another group: {status}")
    short = sign(refzarr, index, GROUP_A, "1s", s.base)
    time.sleep(2.1)
    status, body = curl(short + "0/0/.zarray")
    expect(status == 403 and b"expired" in body, f"expired signed URL: {status} {body[:100]}")
    done = subprocess.run([refzarr, "sign", index, "no/such/group", "--expires", "1h"],
                          capture_output=True, text=True)
    expect(done.returncode == 1 and "no group or key 'no/such/group'" in done.stderr,
           f"sign of a missing group: {done.returncode} {done.stderr.strip()}")
    key_file = index + ".serve-key"
    expect(os.stat(key_file).st_mode & 0o777 == 0o600, "signing key mode is not 0600")
    return url, short


class OtherOrigin:
    """A page served from another origin (http.server on its own port), for the browser."""

    def __enter__(self):
        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<!doctype html><title>other origin</title>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


def check_browser(s, signed_url, expired_url, samples):
    if not os.path.exists(CHROMIUM):
        sys.exit(f"FAIL: {CHROMIUM} is missing (Debian: apt-get install chromium)")
    source = c.env("REFZARR_BROWSER_JS")
    js = c.npm_ci(source, c.env("REFZARR_JS_WORK"), "the browser CORS test")
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser_fetch.mjs"), js)
    chunk_key = f"{GROUP_A}/0/0/0/0/0/0/0"
    with OtherOrigin() as page:
        requests = [
            {"url": signed_url + "0/0/.zarray", "headers": {}},
            {"url": signed_url + "0/0/0/0/0/0/0", "headers": {"Range": "bytes=0-99"}},
            {"url": f"{s.base}/{chunk_key}", "headers": {"Authorization": f"Bearer {TOKEN_A}"}},
            {"url": f"{s.base}/{chunk_key}", "headers": {}},
            {"url": expired_url + "0/0/.zarray", "headers": {}},
        ]
        job = os.path.join(js, "fetch-job.json")
        with open(job, "w") as f:
            json.dump({"chromium": CHROMIUM, "page": page.url, "requests": requests}, f)
        done = subprocess.run(["node", os.path.join(js, "browser_fetch.mjs"), job], cwd=js,
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"FAIL: browser_fetch.mjs exited {done.returncode}: {done.stderr[-2000:]}")
    results = json.loads(done.stdout)["results"]
    print("browser:", [(r.get("status"), r.get("length"), r.get("error")) for r in results])
    expect(all(r.get("origin") == page.url.rstrip("/") for r in results),
           f"the page was not on the other origin: {results[0].get('origin')}")
    zarray = results[0]
    expect(zarray.get("status") == 200 and
           json.loads(base64.b64decode(zarray["bytes_b64"]))["zarr_format"] == 2,
           f"browser: signed .zarray: {zarray}")
    ranged = results[1]
    expect(ranged.get("status") == 206 and ranged.get("length") == 100,
           f"browser: signed ranged chunk: {ranged.get('status')} {ranged.get('length')}")
    token = results[2]
    expect(token.get("status") == 200, f"browser: chunk with a token: {token.get('status')}")
    if token.get("status") == 200 and ranged.get("status") == 206:
        whole = base64.b64decode(token["bytes_b64"])
        expect(base64.b64decode(ranged["bytes_b64"]) == whole[:100],
               "browser: the ranged chunk is not the start of the whole one")
        status, by_curl = curl(f"{s.base}/{chunk_key}", "-H", f"Authorization: Bearer {TOKEN_A}")
        expect(status == 200 and whole == by_curl, "browser: the chunk differs from curl's")
    expect(results[3].get("status") == 401, f"browser: no token: {results[3]}")
    expect(results[4].get("status") == 403, f"browser: expired signed URL: {results[4]}")


def check_tls(refzarr, index, work, samples):
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", key, "-out", cert], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("FAIL: openssl req: " + done.stderr)
    tokens = os.path.join(work, "tokens")
    with Serve(refzarr, index, work, "tls", ["--tls-cert", cert, "--tls-key", key,
                                             "--tokens", tokens]) as s:
        expect(s.scheme == "https", f"TLS server says {s.scheme}")
        status, _ = curl(f"{s.base}/{GROUP_A}/0/0/.zarray", "--cacert", cert, "-H",
                         f"Authorization: Bearer {TOKEN_A}")
        expect(status == 200, f"curl over TLS, verifying the certificate: {status}")
        status, _ = curl(f"{s.base}/{GROUP_A}/0/0/.zarray", "-H", f"Authorization: Bearer {TOKEN_A}")
        expect(status is None, "curl accepted the self-signed certificate without --cacert")
        status, _ = curl(f"http://127.0.0.1:{s.port}/{GROUP_A}/0/0/.zarray", "-m", "5")
        expect(status in (None, 0), f"plain HTTP to the TLS port answered {status}")
        context = ssl.create_default_context(cafile=cert)
        compare_group(fsspec.get_mapper(f"{s.base}/{GROUP_A}", ssl=context,
                                        client_kwargs={"headers": {
                                            "Authorization": f"Bearer {TOKEN_A}"}}),
                      samples, GROUP_A, "zarr-python over TLS")
        # An uncompressed TIFF's tiles are served from the file itself (a descriptor response,
        # which libmicrohttpd reads and encrypts instead of sendfile()ing).
        compare_group(fsspec.get_mapper(f"{s.base}/{GROUP_RAW}", ssl=context,
                                        client_kwargs={"headers": {
                                            "Authorization": f"Bearer {TOKEN_ALL}"}}),
                      samples, GROUP_RAW, "zarr-python over TLS, pass-through tiles")


def check_access_log(path, secrets, signed=True):
    text = open(path).read()
    lines = text.splitlines()
    expect(len(lines) > 10, f"access log {path}: {len(lines)} lines")
    for secret in secrets:
        expect(secret not in text, f"access log {path} holds a secret ({secret[:6]}...)")
    pattern = re.compile(r'^127\.0\.0\.1 - (-|token@\d+|signed) \[[^\]]+\] "(GET|HEAD|OPTIONS) '
                         r'\S+ HTTP/1\.1" \d{3} (\d+|-) \d+\.\d{6}$')
    bad = [line for line in lines if not pattern.match(line)]
    expect(not bad, f"access log lines not as documented: {bad[:3]}")
    # Token A is on line 2 of the tokens file (after a comment).
    expect(any(" - token@2 [" in line and '" 200 ' in line for line in lines),
           f"{path}: no token@2 200 line")
    if signed:
        expect(any(" - signed [" in line and "/__signed__/" in line and "/-/" in line
                   for line in lines), f"{path}: no signed line with its signature as '-'")
        expect(any('" 401 ' in line for line in lines), f"{path}: no 401 line")


def main():
    refzarr, samples_bin = c.env("REFZARR_BIN"), c.env("REFZARR_SAMPLES_BIN")
    work = c.env("REFZARR_WORK")
    samples, index = c.make_index(refzarr, samples_bin, work)
    for group in (GROUP_A, GROUP_B, GROUP_RAW):
        if not os.path.exists(os.path.join(samples, group)):
            sys.exit(f"FAIL: the samples have no {group}")
    check_refusals(refzarr, index, work)

    tokens = os.path.join(work, "tokens")
    with open(tokens, "w") as f:
        f.write(f"# one file group\n{TOKEN_A} /{GROUP_A}\n{TOKEN_ALL} /\n")
    os.chmod(tokens, 0o600)
    # The signing key is made by the first `refzarr sign`.
    sign(refzarr, index, GROUP_A, "1h", "http://127.0.0.1:1")
    with Serve(refzarr, index, work, "auth", ["--bind", "0.0.0.0", "--tokens", tokens,
                                              "--signed-urls"]) as s:
        check_tokens(s, samples)
        signed_url, expired_url = check_signed(refzarr, index, s, samples)
        check_browser(s, signed_url, expired_url, samples)
    signature = re.search(r"/__signed__/\d+/([0-9a-f]{64})/", signed_url).group(1)
    check_access_log(os.path.join(work, "access-auth.log"), [TOKEN_A, TOKEN_ALL, signature])
    check_tls(refzarr, index, work, samples)
    check_access_log(os.path.join(work, "access-tls.log"), [TOKEN_A, TOKEN_ALL], signed=False)

    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
