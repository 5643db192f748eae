#!/usr/bin/python3
"""Slow clients against `refzarr serve` (docs/performance.md, "Serving beyond loopback").

Slowloris connections send a request line and then one header byte every few seconds, never
finishing. They come from 127.0.0.2, 127.0.0.3, ... (all of 127.0.0.0/8 is loopback), so
per-address limits apply to them and not to the normal client on 127.0.0.1, which meanwhile asks
for one chunk over and over on a keep-alive connection (requests/s) and opens fresh connections
(answers in tries). Side by side, in one run: one server under today's defaults, three rounds
each measuring without and then with SLOW (10,000) slow connections, 100 per address (medians);
then the limits before this work (--max-connections 1024 --max-connections-per-client 0) with
1,100 slow connections, as measured when the issue was filed.

Usage: slowloris_bench.py BUILD_DIR WORK [SLOW] [SECONDS]. Needs a descriptor limit (ulimit -Hn)
above SLOW + 1,000 for this process and for the server. Exits 1 when, under today's defaults,
the normal client saw an error or an unanswered connection, or not every slow connection was
held open."""
import http.client
import os
import resource
import selectors
import signal
import statistics
import socket
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402

CHUNK = "tiled/u8_lzw_pred2.tif/0/0/0/0/0/0/0"
PER_ADDRESS = 100
TRICKLE_SECONDS = 3


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class SlowClients:
    """A child process holding `count` slowloris connections; .open() asks how many are open."""

    def __init__(self, port, count):
        self.port, self.count = port, count

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--slow", str(self.port),
                                      str(self.count)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "connected N" once all connects were tried
        self.connected = int(line.split()[1]) if line.startswith("connected") else 0
        return self

    def open(self):
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def slow_main(port, count):
    raise_nofile()
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(count):
        source = f"127.0.{2 + (i // PER_ADDRESS) // 250}.{2 + (i // PER_ADDRESS) % 250}"
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((source, 0))
            s.connect_ex(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    time.sleep(1)
    alive = set()
    for s in socks:
        try:
            s.send(b"GET /" + CHUNK.encode() + b" HTTP/1.1\r\nHost: x\r\nX-a: ")
            alive.add(s)
            sel.register(s, selectors.EVENT_READ)
        except OSError:
            s.close()
    print(f"connected {len(alive)}", flush=True)
    sel.register(sys.stdin, selectors.EVENT_READ)
    next_trickle = time.time() + TRICKLE_SECONDS
    while True:
        for key, _ in sel.select(timeout=max(0, next_trickle - time.time())):
            if key.fileobj is sys.stdin:
                if not sys.stdin.readline():
                    return
                print(f"open {len(alive)}", flush=True)
                continue
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # closed by the server
                sel.unregister(s)
                alive.discard(s)
                s.close()
        if time.time() >= next_trickle:
            for s in list(alive):
                try:
                    s.send(b"a")
                except OSError:
                    sel.unregister(s)
                    alive.discard(s)
                    s.close()
            next_trickle = time.time() + TRICKLE_SECONDS


def normal_client(port, seconds, want):
    """(requests/s on one keep-alive connection, errors, answers of 10 fresh connections)."""
    done = errors = 0
    end = time.time() + seconds
    conn = None
    while time.time() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            conn.request("GET", "/" + CHUNK)
            r = conn.getresponse()
            body = r.read()
            if r.status == 200 and body == want:
                done += 1
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn = None
    answered = 0
    for _ in range(10):
        try:
            fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            fresh.request("GET", "/" + CHUNK)
            r = fresh.getresponse()
            answered += r.status == 200 and r.read() == want
            fresh.close()
        except (OSError, http.client.HTTPException):
            pass
    return done / seconds, errors, answered


class Server:
    def __init__(self, refzarr, index, work, extra):
        self.err_path = os.path.join(work, "serve.err")
        self.args = [refzarr, "serve", index, "--port", "0", *extra]

    def __enter__(self):
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(300):
            m = __import__("re").search(r":(\d+)/ \(Ctrl-C", open(self.err_path).read())
            if m:
                self.port = int(m.group(1))
                return self
            time.sleep(0.05)
        sys.exit("FAIL: serve did not start: " + open(self.err_path).read())

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        self.err.close()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--slow":
        return slow_main(int(sys.argv[2]), int(sys.argv[3]))
    build, work = sys.argv[1], sys.argv[2]
    slow = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 5
    hard = raise_nofile()
    if hard < slow + 1000:
        sys.exit(f"FAIL: the descriptor limit {hard} is below {slow} slow connections + 1,000")
    refzarr = os.path.join(build, "bin", "refzarr")
    samples_bin = os.path.join(build, "bin", "refzarr-samples")
    samples, index = c.make_index(refzarr, samples_bin, work)
    rounds = 3
    base_rates, slow_rates, held = [], [], []
    base_errors = base_answered = slow_errors = slow_answered = 0
    # One server under today's defaults; rounds alternate without and with the slow connections,
    # so that the drift of a shared machine falls on both alike (medians reported).
    with Server(refzarr, index, work, []) as server:
        want = fetch_once(server.port)
        for r in range(rounds):
            rate, errors, answered = normal_client(server.port, seconds, want)
            base_rates.append(rate)
            base_errors += errors
            base_answered += answered
            with SlowClients(server.port, slow) as clients:
                time.sleep(2)
                before = clients.open()
                rate, errors, answered = normal_client(server.port, seconds, want)
                after = clients.open()
            held.append((before, after))
            slow_rates.append(rate)
            slow_errors += errors
            slow_answered += answered
            print(f"round {r + 1}: {base_rates[-1]:,.0f} requests/s without, {rate:,.0f} with "
                  f"{slow:,} slow connections ({before:,} open at the start, {after:,} at the "
                  f"end), {errors} errors, {answered}/10 fresh connections answered", flush=True)
            time.sleep(2)  # the server closes the killed clients' connections
    # The limits before this work, with the 1,100 slow connections.
    with Server(refzarr, index, work, ["--max-connections", "1024",
                                       "--max-connections-per-client", "0"]) as server:
        want = fetch_once(server.port)
        with SlowClients(server.port, 1100) as clients:
            time.sleep(2)
            old_before = clients.open()
            old_rate, old_errors, old_answered = normal_client(server.port, seconds, want)
    base, with_slow = statistics.median(base_rates), statistics.median(slow_rates)
    print("\n| server | slow connections open | chunk requests/s, keep-alive (median of "
          f"{rounds}) | errors | fresh connections answered |")
    print("| --- | --- | ---: | ---: | ---: |")
    print(f"| defaults | 0 | {base:,.0f} | {base_errors} | {base_answered}/{10 * rounds} |")
    print(f"| defaults | {slow:,} (from {slow // PER_ADDRESS} addresses) | {with_slow:,.0f} "
          f"({with_slow / base:.2f}x) | {slow_errors} | {slow_answered}/{10 * rounds} |")
    print(f"| before: --max-connections 1024, no per-address limit | {old_before:,} | "
          f"{old_rate:,.0f} | {old_errors} | {old_answered}/10 |")
    print(f"rounds (without, with): {[(round(a), round(b)) for a, b in zip(base_rates, slow_rates)]}")
    # The goal: under today's limits, the normal client is served in full while they are open.
    if slow_errors or slow_answered < 10 * rounds or any(b < slow or a < slow for b, a in held):
        sys.exit(f"FAIL: with {slow:,} slow connections: {slow_errors} errors, "
                 f"{slow_answered}/{10 * rounds} fresh connections answered, held {held}")


def fetch_once(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/" + CHUNK)
    return conn.getresponse().read()

if __name__ == "__main__":
    main()
