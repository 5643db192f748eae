#!/usr/bin/python3
"""Remote indexing and serving benchmark: refzarr against the Python tools kerchunk users run,
side by side in one run, on the same URLs, through the same latency-adding proxy.

  /usr/bin/python3 tests/bench/remote_index_bench.py --bin build/bin [--work /tmp/rbench]
      [--pages 1600] [--latency-ms 20] [--time-limit 600] [--serve-keys 2000]
      [--serve-threads 8] [--rounds 3] [--skip-hdf5-peer] [--keep]
      [--files bench.tif,uniform.tif,pyramid.ome.tif,bench.h5] [--no-serve] [--serve-cache-mb MB]
      [--results results.json]

Files (written under WORK/data unless already there):
  bench-PAGES.tif   refzarr-make-bench-tiff: PAGES pages of 2048x2048 uint16, 256x256 deflate tiles
  uniform-PAGES.tif refzarr-make-bench-tiff --uncompressed --size 1024: PAGES pages of 1024x1024
                    uint16 in 256x256 tiles, uncompressed: every IFD at the same stride
  pyramid.ome.tif   tifffile: 8192x8192 uint16 OME-TIFF, 2 SubIFD levels, 256x256 deflate tiles
  bench-PAGES.h5    PAGESx2048x2048 uint16 in (1,256,256) chunks, shuffle+gzip: refzarr-bench-hdf5
                    --keep for 1600 pages, else h5py write_direct_chunk of 4 precompressed chunks
They are served by nginx (tests/support/remote/remote_servers.py) behind FaultProxy adding
--latency-ms to every request. Each tool runs as a fresh process, one after the other; the proxy's
stats are reset before each: wall time (process start to exit), requests and body bytes the proxy
sent, and nginx's access log lines of the run (ranges asked for), summarised.

  refzarr index -o X.refs.db URL            (scan worker processes, the default)
  refzarr index --in-process -o X.refs.db URL
  tifffile: TiffFile(fsspec.open(URL)) .series[0].aszarr().write_fsspec()  (kerchunk JSON)
  h5py: h5py.File(fsspec.open(URL)) and dataset.id.get_chunk_info(i) for every chunk, as kerchunk's
        SingleHdf5ToZarr does with h5py < 3.8 (Debian 12: h5py 3.7, HDF5 1.10.8)
A Python peer still running after --time-limit seconds is killed and reported as "> N s" with the
requests so far and how far it got.

Metadata bytes: TIFF, every IFD (count, entries, next offset) and its out-of-line values, parsed
here from the local file (the SubIFD tree followed), next to file size - sum(tile byte counts);
HDF5, file size - the dataset's allocated chunk bytes (H5Dget_storage_size).

Serving: the BigTIFF indexed through the proxy at latency 0, `refzarr serve --codecs passthrough
--port 0`, then --serve-keys random chunk keys fetched by a thread pool (--serve-threads threads,
a requests.Session each) from refzarr, and the same byte ranges (from `refzarr refs`) fetched with
Range requests straight from nginx and through the proxy. Passes: refzarr cold (its block cache
empty), then --rounds rounds of [nginx direct, refzarr again on the same keys]; ratios within a
round are the reliable part on a busy machine. Those later passes are warm only if the blocks the
first one brought fit refzarr's block cache (--serve-cache-mb sets REFZARR_REMOTE_CACHE_MB): the
proxy's counters per pass tell. A sample of bodies is compared byte for byte.

Prints a Markdown table and writes WORK/RESULTS (JSON); logs/ holds each run's access-log lines.
"""
import argparse
import collections
import concurrent.futures
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support", "remote"))


# ---------------------------------------------------------------------------------------------
# peers, run as child processes of this script (--peer KIND URL PROGRESS_FILE)

def peer_tifffile(url, progress):
    import fsspec
    import tifffile
    t0 = time.perf_counter()
    out = io.StringIO()
    with fsspec.open(url, "rb") as f:
        with tifffile.TiffFile(f) as tif:
            with open(progress, "w") as p:
                p.write(f"opened {time.perf_counter() - t0:.3f}\n")
            with tif.series[0].aszarr() as store:
                store.write_fsspec(out, url=url.rsplit("/", 1)[0])
    refs = [k for k in json.loads(out.getvalue()) if not k.split("/")[-1].startswith(".z")]
    with open(progress, "a") as p:
        p.write(f"done refs={len(refs)} s={time.perf_counter() - t0:.3f} json_bytes={len(out.getvalue())}\n")


def peer_h5py(url, progress):
    import fsspec
    import h5py
    t0 = time.perf_counter()
    f = fsspec.open(url, "rb").open()
    h = h5py.File(f, "r")
    d = h["data"]
    dsid = d.id
    n = dsid.get_num_chunks()
    refs = {}
    with open(progress, "w", buffering=1) as p:
        p.write(f"opened chunks={n} s={time.perf_counter() - t0:.3f}\n")
        for i in range(n):
            blob = dsid.get_chunk_info(i)
            refs[blob.chunk_offset] = (blob.byte_offset, blob.size)
            if i % 500 == 499:
                p.write(f"progress {i + 1} {time.perf_counter() - t0:.3f}\n")
        p.write(f"done refs={len(refs)} s={time.perf_counter() - t0:.3f}\n")


# ---------------------------------------------------------------------------------------------
# files

def make_pyramid(path):
    import numpy
    import tifffile
    n = 8192
    rng = numpy.random.default_rng(1)
    y, x = numpy.mgrid[0:n, 0:n]
    data = ((x // 3 + y // 5) % 3000 + rng.integers(0, 64, (n, n))).astype(numpy.uint16)
    del x, y
    opts = dict(tile=(256, 256), compression="zlib", photometric="minisblack")
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(data, subifds=2, metadata={"axes": "YX"}, **opts)
        tw.write(data[::2, ::2], subfiletype=1, **opts)
        tw.write(data[::4, ::4], subfiletype=1, **opts)


def make_hdf5_h5py(path, pages):
    import h5py
    import numpy
    import zlib
    templates = []
    for seed in range(4):
        v = (1000 + seed * 37 + (numpy.arange(256 * 256) % 256) + (numpy.arange(256 * 256) // 256) // 4)
        b = v.astype("<u2").tobytes()
        shuffled = b[0::2] + b[1::2]
        templates.append(zlib.compress(shuffled, 6))
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", shape=(pages, 2048, 2048), dtype="<u2", chunks=(1, 256, 256),
                             shuffle=True, compression="gzip")
        k = 0
        for p in range(pages):
            for ty in range(8):
                for tx in range(8):
                    d.id.write_direct_chunk((p, ty * 256, tx * 256), templates[k % 4])
                    k += 1


TIFF_TYPES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
              16: 8, 17: 8, 18: 8}


def tiff_metadata(path):
    """(ifds, bytes of IFDs and their out-of-line values (+ header), sum of tile/strip byte counts,
    tiles) of a classic or Big TIFF, the main chain and SubIFDs followed."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(16)
        e = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(e + "H", head[2:4])[0] == 43
        header = 16 if big else 8
        first = struct.unpack(e + "Q", head[8:16])[0] if big else struct.unpack(e + "I", head[4:8])[0]
        cnt_fmt, cnt_len, ent_len, off_fmt, off_len = (("Q", 8, 20, "Q", 8) if big else ("H", 2, 12, "I", 4))
        meta, data, tiles, ifds = header, 0, 0, 0
        todo, seen = [first], set()
        while todo:
            off = todo.pop()
            while off and off not in seen:
                seen.add(off)
                ifds += 1
                f.seek(off)
                n = struct.unpack(e + cnt_fmt, f.read(cnt_len))[0]
                raw = f.read(n * ent_len + off_len)
                meta += cnt_len + n * ent_len + off_len
                for i in range(n):
                    ent = raw[i * ent_len:(i + 1) * ent_len]
                    if big:
                        tag, typ, count = struct.unpack(e + "HHQ", ent[:12])
                        inline, vfield = 8, ent[12:20]
                    else:
                        tag, typ, count = struct.unpack(e + "HHI", ent[:8])
                        inline, vfield = 4, ent[8:12]
                    isz = TIFF_TYPES.get(typ, 1)
                    nbytes = isz * count
                    if nbytes > inline:
                        meta += nbytes
                        f2 = struct.unpack(e + off_fmt, vfield)[0]
                    if tag in (279, 325, 330):  # StripByteCounts, TileByteCounts, SubIFDs
                        if nbytes > inline:
                            pos = f.tell()
                            f.seek(f2)
                            vals = f.read(nbytes)
                            f.seek(pos)
                        else:
                            vals = vfield[:nbytes]
                        code = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}[typ]
                        nums = struct.unpack(e + code * count, vals)
                        if tag == 330:
                            todo.extend(nums)
                        else:
                            data += sum(nums)
                            tiles += count
                off = struct.unpack(e + off_fmt, raw[n * ent_len:])[0]
    return {"file_bytes": size, "ifds": ifds, "metadata_bytes": meta, "tile_bytes": data,
            "tiles": tiles, "file_minus_tiles": size - data}


def hdf5_metadata(path):
    import h5py
    with h5py.File(path, "r") as f:
        stored = f["data"].id.get_storage_size()
    size = os.path.getsize(path)
    return {"file_bytes": size, "chunk_bytes": stored, "metadata_bytes": size - stored,
            "file_minus_tiles": size - stored}


# ---------------------------------------------------------------------------------------------
# measuring

def read_log_from(path, pos):
    with open(path, "rb") as f:
        f.seek(pos)
        return f.read().decode(errors="replace").splitlines()


LOG_RE = re.compile(r'^(\S+) "(\S+) (\S+) [^"]*" (\d+) (\d+) "([^"]*)" "([^"]*)" (\d+) (\d+)$')


def summarise_log(lines):
    methods = collections.Counter()
    lengths, starts, conns = [], [], set()
    for line in lines:
        m = LOG_RE.match(line)
        if not m:
            continue
        methods[m.group(2)] += 1
        conns.add(m.group(8))
        rng = m.group(6)
        r = re.match(r"bytes=(\d+)-(\d*)", rng)
        if r:
            a = int(r.group(1))
            b = int(r.group(2)) if r.group(2) else None
            starts.append(a)
            lengths.append((b - a + 1) if b is not None else int(m.group(5)))
        elif m.group(2) == "GET":
            lengths.append(int(m.group(5)))
    s = sorted(lengths)
    hist = collections.Counter()
    for n in lengths:
        hist["<=64KiB" if n <= 65536 else "<=320KiB" if n <= 327680 else "<=1MiB" if n <= 1 << 20
             else "<=5MiB+" if n <= 5 * (1 << 20) + 65536 else ">5MiB"] += 1
    return {"methods": dict(methods), "connections": len(conns), "ranged_gets": len(lengths),
            "range_len_median": s[len(s) // 2] if s else 0, "range_len_max": s[-1] if s else 0,
            "range_len_min": s[0] if s else 0, "range_len_hist": dict(hist),
            "first_ranges": [line.split('"')[3] for line in lines[:12] if '"' in line]}


def run_tool(name, argv, proxy, web, time_limit, progress=None, env=None):
    proxy.reset_stats()
    pos = os.path.getsize(web.access_log)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True)
    timed_out = False
    try:
        out, err = p.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    wall = time.perf_counter() - t0
    st = proxy.stats()
    time.sleep(0.3)  # nginx writes its log line after the response
    lines = read_log_from(web.access_log, pos)
    res = {"tool": name, "wall_s": wall, "timed_out": timed_out, "rc": p.returncode,
           "requests": st["requests"], "bytes": st["bytes_sent"], "statuses": st["statuses"],
           "log": summarise_log(lines)}
    if progress and os.path.exists(progress):
        res["progress"] = open(progress).read().splitlines()[-2:]
    if not timed_out and p.returncode != 0:
        res["stderr"] = err.decode(errors="replace")[-2000:]
    res["stdout"] = out.decode(errors="replace")[-4000:]
    print(f"  {name}: wall {wall:.2f} s{' (killed at limit)' if timed_out else ''}, rc {p.returncode}, "
          f"{st['requests']} requests, {st['bytes_sent'] / 1e6:.1f} MB; log {res['log']['methods']} "
          f"over {res['log']['connections']} connections, range median {res['log']['range_len_median']}"
          f"{' ' + str(res.get('progress')) if res.get('progress') else ''}", flush=True)
    if res.get("stderr"):
        print("    stderr:", res["stderr"][-600:], flush=True)
    return res, lines


def refzarr_chunks(res):
    try:
        return json.loads(res["stdout"])["chunks"]
    except (ValueError, KeyError):
        return None


def fetch_all(urls_ranges, threads):
    """GET each (url, range or None); returns (seconds, list of body lengths, statuses)."""
    import requests
    local = threading.local()

    def one(item):
        url, rng = item
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        r = s.get(url, headers={"Range": rng} if rng else None)
        return r.status_code, len(r.content)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        got = list(ex.map(one, urls_ranges))
    return time.perf_counter() - t0, got


def serve_url(proc):
    pat = re.compile(rb"(http://127\.0\.0\.1:\d+/)")
    deadline = time.time() + 20
    buf = b""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        buf += line
        m = pat.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return m.group(1).decode()
    raise RuntimeError(f"refzarr serve printed no URL: {buf[-500:]!r}")


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", nargs=3, metavar=("KIND", "URL", "PROGRESS"), help=argparse.SUPPRESS)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--work", default="/tmp/rbench")
    ap.add_argument("--pages", type=int, default=1600)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--time-limit", type=float, default=600)
    ap.add_argument("--serve-keys", type=int, default=2000)
    ap.add_argument("--serve-threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-hdf5-peer", action="store_true")
    ap.add_argument("--files", default="bench.tif,uniform.tif,pyramid.ome.tif,bench.h5",
                    help="which files to index (comma-separated labels; empty: none)")
    ap.add_argument("--no-serve", action="store_true", help="skip the serving part")
    ap.add_argument("--serve-cache-mb", type=int, default=0,
                    help="REFZARR_REMOTE_CACHE_MB for refzarr serve (0: its default, 256)")
    ap.add_argument("--results", default="results.json", help="file name under WORK")
    ap.add_argument("--keep", action="store_true", help="keep WORK (the data files) at the end")
    a = ap.parse_args()
    if a.peer:
        kind, url, progress = a.peer
        {"tifffile": peer_tifffile, "h5py": peer_h5py}[kind](url, progress)
        return 0

    import remote_servers
    import tifffile
    import h5py
    import fsspec
    refzarr = os.path.join(a.bin, "refzarr")
    data = os.path.join(a.work, "data")
    os.makedirs(data, exist_ok=True)
    tif = os.path.join(data, f"bench-{a.pages}.tif")
    uni = os.path.join(data, f"uniform-{a.pages}.tif")
    pyr = os.path.join(data, "pyramid.ome.tif")
    h5 = os.path.join(data, f"bench-{a.pages}.h5")
    wanted = a.files.split(",")
    t = time.perf_counter()
    if ("bench.tif" in wanted or not a.no_serve) and not os.path.exists(tif):
        subprocess.run([os.path.join(a.bin, "refzarr-make-bench-tiff"), tif, "--pages", str(a.pages)],
                       check=True, stdout=subprocess.DEVNULL)
    if "uniform.tif" in wanted and not os.path.exists(uni):
        subprocess.run([os.path.join(a.bin, "refzarr-make-bench-tiff"), uni, "--pages", str(a.pages),
                        "--size", "1024", "--uncompressed"], check=True, stdout=subprocess.DEVNULL)
    if "pyramid.ome.tif" in wanted and not os.path.exists(pyr):
        make_pyramid(pyr)
    if "bench.h5" in wanted and not os.path.exists(h5):
        hb = os.path.join(a.bin, "refzarr-bench-hdf5")
        if a.pages == 1600 and os.path.exists(hb):
            subprocess.run([hb, "--file", h5, "--keep", "--info-calls", "0"], check=True,
                           stdout=subprocess.DEVNULL)
        else:
            make_hdf5_h5py(h5, a.pages)
    print(f"files ready in {time.perf_counter() - t:.1f} s", flush=True)
    meta = {label: measure(path) for label, path, measure in
            [("bench.tif", tif, tiff_metadata), ("uniform.tif", uni, tiff_metadata),
             ("pyramid.ome.tif", pyr, tiff_metadata), ("bench.h5", h5, hdf5_metadata)]
            if label in wanted}
    for k, v in meta.items():
        print(f"  {k}: {v}", flush=True)

    versions = {"tifffile": tifffile.__version__, "fsspec": fsspec.__version__,
                "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
                "refzarr": subprocess.run([refzarr, "--version"], capture_output=True,
                                          text=True).stdout.strip()}
    print("versions:", versions, flush=True)
    results = {"args": vars(a), "versions": versions, "metadata": meta, "index": [], "serve": {}}
    me = [sys.executable, os.path.abspath(__file__)]
    dbdir = os.path.join(a.work, "db")
    os.makedirs(dbdir, exist_ok=True)
    logdir = os.path.join(a.work, "logs")
    os.makedirs(logdir, exist_ok=True)

    with remote_servers.Nginx(data) as web, remote_servers.FaultProxy(web.url, latency_ms=a.latency_ms) as proxy:
        print(f"nginx {web.url}, proxy {proxy.url} (+{a.latency_ms} ms a request)", flush=True)
        files = [("bench.tif", os.path.basename(tif), "tifffile"),
                 ("uniform.tif", os.path.basename(uni), "tifffile"),
                 ("pyramid.ome.tif", os.path.basename(pyr), "tifffile"),
                 ("bench.h5", os.path.basename(h5), "h5py")]
        for label, name, peer in files:
            if label not in wanted:
                continue
            url = proxy.url + name
            print(f"{label}: {url}", flush=True)
            runs = []
            for mode in ("workers", "in-process"):
                db = os.path.join(dbdir, f"{label}.{mode}.refs.db")
                for p in (db, db + "-wal", db + "-shm"):
                    if os.path.exists(p):
                        os.remove(p)
                argv = [refzarr, "index", "--json", "-o", db] + (["--in-process"] if mode == "in-process" else []) + [url]
                r, lines = run_tool(f"refzarr index ({mode})", argv, proxy, web, a.time_limit)
                r["chunks"] = refzarr_chunks(r)
                with open(os.path.join(logdir, f"{label}.refzarr-{mode}.access.log"), "w") as f:
                    f.write("\n".join(lines) + "\n")
                runs.append(r)
            if peer == "h5py" and a.skip_hdf5_peer:
                pass
            else:
                prog = os.path.join(a.work, f"{label}.{peer}.progress")
                if os.path.exists(prog):
                    os.remove(prog)
                pname = ("tifffile aszarr + write_fsspec over fsspec HTTP" if peer == "tifffile"
                         else "h5py get_chunk_info over fsspec HTTP (kerchunk-style)")
                r, lines = run_tool(pname, me + ["--peer", peer, url, prog], proxy, web, a.time_limit,
                                    progress=prog)
                with open(os.path.join(logdir, f"{label}.{peer}.access.log"), "w") as f:
                    f.write("\n".join(lines) + "\n")
                runs.append(r)
            for r in runs:
                r["file"] = label
                r["bytes_per_metadata_byte"] = r["bytes"] / meta[label]["metadata_bytes"]
            results["index"].extend(runs)

        if not a.no_serve:
            serve(a, results, refzarr, tif, web, proxy, dbdir)

    with open(os.path.join(a.work, a.results), "w") as f:
        json.dump(results, f, indent=1)
    print_table(results)
    if not a.keep:
        shutil.rmtree(data, ignore_errors=True)
    return 0


def serve(a, results, refzarr, tif, web, proxy, dbdir):
    print(f"serving (REFZARR_REMOTE_CACHE_MB={a.serve_cache_mb or 'default'})", flush=True)
    proxy.set_latency(0)
    proxy.reset_stats()
    sdb = os.path.join(dbdir, "serve.refs.db")
    for p in (sdb, sdb + "-wal", sdb + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    t0 = time.perf_counter()
    subprocess.run([refzarr, "index", "-o", sdb, proxy.url + os.path.basename(tif)], check=True,
                   stdout=subprocess.DEVNULL)
    st = proxy.stats()
    results["serve"]["index_latency0"] = {"wall_s": time.perf_counter() - t0,
                                          "requests": st["requests"], "bytes": st["bytes_sent"]}
    print(f"  index at latency 0: {results['serve']['index_latency0']}", flush=True)
    refs = subprocess.run([refzarr, "refs", sdb, "0/0"], check=True, capture_output=True,
                          text=True).stdout.splitlines()
    refs = [line.split("\t") for line in refs if line]
    rnd = random.Random(7)
    pick = rnd.sample(refs, min(a.serve_keys, len(refs)))
    env = dict(os.environ)
    if a.serve_cache_mb:
        env["REFZARR_REMOTE_CACHE_MB"] = str(a.serve_cache_mb)
    results["serve"]["cache_mb"] = a.serve_cache_mb or 256
    srv = subprocess.Popen([refzarr, "serve", sdb, "--codecs", "passthrough", "--port", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                           env=env)
    try:
        base = serve_url(srv)
        rz = [(base + k, None) for k, _src, _off, _n in pick]
        ng = [(web.url + os.path.basename(tif), f"bytes={o}-{int(o) + int(n) - 1}") for k, _s, o, n in pick]
        px = [(proxy.url + os.path.basename(tif), r) for _u, r in ng]
        want = [int(n) for *_x, n in pick]
        # a sample compared byte for byte
        import requests
        bad = 0
        for (u, _), (nu, nr) in list(zip(rz, ng))[:50]:
            if requests.get(u).content != requests.get(nu, headers={"Range": nr}).content:
                bad += 1
        results["serve"]["compared"] = 50
        results["serve"]["mismatches"] = bad
        # the 50 compared are now cached in refzarr: the cold pass uses the other keys first
        passes = []

        def measure(label, items, count_proxy=False):
            proxy.reset_stats()
            s, got = fetch_all(items, a.serve_threads)
            okn = sum(1 for (code, ln), w in zip(got, want) if code in (200, 206) and ln == w)
            st = proxy.stats()
            d = {"pass": label, "seconds": s, "rps": len(items) / s, "ok": okn, "n": len(items),
                 "proxy_requests": st["requests"], "proxy_bytes": st["bytes_sent"]}
            passes.append(d)
            print(f"  {label}: {d['rps']:.0f} req/s ({okn}/{len(items)} ok), via proxy "
                  f"{st['requests']} requests {st['bytes_sent'] / 1e6:.1f} MB", flush=True)
            return d

        order = list(range(50, len(rz))) + list(range(50))
        rz_o = [rz[i] for i in order]
        ng_o = [ng[i] for i in order]
        px_o = [px[i] for i in order]
        want[:] = [want[i] for i in order]
        measure("refzarr cold (sources through the proxy)", rz_o)
        measure("proxy direct (Range)", px_o)
        for r in range(a.rounds):
            measure(f"round {r + 1}: nginx direct (Range)", ng_o)
            measure(f"round {r + 1}: refzarr again, same keys", rz_o)
        results["serve"]["passes"] = passes
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()


def print_table(results):
    print("\n| file | tool | wall | requests | bytes read | bytes / metadata bytes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results["index"]:
        wall = f"> {r['wall_s']:.0f} s" if r["timed_out"] else f"{r['wall_s']:.2f} s"
        print(f"| {r['file']} | {r['tool']} | {wall} | {r['requests']:,} | {r['bytes'] / 1e6:,.1f} MB | "
              f"{r['bytes_per_metadata_byte']:,.1f} |")
    print()
    for k, v in results["metadata"].items():
        print(f"{k}: metadata {v['metadata_bytes']:,} bytes, file {v['file_bytes']:,}, "
              f"file - data {v['file_minus_tiles']:,}")
    for d in results["serve"].get("passes", []):
        print(f"{d['pass']}: {d['rps']:.0f} req/s")


if __name__ == "__main__":
    sys.exit(main())
