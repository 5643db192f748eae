#!/usr/bin/python3
"""Real HTTP(S) and S3 servers on 127.0.0.1 for refzarr's remote-source tests. No mocks.

  Nginx(root, https=False)   nginx serving the folder `root` read-only: byte ranges, strong ETags,
                             If-Match (412), HTTP/1.1 keep-alive; https=True adds TLS with a
                             self-signed certificate (SAN IP:127.0.0.1, DNS:localhost; `.ca_file`
                             is its PEM for curl's CAINFO) and HTTP/2 (ALPN h2).
                             Attributes: .url ("http://127.0.0.1:PORT/"), .ca_file, .access_log.
  S3Server(root, bucket=..., access_key=..., secret_key=..., region=..., session_token=None,
           anonymous_read=False, js_work=None)
                             s3rver (npm, pinned by package-lock.json beside this file, installed
                             with `npm ci` into js_work, else $REFZARR_JS_WORK, else
                             ~/.cache/refzarr/remote-js; reused while the lockfile is unchanged)
                             holding `bucket` with every file under `root` (key = relative path),
                             behind a Python front that verifies AWS SigV4 with botocore (header
                             or presigned query), answers If-Match / If-None-Match and suffix
                             ranges itself, and forwards the rest. Path-style addressing:
                             .endpoint ("http://127.0.0.1:PORT") + "/bucket/key".
                             .put(key, data) replaces an object; .requests counts the requests
                             the front saw; .log lists (method, path, status).
  FaultProxy(upstream_url, latency_ms=0)
                             reverse proxy to an http upstream that keeps headers (Host too, so
                             SigV4 signed for the proxy's address still verifies behind it) and
                             statuses; faults set from Python (.set_latency, .fail_next,
                             .clear_faults, .stats, .reset_stats) or over HTTP on its own port:
                             POST /__proxy__/faults {"latency_ms": 50, "fail_next":
                             [{"kind": "503"|"429"|"reset"|"truncate", "count": N}],
                             "clear": true, "reset_stats": true}; GET /__proxy__/stats
                             (requests, peak_in_flight, waves: requests that found none in
                             flight, i.e. round trips one after the other, bytes_sent, ...).
                             Attribute: .url ("http://127.0.0.1:PORT/").

Each class is a context manager (`with Nginx(root) as web: ...`); everything it starts lives in
its own temporary folder and is stopped and removed on exit, also on exceptions. A child process
also gets SIGTERM if the thread that started it dies (PR_SET_PDEATHSIG), so start servers from a
thread that outlives them (normally the main thread).

Command line, for C++ (gtest) tests: prints exactly one JSON line on stdout once ready, then runs
until stdin reaches EOF or SIGTERM/SIGINT/SIGHUP arrives, then stops everything it started:
  remote_servers.py nginx --root DIR [--https]            -> {"url", "ca_file"}  (ca_file null
                                                              without --https)
  remote_servers.py s3 --root DIR [--bucket B] [--access-key K --secret-key S] [--region R]
                    [--session-token T] [--anonymous-read] -> {"endpoint", "bucket", "access_key",
                                                              "secret_key", "region"} (+
                                                              "session_token" when given)
  remote_servers.py proxy --upstream URL [--latency-ms N]  -> {"url"}
Startup failures exit non-zero with a "FAIL: ..." line on stderr and nothing on stdout.

Known behaviour and limits:
  - nginx closes the connection after a 412 or 416 although it answered "Connection: keep-alive"
    (responses finished by a filter); a client reusing that connection races with the close.
  - The S3 front verifies SigV4 as S3 does: canonical query = every parameter URI-encoded and
    sorted. curl 7.88 (Debian 12) signs the query as written, so callers must write it sorted and
    encoded (list-type=2&max-keys=2&prefix=sub%2F). A 403 SignatureDoesNotMatch body carries the
    CanonicalRequest and StringToSign the front computed, for debugging a client.
  - Wrong region: 400 AuthorizationHeaderMalformed (as S3). Clock skew > 15 min: 403
    RequestTimeTooSkewed. SigV2 and aws-chunked uploads (STREAMING-*) are not supported (403/501).
  - s3rver 3.7.1 gets ranges bytes=a-b and bytes=a-; the front rewrites suffix ranges bytes=-N
    (s3rver would read them as 0-N). Multi-range requests are not supported by s3rver. s3rver's
    ListObjectsV2 continuation tokens use DES, hence node --openssl-legacy-provider.
  - If-Match / If-None-Match are checked by a HEAD before the GET: an object replaced in between
    is served as the new version (tests replace objects with put(), which returns when done).
  - After SIGKILL of the owning process the children die (PR_SET_PDEATHSIG) but the temporary
    folder stays.
"""

import contextlib
import ctypes
import datetime
import fcntl
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape as xml_escape

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPBACK = "127.0.0.1"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"}


class ServerError(RuntimeError):
    """A server could not be started; the message says what is missing or what failed."""


# ----------------------------------------------------------------------------------------------
# helpers

def free_port():
    """A port that was free a moment ago (bind 0, read, close). Callers retry on conflict."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _require_tool(tool, package):
    path = shutil.which(tool)
    if path is None:
        raise ServerError(f"`{tool}` is not installed (Debian: apt-get install {package}; "
                          f"see APT_PACKAGES in the Makefile)")
    return path


_PR_SET_PDEATHSIG = 1


def _child_setup():
    # New session (so stop() can kill the whole group, e.g. nginx's workers) and SIGTERM when the
    # parent dies, so that a killed test leaves no server behind.
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def _popen(args, **kw):
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=_child_setup, **kw)


def _stop_process(proc, timeout=5.0):
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout)
    # Sweep the process group (the child was its leader): stray workers die too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_port(port, proc, timeout, what, log_file=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((LOOPBACK, port)) == 0:
                return True
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on {LOOPBACK}:{port} within {timeout:.0f} s"
                      + (f"; log:\n{_tail(log_file)}" if log_file else ""))


def _tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"


class _Managed:
    """Context-manager base: start() on enter, stop() on exit; start() cleans up on failure."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _make_tmp(self, prefix, tmp_root):
        if tmp_root:
            os.makedirs(tmp_root, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=prefix, dir=tmp_root)
        return self.tmp

    def _remove_tmp(self):
        tmp, self.tmp = getattr(self, "tmp", None), None
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# threaded HTTP/1.1 server plumbing shared by the S3 front and the fault proxy

class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler, owner):
        self.owner = owner
        self._conns, self._conns_lock = set(), threading.Lock()
        self._reset = set()
        super().__init__((LOOPBACK, 0), handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
            reset = request in self._reset
            self._reset.discard(request)
        if reset:  # close with SO_LINGER 0 and without a FIN first: the peer sees a reset
            with contextlib.suppress(OSError):
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_request(request)
            return
        super().shutdown_request(request)

    def mark_reset(self, request):
        with self._conns_lock:
            self._reset.add(request)

    def close_all(self):
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end after this
    server_version = "refzarr-test"

    def log_message(self, fmt, *args):  # quiet: the owners keep their own logs
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_simple(self, status, body=b"", headers=(), content_type="text/plain"):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        return len(body)

    def do_GET(self):
        self.handle_any()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET


class _Upstream:
    """Keep-alive connections to an http upstream, one per handler thread."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.local = threading.local()

    def _conn(self, fresh=False):
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return c

    def request(self, method, path, headers, body):
        """Returns an http.client.HTTPResponse; retries once on a stale keep-alive connection."""
        for attempt in (0, 1):
            c = self._conn(fresh=attempt == 1)
            try:
                c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    c.putheader(k, v)
                if body or method in ("PUT", "POST", "PATCH"):
                    c.putheader("Content-Length", str(len(body)))
                c.endheaders(body if body else None)
                return c.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                c.close()
                if attempt == 1:
                    raise

    def close(self):
        c = getattr(self.local, "conn", None)
        if c is not None:
            c.close()


def _relay(handler, resp, fault=None):
    """Send upstream's response to the client: same status, reason and (end-to-end) headers.
    fault "reset": send half the body, then reset the connection; "truncate": announce the full
    Content-Length, send half the body, then close. Returns (status, body bytes sent)."""
    status, method = resp.status, handler.command
    headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
    bodiless = method == "HEAD" or status in (204, 304) or 100 <= status < 200
    length = resp.getheader("Content-Length")
    chunked = "chunked" in (resp.getheader("Transfer-Encoding") or "").lower()
    sent = 0
    if fault in ("reset", "truncate"):
        body = b"" if bodiless else resp.read()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        handler.send_response_only(status, resp.reason)
        for k, v in headers:
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)) if not bodiless else (length or "0"))
        handler.end_headers()
        part = body[:len(body) // 2]
        handler.wfile.write(part)
        handler.close_connection = True
        if fault == "reset":
            handler.server.mark_reset(handler.connection)
        return status, len(part)
    handler.send_response_only(status, resp.reason)
    for k, v in headers:
        handler.send_header(k, v)
    if bodiless:
        handler.end_headers()
        resp.read()
        return status, 0
    if length is not None:
        handler.end_headers()
        remaining = int(length)
        while remaining > 0:
            chunk = resp.read(min(65536, remaining))
            if not chunk:
                handler.close_connection = True  # upstream cut short: so do we
                break
            handler.wfile.write(chunk)
            sent += len(chunk)
            remaining -= len(chunk)
        return status, sent
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        while True:
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        handler.wfile.write(b"0\r\n\r\n")
        return status, sent
    # Neither length nor chunked: the body ends when upstream closes; we close too.
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    while True:
        chunk = resp.read(65536)
        if not chunk:
            break
        handler.wfile.write(chunk)
        sent += len(chunk)
    return status, sent


def _serve_in_thread(server, name):
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name=name, daemon=True)
    t.start()
    return t


def _stop_server(server, thread):
    if server is None:
        return
    server.shutdown()
    server.close_all()
    server.server_close()
    if thread is not None:
        thread.join(5)


# ----------------------------------------------------------------------------------------------
# nginx

_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 512; }}
http {{
    types {{ application/json json; text/plain txt; }}
    default_type application/octet-stream;
    log_format refzarr '$remote_addr "$request" $status $body_bytes_sent "$http_range" '
                       '"$http_if_match" $connection $connection_requests';
    access_log {tmp}/access.log refzarr;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    server_tokens off;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    server {{
        listen {host}:{port}{listen_extra};
        server_name localhost 127.0.0.1;
{tls}
        root {root};
        autoindex off;
        etag on;
        location / {{
            limit_except GET {{ deny all; }}
        }}
    }}
}}
"""


class Nginx(_Managed):
    def __init__(self, root, https=False, tmp_root=None, start_timeout=10.0):
        self.root = os.path.abspath(root)
        self.https = https
        self.tmp_root = tmp_root
        self.start_timeout = start_timeout
        self.proc = None
        self.tmp = None
        self.url = self.ca_file = self.access_log = self.error_log = None
        self.port = None

    def start(self):
        nginx = _require_tool("nginx", "nginx-light")
        if not os.path.isdir(self.root):
            raise ServerError(f"nginx root {self.root} is not a folder")
        tmp = self._make_tmp("refzarr-nginx-", self.tmp_root)
        tls = ""
        listen_extra = ""
        if self.https:
            openssl = _require_tool("openssl", "openssl")
            key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
            done = subprocess.run(
                [openssl, "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                 "-addext", "basicConstraints=critical,CA:TRUE"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise ServerError(f"openssl could not make the test certificate:\n{done.stderr}")
            self.ca_file = cert
            listen_extra = " ssl http2"
            tls = (f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
                   f"        ssl_protocols TLSv1.2 TLSv1.3;\n")
        self.access_log = os.path.join(tmp, "access.log")
        self.error_log = os.path.join(tmp, "error.log")
        conf = os.path.join(tmp, "nginx.conf")
        last = ""
        for _attempt in range(10):
            port = free_port()
            with open(conf, "w") as f:
                f.write(_NGINX_CONF.format(tmp=tmp, host=LOOPBACK, port=port, root=self.root,
                                           listen_extra=listen_extra, tls=tls))
            with open(self.error_log, "ab"):
                pass
            self.proc = _popen([nginx, "-p", tmp + "/", "-c", conf, "-e", self.error_log],
                               stdout=subprocess.DEVNULL, stderr=open(self.error_log, "ab"))
            if _wait_port(port, self.proc, self.start_timeout, "nginx", self.error_log):
                self.port = port
                scheme = "https" if self.https else "http"
                self.url = f"{scheme}://{LOOPBACK}:{port}/"
                return
            last = _tail(self.error_log)
            self.proc.wait()
            self.proc = None
            if "Address already in use" not in last:
                break
        raise ServerError(f"nginx did not start (conf {conf}):\n{last}")

    def stop(self):
        _stop_process(self.proc)
        self.proc = None
        self._remove_tmp()


# ----------------------------------------------------------------------------------------------
# npm install of s3rver

def install_js(dest=None, source=HERE):
    """`npm ci` of package.json + package-lock.json (beside this file) into `dest` unless an install
    of the same lockfile is there; serialised with a lock file so parallel tests share it.
    Returns dest."""
    dest = dest or os.environ.get("REFZARR_JS_WORK") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "refzarr", "remote-js")
    dest = os.path.abspath(dest)
    for tool, pkg in (("node", "nodejs"), ("npm", "npm")):
        _require_tool(tool, pkg)
    with open(os.path.join(source, "package-lock.json"), "rb") as f:
        lock = hashlib.sha256(f.read()).hexdigest()
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    with open(dest + ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        stamp = os.path.join(dest, "installed-lock.sha256")
        main = os.path.join(dest, "node_modules", "s3rver", "bin", "s3rver.js")
        if os.path.exists(stamp) and open(stamp).read() == lock and os.path.exists(main):
            return dest
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(source, name), dest)
        done = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                              cwd=dest, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0 or not os.path.exists(main):
            raise ServerError(f"npm ci of s3rver in {dest} failed (exit {done.returncode}):\n"
                              f"{done.stdout[-1500:]}{done.stderr[-3000:]}")
        with open(stamp, "w") as f:
            f.write(lock)
    return dest


# ----------------------------------------------------------------------------------------------
# S3: s3rver behind a SigV4-verifying front

def _s3_error(code, message, **extra):
    fields = "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in extra.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{xml_escape(message)}</Message>{fields}"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>").encode()


class _S3Reject(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _etag_list(value):
    return [t.strip().removeprefix("W/").strip('"') for t in value.split(",") if t.strip()]


def _aws_quote(s):
    return urllib.parse.quote(s, safe="-_.~")


class S3Server(_Managed):
    MAX_SKEW = datetime.timedelta(minutes=15)

    def __init__(self, root, bucket="test-bucket", access_key="AKIAREFZARRTEST00001",
                 secret_key="refzarr-test-secret-key/0123456789abcdefXYZ", region="us-east-1",
                 session_token=None, anonymous_read=False, js_work=None, tmp_root=None,
                 start_timeout=30.0):
        self.root = os.path.abspath(root)
        self.bucket, self.access_key, self.secret_key = bucket, access_key, secret_key
        self.region, self.session_token, self.anonymous_read = region, session_token, anonymous_read
        self.js_work, self.tmp_root, self.start_timeout = js_work, tmp_root, start_timeout
        self.proc = self.server = self.thread = self.tmp = None
        self.endpoint = None
        self.log = []  # (method, path, status) of every request the front answered
        self._lock = threading.Lock()
        self._upstream = None

    @property
    def requests(self):
        with self._lock:
            return len(self.log)

    def clear_log(self):
        with self._lock:
            self.log.clear()

    # -- lifecycle
    def start(self):
        try:
            import botocore.auth  # noqa: F401
            import botocore.awsrequest  # noqa: F401
            import botocore.credentials  # noqa: F401
        except ImportError as e:
            raise ServerError(f"botocore is missing ({e}): apt-get install python3-botocore")
        if not os.path.isdir(self.root):
            raise ServerError(f"S3 root {self.root} is not a folder")
        js = install_js(self.js_work)
        tmp = self._make_tmp("refzarr-s3-", self.tmp_root)
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        self.s3rver_log = os.path.join(tmp, "s3rver.log")
        logf = open(self.s3rver_log, "ab")
        # --openssl-legacy-provider: s3rver makes ListObjectsV2 continuation tokens with DES,
        # which OpenSSL 3 only has in its legacy provider (without it max-keys gives 500).
        s3rver = os.path.join(js, "node_modules", "s3rver", "bin", "s3rver.js")
        self.proc = _popen(["node", "--openssl-legacy-provider", s3rver,
                            "-d", data, "-a", LOOPBACK, "-p", "0", "--silent",
                            "--no-vhost-buckets"],
                           stdout=subprocess.PIPE, stderr=logf, cwd=tmp)
        logf.close()
        port = self._read_s3rver_port()
        self._upstream = _Upstream(LOOPBACK, port)
        self._s3rver_put(f"/{self.bucket}", b"")
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, self.root).replace(os.sep, "/")
                with open(path, "rb") as f:
                    self.put(key, f.read())
        self.server = _HTTPServer(_S3FrontHandler, self)
        self.endpoint = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = _serve_in_thread(self.server, "s3-front")

    def _read_s3rver_port(self):
        result = {}

        def reader():
            for line in self.proc.stdout:
                m = re.search(rb"S3rver listening on [^:]+:(\d+)", line)
                if m:
                    result["port"] = int(m.group(1))
                    break
            # keep draining so s3rver never blocks on a full pipe
            for _ in self.proc.stdout:
                pass

        threading.Thread(target=reader, daemon=True, name="s3rver-stdout").start()
        deadline = time.monotonic() + self.start_timeout
        while "port" not in result:
            if self.proc.poll() is not None:
                raise ServerError(f"s3rver exited with {self.proc.returncode}:\n"
                                  f"{_tail(self.s3rver_log)}")
            if time.monotonic() > deadline:
                raise ServerError(f"s3rver did not report its port within "
                                  f"{self.start_timeout:.0f} s:\n{_tail(self.s3rver_log)}")
            time.sleep(0.05)
        return result["port"]

    def _s3rver_put(self, path, data):
        resp = self._upstream.request("PUT", path, [("Host", f"{LOOPBACK}:{self._upstream.port}")],
                                      data)
        body = resp.read()
        if resp.status != 200:
            raise ServerError(f"s3rver PUT {path}: {resp.status} {body[:500]!r}")

    def put(self, key, data):
        """Create or replace object `key` (new ETag and Last-Modified), bypassing the front."""
        self._s3rver_put(f"/{self.bucket}/" + urllib.parse.quote(key, safe="/-_.~"), bytes(data))

    def delete(self, key):
        """Delete object `key`, bypassing the front (s3rver answers 204)."""
        path = f"/{self.bucket}/" + urllib.parse.quote(key, safe="/-_.~")
        resp = self._upstream.request("DELETE", path, [("Host", f"{LOOPBACK}:{self._upstream.port}")],
                                      b"")
        body = resp.read()
        if resp.status != 204:
            raise ServerError(f"s3rver DELETE {path}: {resp.status} {body[:500]!r}")

    def stop(self):
        _stop_server(self.server, self.thread)
        self.server = self.thread = None
        if self._upstream is not None:
            self._upstream.close()
        _stop_process(self.proc)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        self._remove_tmp()

    # -- SigV4
    def verify(self, method, raw_path, headers, body):
        """Raises _S3Reject unless the request is signed with our key (or anonymous_read allows
        it). `headers` is an email.message.Message (case-insensitive, repeated names kept)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest, HTTPHeaders
        from botocore.credentials import Credentials

        split = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        auth = headers.get("Authorization")
        presigned = "X-Amz-Algorithm" in query
        if auth is None and not presigned:
            if self.anonymous_read and method in ("GET", "HEAD"):
                return
            raise _S3Reject(403, "AccessDenied", "Access Denied (the request is not signed)")
        if auth is not None and presigned:
            raise _S3Reject(400, "InvalidArgument", "Only one auth mechanism allowed")
        if presigned:
            q = {k: v[0] for k, v in query.items()}
            if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
                raise _S3Reject(400, "AuthorizationQueryParametersError",
                                "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
            try:
                credential = q["X-Amz-Credential"]
                signed = q["X-Amz-SignedHeaders"].split(";")
                given = q["X-Amz-Signature"]
                amz_date = q["X-Amz-Date"]
                expires = int(q["X-Amz-Expires"])
            except (KeyError, ValueError) as e:
                raise _S3Reject(400, "AuthorizationQueryParametersError", f"missing/bad {e}")
            token = q.get("X-Amz-Security-Token")
        else:
            m = re.match(r"AWS4-HMAC-SHA256\s+(.*)$", auth.strip())
            if not m:
                raise _S3Reject(400, "InvalidArgument",
                                "Unsupported Authorization Type (only AWS4-HMAC-SHA256)")
            try:
                fields = dict(p.strip().split("=", 1) for p in m.group(1).split(","))
                credential = fields["Credential"]
                signed = fields["SignedHeaders"].split(";")
                given = fields["Signature"]
            except (KeyError, ValueError):
                raise _S3Reject(400, "AuthorizationHeaderMalformed",
                                "The authorization header is malformed")
            amz_date = headers.get("X-Amz-Date")
            if amz_date is None and headers.get("Date"):
                with contextlib.suppress(Exception):
                    from email.utils import parsedate_to_datetime
                    amz_date = parsedate_to_datetime(headers["Date"]).strftime("%Y%m%dT%H%M%SZ")
            if amz_date is None:
                raise _S3Reject(403, "AccessDenied", "AWS authentication requires a valid Date "
                                "or x-amz-date header")
            token = headers.get("X-Amz-Security-Token")
            expires = None
        scope = credential.split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise _S3Reject(400, "AuthorizationHeaderMalformed",
                            f"malformed credential scope {credential!r}")
        key_id, date, region, service = scope[:4]
        if key_id != self.access_key:
            raise _S3Reject(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does "
                            "not exist in our records.", AWSAccessKeyId=key_id)
        if region != self.region:
            raise _S3Reject(400, "AuthorizationHeaderMalformed",
                            f"the region {region!r} is wrong; expecting {self.region!r}",
                            Region=self.region)
        if service != "s3":
            raise _S3Reject(403, "SignatureDoesNotMatch", f"service {service!r} is not s3")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise _S3Reject(403, "AccessDenied", f"bad x-amz-date {amz_date!r}")
        if amz_date[:8] != date:
            raise _S3Reject(403, "SignatureDoesNotMatch",
                            f"credential date {date} is not the day of x-amz-date {amz_date}")
        now = datetime.datetime.now(datetime.timezone.utc)
        if expires is not None:
            if now > when + datetime.timedelta(seconds=expires):
                raise _S3Reject(403, "AccessDenied", "Request has expired")
        elif abs(now - when) > self.MAX_SKEW:
            raise _S3Reject(403, "RequestTimeTooSkewed", "The difference between the request "
                            "time and the current time is too large.")
        if (token or None) != self.session_token:
            raise _S3Reject(403, "InvalidToken", "The provided token is malformed or otherwise "
                            "invalid (x-amz-security-token does not match the configured one)")
        if "host" not in signed:
            raise _S3Reject(403, "SignatureDoesNotMatch", "the host header must be signed")
        sha = "UNSIGNED-PAYLOAD" if presigned else headers.get("X-Amz-Content-SHA256")
        if sha is not None and sha != "UNSIGNED-PAYLOAD":
            if sha.startswith("STREAMING-"):
                raise _S3Reject(501, "NotImplemented", f"x-amz-content-sha256 {sha} (aws-chunked "
                                "uploads) is not supported by this test server")
            if sha != hashlib.sha256(body).hexdigest():
                raise _S3Reject(400, "XAmzContentSHA256Mismatch", "The provided "
                                "'x-amz-content-sha256' header does not match what was computed.")

        signed_map = HTTPHeaders()
        for name in signed:
            values = headers.get_all(name)
            if values is None:
                raise _S3Reject(403, "SignatureDoesNotMatch",
                                f"signed header {name!r} is not in the request")
            for v in values:
                signed_map[name] = v

        class Verifier(S3SigV4Auth):
            def headers_to_sign(self, request):
                return signed_map

            def canonical_query_string(self, request):
                pairs = []
                for pair in urllib.parse.urlsplit(request.url).query.split("&"):
                    if not pair:
                        continue
                    k, _, v = pair.partition("=")
                    k, v = urllib.parse.unquote(k), urllib.parse.unquote(v)
                    if presigned and k == "X-Amz-Signature":
                        continue
                    pairs.append((_aws_quote(k), _aws_quote(v)))
                return "&".join(f"{k}={v}" for k, v in sorted(pairs))

            def _normalize_url_path(self, path):
                return urllib.parse.quote(urllib.parse.unquote(path), safe="/-_.~") or "/"

        req_headers = {"X-Amz-Content-SHA256": sha} if sha is not None else {}
        request = AWSRequest(method=method, url=f"http://{headers.get('Host', '')}{raw_path}",
                             headers=req_headers, data=body)
        request.context["timestamp"] = amz_date
        verifier = Verifier(Credentials(self.access_key, self.secret_key, self.session_token),
                            "s3", self.region)
        canonical = verifier.canonical_request(request)
        string_to_sign = verifier.string_to_sign(request, canonical)
        expected = verifier.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, given.strip()):
            raise _S3Reject(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the signature "
                            "you provided. Check your key and signing method.",
                            AWSAccessKeyId=key_id, StringToSign=string_to_sign,
                            SignatureProvided=given, CanonicalRequest=canonical)


_PRESIGN_PARAMS = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                   "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}


class _S3FrontHandler(_Handler):
    def handle_any(self):
        s3 = self.server.owner
        status = 500
        try:
            body = self.read_body()
            try:
                s3.verify(self.command, self.path, self.headers, body)
                status = self.forward(s3, body)
            except _S3Reject as r:
                status = r.status
                self.send_simple(r.status, _s3_error(r.code, r.message, **r.extra),
                                 content_type="application/xml")
        finally:
            with s3._lock:
                s3.log.append((self.command, self.path, status))

    def forward(self, s3, body):
        up = s3._upstream
        drop = HOP_BY_HOP | {"host", "authorization", "x-amz-security-token", "if-match",
                             "if-none-match", "x-amz-content-sha256", "content-length"}
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in drop]
        headers.append(("Host", f"{LOOPBACK}:{up.port}"))
        split = urllib.parse.urlsplit(self.path)
        parts = split.path.split("/", 2)
        is_object = len(parts) == 3 and parts[2] != ""
        if_match, if_none = self.headers.get("If-Match"), self.headers.get("If-None-Match")
        rng = self.headers.get("Range", "")
        suffix = re.fullmatch(r"\s*bytes\s*=\s*-(\d+)\s*", rng)
        if self.command in ("GET", "HEAD") and is_object and (if_match or if_none or suffix):
            head = up.request("HEAD", split.path, [("Host", f"{LOOPBACK}:{up.port}")], b"")
            head.read()
            if head.status == 200:
                etag = (head.getheader("ETag") or "").strip('"')
                extra = [("ETag", head.getheader("ETag") or "")]
                if if_match and "*" not in _etag_list(if_match) and etag not in _etag_list(if_match):
                    self.send_simple(412, _s3_error("PreconditionFailed", "At least one of the "
                                     "pre-conditions you specified did not hold",
                                     Condition="If-Match"), extra, "application/xml")
                    return 412
                if if_none and ("*" in _etag_list(if_none) or etag in _etag_list(if_none)):
                    self.send_response(304)
                    for k, v in extra:
                        self.send_header(k, v)
                    self.end_headers()
                    return 304
                if suffix:  # s3rver reads bytes=-N as bytes=0-N; S3 means the last N bytes
                    size, n = int(head.getheader("Content-Length")), int(suffix.group(1))
                    if n == 0:
                        self.send_simple(416, _s3_error("InvalidRange", "The requested range is "
                                         "not satisfiable", RangeRequested=rng,
                                         ActualObjectSize=size), (), "application/xml")
                        return 416
                    headers = [(k, v) for k, v in headers if k.lower() != "range"]
                    headers.append(("Range", f"bytes={max(0, size - n)}-{size - 1}"))
        path = self.path
        if split.query and "X-Amz-Algorithm=" in split.query:
            # Presigned: s3rver would check the signature itself (against its own account).
            kept = [p for p in split.query.split("&")
                    if urllib.parse.unquote(p.partition("=")[0]) not in _PRESIGN_PARAMS]
            path = split.path + ("?" + "&".join(kept) if kept else "")
        resp = up.request(self.command, path, headers, body)
        status, _ = _relay(self, resp)
        return status


# ----------------------------------------------------------------------------------------------
# fault-injecting reverse proxy

FAULT_KINDS = ("503", "429", "reset", "truncate")


class FaultProxy(_Managed):
    def __init__(self, upstream_url, latency_ms=0):
        u = urllib.parse.urlsplit(upstream_url)
        if u.scheme != "http" or not u.hostname:
            raise ServerError(f"FaultProxy forwards to http:// upstreams only, not {upstream_url!r}")
        self.upstream_url = upstream_url
        self._up_host, self._up_port = u.hostname, u.port or 80
        self._lock = threading.Lock()
        self.latency_ms = latency_ms
        self._faults = []  # FIFO of kinds, one per coming request
        self._zero()
        self.server = self.thread = None
        self.url = None

    def _zero(self):
        self._requests = 0
        self._in_flight = 0
        self._peak_in_flight = 0  # most requests handled at once: round trips that overlapped
        self._waves = 0  # requests that came while none was in flight: round trips in sequence
        self._bytes_sent = 0
        self._statuses = {}
        self._faults_applied = {}

    # -- control
    def set_latency(self, ms):
        with self._lock:
            self.latency_ms = float(ms)

    def fail_next(self, count, kind):
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {FAULT_KINDS}")
        with self._lock:
            self._faults.extend([kind] * int(count))

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
            self.latency_ms = 0

    def reset_stats(self):
        with self._lock:
            self._zero()

    def stats(self):
        with self._lock:
            return {"requests": self._requests, "peak_in_flight": self._peak_in_flight,
                    "waves": self._waves,
                    "bytes_sent": self._bytes_sent,
                    "statuses": dict(self._statuses), "faults_applied": dict(self._faults_applied),
                    "faults_pending": list(self._faults), "latency_ms": self.latency_ms}

    def configure(self, spec):
        """Apply a control document (the JSON of POST /__proxy__/faults)."""
        if not isinstance(spec, dict):
            raise ValueError("the faults document must be a JSON object")
        unknown = set(spec) - {"clear", "reset_stats", "latency_ms", "fail_next"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        if spec.get("clear"):
            self.clear_faults()
        if spec.get("reset_stats"):
            self.reset_stats()
        if "latency_ms" in spec:
            self.set_latency(spec["latency_ms"])
        items = spec.get("fail_next", [])
        if isinstance(items, dict):
            items = [items]
        for item in items:
            self.fail_next(item.get("count", 1), str(item["kind"]))

    def _take(self):
        with self._lock:
            self._requests += 1
            if self._in_flight == 0:
                self._waves += 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            return (self._faults.pop(0) if self._faults else None), self.latency_ms

    def _count(self, status, sent, fault):
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._bytes_sent += sent
            self._statuses[str(status)] = self._statuses.get(str(status), 0) + 1
            if fault:
                self._faults_applied[fault] = self._faults_applied.get(fault, 0) + 1

    # -- lifecycle
    def start(self):
        self._upstream = _Upstream(self._up_host, self._up_port)
        self.server = _HTTPServer(_ProxyHandler, self)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/"
        self.thread = _serve_in_thread(self.server, "fault-proxy")

    def stop(self):
        _stop_server(self.server, self.thread)
        self.server = self.thread = None


class _ProxyHandler(_Handler):
    def handle_any(self):
        p = self.server.owner
        if self.path.startswith("/__proxy__/"):
            return self.control(p)
        body = self.read_body()
        fault, latency = p._take()
        if latency:
            time.sleep(latency / 1000.0)
        if fault in ("503", "429"):
            status = int(fault)
            msg = f"{status} injected by FaultProxy\n".encode()
            sent = self.send_simple(status, msg, [("Retry-After", "0")])
            p._count(status, sent if self.command != "HEAD" else 0, fault)
            return
        headers = [(k, v) for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP | {"content-length"}]
        try:
            resp = p._upstream.request(self.command, self.path, headers, body)
        except OSError as e:
            sent = self.send_simple(502, f"FaultProxy: upstream failed: {e}\n".encode())
            p._count(502, sent, None)
            return
        status, sent = _relay(self, resp, fault)
        p._count(status, sent, fault)

    def control(self, p):
        path = urllib.parse.urlsplit(self.path).path
        body = self.read_body()
        try:
            if path == "/__proxy__/stats" and self.command == "GET":
                out = p.stats()
            elif path == "/__proxy__/faults" and self.command == "POST":
                p.configure(json.loads(body or b"{}"))
                out = p.stats()
            elif path == "/__proxy__/reset" and self.command == "POST":
                p.reset_stats()
                out = p.stats()
            else:
                self.send_simple(404, b"unknown control path; use GET /__proxy__/stats, "
                                 b"POST /__proxy__/faults, POST /__proxy__/reset\n")
                return
        except (ValueError, KeyError, TypeError) as e:
            self.send_simple(400, f"bad faults document: {e}\n".encode())
            return
        self.send_simple(200, json.dumps(out).encode() + b"\n", content_type="application/json")


# ----------------------------------------------------------------------------------------------
# command line

class _Terminate(BaseException):
    pass


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="kind", required=True)
    a = sub.add_parser("nginx")
    a.add_argument("--root", required=True)
    a.add_argument("--https", action="store_true")
    a = sub.add_parser("s3")
    a.add_argument("--root", required=True)
    a.add_argument("--bucket", default="test-bucket")
    a.add_argument("--access-key")
    a.add_argument("--secret-key")
    a.add_argument("--session-token")
    a.add_argument("--region", default="us-east-1")
    a.add_argument("--anonymous-read", action="store_true")
    a.add_argument("--js-work", help="npm install folder (default $REFZARR_JS_WORK)")
    a = sub.add_parser("proxy")
    a.add_argument("--upstream", required=True)
    a.add_argument("--latency-ms", type=float, default=0)
    args = ap.parse_args(argv)

    def on_signal(signum, frame):
        raise _Terminate()

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        if args.kind == "nginx":
            server = Nginx(args.root, https=args.https)
            info = lambda: {"url": server.url, "ca_file": server.ca_file}  # noqa: E731
        elif args.kind == "s3":
            if (args.access_key is None) != (args.secret_key is None):
                ap.error("--access-key and --secret-key go together")
            kw = {}
            if args.access_key is not None:
                kw = {"access_key": args.access_key, "secret_key": args.secret_key}
            server = S3Server(args.root, bucket=args.bucket, region=args.region,
                              session_token=args.session_token,
                              anonymous_read=args.anonymous_read, js_work=args.js_work, **kw)

            def info():
                d = {"endpoint": server.endpoint, "bucket": server.bucket,
                     "access_key": server.access_key, "secret_key": server.secret_key,
                     "region": server.region}
                if server.session_token:
                    d["session_token"] = server.session_token
                return d
        else:
            server = FaultProxy(args.upstream, latency_ms=args.latency_ms)
            info = lambda: {"url": server.url}  # noqa: E731
        with server:
            sys.stdout.write(json.dumps(info()) + "\n")
            sys.stdout.flush()
            while sys.stdin.buffer.read1(65536):
                pass
    except _Terminate:
        return 0
    except ServerError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
