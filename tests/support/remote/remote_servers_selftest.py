#!/usr/bin/python3
"""Self-test of remote_servers.py (ctest e2e.remote_servers): each server is exercised by clients
that share no code with it: python `requests` / http.client, botocore's own S3 client and signer,
and the `curl` binary (including curl's --aws-sigv4, the way the C++ client signs).

Env: REFZARR_WORK (work folder; default a temporary one), REFZARR_JS_WORK (npm install folder of
s3rver). Fails, never skips, when nginx, openssl, curl, node/npm or botocore are missing.
"""

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import remote_servers  # noqa: E402

import requests  # noqa: E402

FAILURES = []
PASSED = [0]


def check(cond, what, detail=""):
    if cond:
        PASSED[0] += 1
    else:
        detail = str(detail)
        detail = detail if len(detail) <= 400 else detail[:400] + f"... ({len(detail)} chars)"
        FAILURES.append(f"{what}{': ' + detail if detail else ''}")
        print(f"  FAIL {what} {detail}", flush=True)


def section(name):
    print(f"== {name}", flush=True)


def curl(*args, timeout=30):
    done = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return done


def make_root(work):
    root = os.path.join(work, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(os.path.join(root, "dir with space"))
    rnd = random.Random(1234)
    data = bytes(rnd.getrandbits(8) for _ in range(200_000))
    files = {"a.bin": data, "dir with space/x y.txt": b"spaced key\n"}
    for i in range(7):
        files[f"sub/k{i}.txt"] = f"object {i}\n".encode()
    for key, content in files.items():
        with open(os.path.join(root, key), "wb") as f:
            f.write(content)
    return root, files


# ----------------------------------------------------------------------------------------------

def test_nginx(root, files, work):
    data = files["a.bin"]
    section("nginx http")
    with remote_servers.Nginx(root, tmp_root=work) as web:
        check(web.url.startswith("http://127.0.0.1:") and web.url.endswith("/"), "nginx url", web.url)
        check(web.ca_file is None, "no ca_file without https", web.ca_file)
        with requests.Session() as s:
            r = s.get(web.url + "a.bin", headers={"Range": "bytes=100-199"})
            check(r.status_code == 206, "range GET is 206", r.status_code)
            check(r.content == data[100:200], "range GET returns the right bytes")
            check(r.headers.get("Content-Range") == f"bytes 100-199/{len(data)}", "Content-Range",
                  r.headers.get("Content-Range"))
            etag = r.headers.get("ETag", "")
            check(re.fullmatch(r'"[^"]+"', etag) is not None, "strong ETag", etag)
            # nginx closes the connection after a 412 (or 416) although it answers "Connection:
            # keep-alive" (ngx_http_filter_finalize_request), so that request gets its own
            # connection here; clients reusing it race with the close.
            r = requests.get(web.url + "a.bin", headers={"Range": "bytes=0-9", "If-Match": '"nope"'})
            check(r.status_code == 412, "If-Match with a wrong ETag is 412", r.status_code)
            r = s.get(web.url + "a.bin", headers={"Range": "bytes=0-9", "If-Match": etag})
            check(r.status_code == 206 and r.content == data[:10], "If-Match with the ETag is 206",
                  r.status_code)
            r = s.get(web.url + "dir%20with%20space/x%20y.txt")
            check(r.status_code == 200 and r.content == files["dir with space/x y.txt"],
                  "file with spaces", r.status_code)
            r = s.put(web.url + "new.bin", data=b"x")
            check(r.status_code in (403, 405), "PUT is refused (read-only)", r.status_code)
            r = s.get(web.url + "sub/")
            check(r.status_code in (403, 404), "no directory listing", r.status_code)
        # The keep-alive check uses its own session of 2xx answers.
        with requests.Session() as s:
            for rng in ("bytes=0-0", "bytes=1-1", None):
                s.get(web.url + "sub/k0.txt", headers={"Range": rng} if rng else {})
        with open(web.access_log) as f:
            lines = [line.split() for line in f if '"GET /sub/k0.txt' in line]
        conns = {fields[-2] for fields in lines}
        check(len(lines) == 3 and len(conns) == 1, "keep-alive: one session's GETs share a "
              "connection (access log)", (len(lines), conns))
        done = curl("-r", "0-9", "-o", "-", web.url + "a.bin")
        check(done.returncode == 0 and done.stdout == data[:10], "curl range", done.stderr)
    check(not os.path.exists(os.path.dirname(web.access_log)), "nginx temp dir removed")

    section("nginx https + http/2")
    with remote_servers.Nginx(root, https=True, tmp_root=work) as web:
        check(web.url.startswith("https://127.0.0.1:"), "https url", web.url)
        out = os.path.join(work, "h2.out")
        done = curl("--cacert", web.ca_file, "--http2", "-r", "10-19", "-o", out,
                    "-w", "%{http_version} %{http_code}", web.url + "a.bin")
        check(done.returncode == 0 and done.stdout == b"2 206", "curl --http2 with the CA: "
              "HTTP/2 206", (done.returncode, done.stdout, done.stderr))
        check(open(out, "rb").read() == data[10:20], "https range bytes")
        done = curl("-o", "/dev/null", web.url + "a.bin")
        check(done.returncode == 60, "without the CA curl rejects the certificate (exit 60)",
              done.returncode)
        port = urllib.parse.urlsplit(web.url).port
        r = requests.get(f"https://localhost:{port}/sub/k1.txt", verify=web.ca_file)
        check(r.status_code == 200 and r.content == files["sub/k1.txt"],
              "requests verifies DNS:localhost with the CA", r.status_code)
        done = curl("--cacert", web.ca_file, "--http1.1", "-o", "/dev/null", "-w",
                    "%{http_version}", web.url + "a.bin")
        check(done.stdout == b"1.1", "HTTP/1.1 over TLS still offered", done.stdout)


# ----------------------------------------------------------------------------------------------

def s3_client(s3, secret=None, key=None):
    import botocore.session
    from botocore.config import Config
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=s3.endpoint, region_name=s3.region,
        aws_access_key_id=key or s3.access_key, aws_secret_access_key=secret or s3.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def client_error(fn):
    from botocore.exceptions import ClientError
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, None


def sigv4(s3, *args):
    return curl("--aws-sigv4", f"aws:amz:{s3.region}:s3", "--user",
                f"{s3.access_key}:{s3.secret_key}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                *args)


def test_s3(root, files, work):
    data = files["a.bin"]
    section("s3 (s3rver behind the SigV4 front)")
    with remote_servers.S3Server(root, tmp_root=work) as s3:
        check(re.fullmatch(r"http://127\.0\.0\.1:\d+", s3.endpoint) is not None, "endpoint",
              s3.endpoint)
        c = s3_client(s3)
        keys, pages = [], 0
        for page in c.get_paginator("list_objects_v2").paginate(
                Bucket=s3.bucket, PaginationConfig={"PageSize": 2}):
            pages += 1
            keys += [o["Key"] for o in page.get("Contents", [])]
            check(page.get("KeyCount", 0) <= 2, "max-keys=2 honoured", page.get("KeyCount"))
        check(sorted(keys) == sorted(files), "paginated ListObjectsV2 lists every key once",
              keys)
        check(pages >= (len(files) + 1) // 2, "listing took several pages", pages)
        page = c.list_objects_v2(Bucket=s3.bucket, Prefix="sub/", MaxKeys=100)
        check(sorted(o["Key"] for o in page["Contents"]) ==
              sorted(k for k in files if k.startswith("sub/")), "prefix listing")
        r = c.get_object(Bucket=s3.bucket, Key="a.bin", Range="bytes=1000-1999")
        body = r["Body"].read()
        check(r["ResponseMetadata"]["HTTPStatusCode"] == 206 and body == data[1000:2000],
              "botocore ranged GET", r["ResponseMetadata"]["HTTPStatusCode"])
        etag = r["ETag"]
        check(etag == '"' + hashlib.md5(data).hexdigest() + '"', "ETag is the object's MD5", etag)
        r = c.get_object(Bucket=s3.bucket, Key="dir with space/x y.txt")
        check(r["Body"].read() == files["dir with space/x y.txt"], "key with spaces (botocore)")
        code = client_error(lambda: s3_client(s3, secret="wrong-secret").get_object(
            Bucket=s3.bucket, Key="a.bin"))
        check(code == ("SignatureDoesNotMatch", 403), "wrong secret: 403 SignatureDoesNotMatch",
              code)
        code = client_error(lambda: s3_client(s3, key="AKIAUNKNOWN").list_objects_v2(
            Bucket=s3.bucket))
        check(code == ("InvalidAccessKeyId", 403), "unknown key: 403 InvalidAccessKeyId", code)
        r = requests.get(f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content,
              "unsigned GET is 403 without anonymous_read", r.status_code)
        url = c.generate_presigned_url("get_object", Params={"Bucket": s3.bucket, "Key": "a.bin"},
                                       ExpiresIn=300)
        r = requests.get(url, headers={"Range": "bytes=0-4"})
        check(r.status_code == 206 and r.content == data[:5], "presigned URL", r.status_code)
        r = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
        check(r.status_code == 403, "tampered presigned URL is 403", r.status_code)

        # A request signed by botocore's signer, sent with requests (body hash signed).
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        req = AWSRequest("GET", f"{s3.endpoint}/{s3.bucket}?list-type=2&prefix=sub%2F&max-keys=3")
        S3SigV4Auth(Credentials(s3.access_key, s3.secret_key), "s3", s3.region).add_auth(req)
        r = requests.get(req.url, headers=dict(req.headers.items()))
        check(r.status_code == 200 and r.text.count("<Key>") == 3 and
              "<NextContinuationToken>" in r.text, "botocore-signed request sent by requests",
              r.status_code)

        section("s3 with curl --aws-sigv4")
        out = os.path.join(work, "s3.out")
        done = sigv4(s3, "-o", out, "-w", "%{http_code}", f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"200" and open(out, "rb").read() == data, "curl sigv4 GET 200",
              (done.stdout, done.stderr))
        done = sigv4(s3, "-r", "5-14", "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"206" and open(out, "rb").read() == data[5:15],
              "curl sigv4 range 206", done.stdout)
        done = sigv4(s3, "-I", "-o", out, "-w", "%{http_code}", f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"200" and f"content-length: {len(data)}" in
              open(out).read().lower(), "curl sigv4 HEAD", done.stdout)
        done = sigv4(s3, "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/dir%20with%20space/x%20y.txt")
        check(done.stdout == b"200" and open(out, "rb").read() == files["dir with space/x y.txt"],
              "curl sigv4 key with spaces", done.stdout)
        u = f"{s3.endpoint}/{s3.bucket}/sub/k0.txt"
        done = sigv4(s3, "-v", "-o", "/dev/null", u, "-o", "/dev/null", u)
        check(done.stderr.count(b"Re-using existing connection") == 1, "S3 front keeps the "
              "connection alive (HTTP/1.1)", done.stderr[-300:])
        # curl 7.88 signs the query string as written: sorted and URI-encoded, as S3 wants.
        done = sigv4(s3, "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}?list-type=2&max-keys=2&prefix=sub%2F")
        text = open(out).read()
        check(done.stdout == b"200" and text.count("<Key>") == 2, "curl sigv4 ListObjectsV2",
              (done.stdout, text[:300]))
        done = curl("--aws-sigv4", f"aws:amz:{s3.region}:s3", "--user",
                    f"{s3.access_key}:not-the-secret", "-H",
                    "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o", out, "-w", "%{http_code}",
                    f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"403" and "<Code>SignatureDoesNotMatch</Code>" in open(out).read(),
              "curl sigv4 with a wrong secret: 403 SignatureDoesNotMatch", done.stdout)
        done = sigv4(s3, "-H", 'If-Match: "0123"', "-r", "0-3", "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"412" and "<Code>PreconditionFailed</Code>" in open(out).read(),
              "If-Match mismatch: 412 PreconditionFailed", done.stdout)
        done = sigv4(s3, "-H", f"If-Match: {etag}", "-r", "0-3", "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"206" and open(out, "rb").read() == data[:4], "If-Match match: 206",
              done.stdout)
        done = sigv4(s3, "-H", f"If-None-Match: {etag}", "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"304", "If-None-Match match: 304", done.stdout)
        done = sigv4(s3, "-r", "-10", "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"206" and open(out, "rb").read() == data[-10:],
              "suffix range bytes=-10 is the last 10 bytes", done.stdout)

        section("s3 put() replaces an object")
        s3.put("a.bin", b"replaced")
        r = c.head_object(Bucket=s3.bucket, Key="a.bin")
        check(r["ETag"] != etag and r["ContentLength"] == 8, "new ETag and size after put()",
              r["ETag"])
        done = sigv4(s3, "-H", f"If-Match: {etag}", "-r", "0-3", "-o", out, "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/a.bin")
        check(done.stdout == b"412", "old ETag after put(): 412", done.stdout)
        n = s3.requests
        check(n >= 20 and n == len(s3.log), "request counter", n)
        check(("GET", f"/{s3.bucket}/a.bin", 412) in s3.log, "log holds (method, path, status)",
              s3.log[-3:])

        section("fault proxy in front of the S3 front (Host kept: signatures still verify)")
        with remote_servers.FaultProxy(s3.endpoint + "/") as proxy:
            done = sigv4(s3, "-o", out, "-w", "%{http_code}",
                         f"{proxy.url}{s3.bucket}/sub/k2.txt")
            check(done.stdout == b"200" and open(out, "rb").read() == files["sub/k2.txt"],
                  "signed GET through the proxy", done.stdout)

    section("s3 anonymous_read, with a session token")
    with remote_servers.S3Server(root, tmp_root=work, anonymous_read=True,
                                 session_token="refzarr-session-token") as s3:
        r = requests.get(f"{s3.endpoint}/{s3.bucket}/sub/k3.txt")
        check(r.status_code == 200 and r.content == files["sub/k3.txt"], "unsigned GET is 200",
              r.status_code)
        r = requests.get(f"{s3.endpoint}/{s3.bucket}?list-type=2")
        check(r.status_code == 200 and r.text.count("<Key>") == len(files), "unsigned list",
              r.status_code)
        r = requests.put(f"{s3.endpoint}/{s3.bucket}/new.txt", data=b"x")
        check(r.status_code == 403, "unsigned PUT still 403", r.status_code)
        done = sigv4(s3, "-o", "/dev/null", "-w", "%{http_code}",
                     f"{s3.endpoint}/{s3.bucket}/sub/k3.txt")
        check(done.stdout == b"403", "signed GET without the session token: 403", done.stdout)
        done = sigv4(s3, "-H", f"x-amz-security-token: {s3.session_token}", "-o", "/dev/null",
                     "-w", "%{http_code}", f"{s3.endpoint}/{s3.bucket}/sub/k3.txt")
        check(done.stdout == b"200", "curl sigv4 with x-amz-security-token: 200", done.stdout)
        import botocore.session
        from botocore.config import Config
        c = botocore.session.get_session().create_client(
            "s3", endpoint_url=s3.endpoint, region_name=s3.region,
            aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
            aws_session_token=s3.session_token, config=Config(s3={"addressing_style": "path"}))
        r = c.get_object(Bucket=s3.bucket, Key="sub/k6.txt")
        check(r["Body"].read() == files["sub/k6.txt"], "botocore with a session token")
        code = client_error(lambda: s3_client(s3).get_object(Bucket=s3.bucket, Key="sub/k6.txt"))
        check(code == ("InvalidToken", 403), "botocore without the token: 403 InvalidToken", code)


# ----------------------------------------------------------------------------------------------

def raw_get(url, headers=None):
    """(status, headers, body or the exception the read raised) with http.client."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request("GET", u.path, headers=headers or {})
        r = c.getresponse()
        try:
            return r.status, r, r.read()
        except Exception as e:  # noqa: BLE001 - the point is which one
            return r.status, r, e
    finally:
        c.close()


def test_proxy(root, files, work):
    data = files["a.bin"]
    section("fault proxy in front of nginx")
    with remote_servers.Nginx(root, tmp_root=work) as web, \
            remote_servers.FaultProxy(web.url) as proxy:
        ctl = proxy.url + "__proxy__/"
        with requests.Session() as s:
            t0 = time.monotonic()
            r = s.get(proxy.url + "a.bin", headers={"Range": "bytes=0-99"})
            base = time.monotonic() - t0
            check(r.status_code == 206 and r.content == data[:100], "Range passes through: 206",
                  r.status_code)
            etag = r.headers.get("ETag")
            r = s.get(proxy.url + "a.bin", headers={"Range": "bytes=0-9", "If-Match": '"x"'})
            check(r.status_code == 412, "If-Match passes through: 412", r.status_code)
            r = s.post(ctl + "faults", json={"latency_ms": 300})
            check(r.status_code == 200 and r.json()["latency_ms"] == 300, "set latency over HTTP",
                  r.status_code)
            t0 = time.monotonic()
            r = s.get(proxy.url + "sub/k0.txt")
            slow = time.monotonic() - t0
            check(r.status_code == 200 and slow >= 0.3 and slow - base >= 0.25,
                  "latency_ms adds the time", (slow, base))
            s.post(ctl + "faults", json={"clear": True, "reset_stats": True,
                                         "fail_next": [{"kind": "503", "count": 2}]})
            got = []
            for _ in range(3):
                r = s.get(proxy.url + "sub/k1.txt")
                got.append((r.status_code, r.headers.get("Retry-After")))
            check(got == [(503, "0"), (503, "0"), (200, None)], "two 503 faults, then success",
                  got)
            check(r.content == files["sub/k1.txt"], "body after the faults")
            proxy.fail_next(1, "429")
            r1, r2 = s.get(proxy.url + "sub/k1.txt"), s.get(proxy.url + "sub/k1.txt")
            check((r1.status_code, r2.status_code) == (429, 200), "429 fault (Python API)",
                  (r1.status_code, r2.status_code))
            st = s.get(ctl + "stats").json()
            check(st["requests"] == 5 and st["statuses"] == {"503": 2, "200": 2, "429": 1},
                  "stats count requests and statuses (control requests excluded)", st)
            check(st["bytes_sent"] > 0, "bytes_sent counted", st["bytes_sent"])

        s_ = requests.post(ctl + "faults", json={"fail_next": {"kind": "truncate"}})
        check(s_.status_code == 200 and s_.json()["faults_pending"] == ["truncate"],
              "truncate queued", s_.text)
        status, resp, body = raw_get(proxy.url + "a.bin")
        check(status == 200 and isinstance(body, http.client.IncompleteRead) and
              len(body.partial) < int(resp.getheader("Content-Length")) == len(data),
              "truncated body: fewer bytes than Content-Length (http.client)",
              (status, type(body).__name__, len(getattr(body, "partial", body))))
        proxy.fail_next(1, "truncate")
        done = curl("-o", "/dev/null", proxy.url + "a.bin")
        check(done.returncode == 18, "truncated body: curl reports a partial transfer (18)",
              done.returncode)
        proxy.fail_next(1, "reset")
        status, resp, body = raw_get(proxy.url + "a.bin")
        check(isinstance(body, (ConnectionResetError, http.client.IncompleteRead)),
              "reset mid-body is an error for the client", body)
        proxy.fail_next(1, "reset")
        done = curl("-o", "/dev/null", proxy.url + "a.bin")
        check(done.returncode in (18, 56), "reset mid-body: curl fails (18/56)", done.returncode)
        st = proxy.stats()
        check(st["faults_applied"].get("reset") == 2 and st["faults_applied"].get("truncate") == 2,
              "faults_applied counts", st["faults_applied"])
        r = requests.get(proxy.url + "a.bin", headers={"If-Match": etag})
        check(r.status_code == 200 and r.content == data, "healthy again after the faults",
              r.status_code)
        requests.post(ctl + "reset")
        check(proxy.stats()["requests"] == 0, "stats reset", proxy.stats())
        r = requests.post(ctl + "faults", json={"fail_next": [{"kind": "teapot"}]})
        check(r.status_code == 400, "unknown fault kind rejected", r.status_code)


# ----------------------------------------------------------------------------------------------

def test_cli(root, files, work):
    section("command line")
    env = dict(os.environ, TMPDIR=work)
    script = os.path.join(HERE, "remote_servers.py")
    web = subprocess.Popen([sys.executable, script, "nginx", "--root", root, "--https"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        line = web.stdout.readline()
        info = json.loads(line)
        check(sorted(info) == ["ca_file", "url"], "nginx JSON keys", info)
        done = curl("--cacert", info["ca_file"], "-o", "-", info["url"] + "sub/k4.txt")
        check(done.stdout == files["sub/k4.txt"], "CLI nginx serves", done.stderr)
        proxy = subprocess.Popen([sys.executable, script, "proxy", "--upstream",
                                  "http://127.0.0.1:9/"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env=env)
        pinfo = json.loads(proxy.stdout.readline())
        check(sorted(pinfo) == ["url"], "proxy JSON keys", pinfo)
        r = requests.get(pinfo["url"] + "x")
        check(r.status_code == 502, "proxy to a dead upstream answers 502", r.status_code)
        proxy.stdin.close()  # EOF on stdin stops it
        check(proxy.wait(10) == 0, "proxy CLI exits 0 on stdin EOF", proxy.returncode)
        check(proxy.stdout.read() == b"", "exactly one JSON line on stdout")
        web.send_signal(signal.SIGTERM)
        check(web.wait(10) == 0, "nginx CLI exits 0 on SIGTERM", web.returncode)
        check(not os.path.exists(os.path.dirname(info["ca_file"])), "CLI temp dir removed")
        port = urllib.parse.urlsplit(info["url"]).port
        done = curl("-k", "-o", "/dev/null", info["url"])
        check(done.returncode == 7, f"nothing listens on {port} any more", done.returncode)
        s3 = subprocess.Popen([sys.executable, script, "s3", "--root", root, "--access-key", "K1",
                               "--secret-key", "S1", "--region", "eu-west-1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        sinfo = json.loads(s3.stdout.readline())
        check(sorted(sinfo) == ["access_key", "bucket", "endpoint", "region", "secret_key"] and
              sinfo["access_key"] == "K1" and sinfo["region"] == "eu-west-1", "s3 JSON", sinfo)
        done = curl("--aws-sigv4", "aws:amz:eu-west-1:s3", "--user", "K1:S1", "-H",
                    "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o", "-",
                    f"{sinfo['endpoint']}/{sinfo['bucket']}/sub/k5.txt")
        check(done.stdout == files["sub/k5.txt"], "CLI s3 serves signed GETs", done.stdout)
        s3.stdin.close()
        check(s3.wait(15) == 0, "s3 CLI exits 0 on stdin EOF", s3.returncode)
        bad = subprocess.run([sys.executable, script, "nginx", "--root", "/nonexistent"],
                             stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=30)
        check(bad.returncode != 0 and bad.stdout == b"" and b"FAIL:" in bad.stderr,
              "a server that cannot start fails loudly", (bad.returncode, bad.stderr))
    finally:
        for p in (web,):
            if p.poll() is None:
                p.kill()


def main():
    for tool, pkg in (("curl", "curl"), ("nginx", "nginx-light"), ("openssl", "openssl"),
                      ("node", "nodejs"), ("npm", "npm")):
        if shutil.which(tool) is None:
            sys.exit(f"FAIL: `{tool}` is not installed (apt-get install {pkg}; see the Makefile)")
    work = os.environ.get("REFZARR_WORK")
    own = work is None
    work = os.path.abspath(work or tempfile.mkdtemp(prefix="refzarr-remote-selftest-"))
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault("REFZARR_JS_WORK", os.path.join(work, "js"))
    start = time.monotonic()
    root, files = make_root(work)
    try:
        remote_servers.install_js()
        for test in (test_nginx, test_s3, test_proxy, test_cli):
            try:
                test(root, files, work)
            except Exception:  # a crash is a failure of that part, the others still run
                FAILURES.append(f"{test.__name__} crashed:\n{traceback.format_exc()}")
                print(FAILURES[-1], flush=True)
    except remote_servers.ServerError as e:
        FAILURES.append(str(e))
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    left = [d for d in os.listdir(work) if d.startswith("refzarr-")] if not own else []
    if left:
        FAILURES.append(f"temporary folders left behind in {work}: {left}")
    print(f"{PASSED[0]} checks passed, {len(FAILURES)} failed, {time.monotonic() - start:.1f} s")
    if FAILURES:
        print("FAIL:\n  " + "\n  ".join(FAILURES))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
