"""Read throughput through `refzarr mount` against the same chunks as a plain directory.

Usage: mount_bench.py REFZARR_BIN WORK_DIR [ROUNDS]
Needs fuse3 and Debian's python3 with numpy and tifffile.

The source is one TIFF of 2,048 uncompressed 256 x 256 uint16 tiles: 2,048 pass-through chunks of
128 KiB (256 MiB). "plain" is the mounted tree copied out with `cp -r`. Two access patterns:

  seq   every chunk file opened and read whole, in order (what a full-array read or `cp -r` does)
  rand  4 KiB preads at random offsets of random chunk files, all kept open

and three cache states, the first two like for like:

  cold   nothing in the page cache: the plain files, and for the mount the source TIFF, are evicted
         (posix_fadvise DONTNEED) and the mount is fresh
  warm   everything in the page cache: each side read whole once before, then measured for at least
         a second of repeated passes
  first  a fresh mount with its source in the page cache, against the plain directory in the page
         cache: what FUSE itself costs the first time a chunk is read

Each line prints MB/s and operations (files or preads) per second for both sides and their ratio.
"""
import os
import random
import subprocess
import sys
import time

MIN_SECONDS = 1.0
RANDOM_OPS = 50000


def chunk_files(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "0/0"))
                  for f in fs if not f.startswith("."))


def evict(paths):
    os.sync()  # DONTNEED drops clean pages only (the plain copy was just written).
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def read_sequential(files):
    total = 0
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return total, len(files)


def read_random(files, rng):
    fds = [os.open(p, os.O_RDONLY) for p in files]
    size = os.fstat(fds[0]).st_size
    total = 0
    for _ in range(RANDOM_OPS):
        total += len(os.pread(rng.choice(fds), 4096, rng.randrange(0, size - 4096)))
    for fd in fds:
        os.close(fd)
    return total, RANDOM_OPS


def measure(files, mode, repeat):
    """(MB/s, ops/s): one pass, or passes repeated for MIN_SECONDS when `repeat`."""
    rng = random.Random(1)
    total = ops = 0
    start = time.perf_counter()
    while True:
        t, o = read_sequential(files) if mode == "seq" else read_random(files, rng)
        total += t
        ops += o
        elapsed = time.perf_counter() - start
        if not repeat or elapsed >= MIN_SECONDS:
            return total / elapsed / 1e6, ops / elapsed


class Mount:
    def __init__(self, refzarr, index, mountpoint):
        self.mountpoint = mountpoint
        self.proc = subprocess.Popen([refzarr, "mount", index, mountpoint, "-f"],
                                     stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.ismount(mountpoint):
                return
            time.sleep(0.05)
        raise SystemExit("mount failed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["fusermount3", "-u", self.mountpoint], check=True)
        self.proc.wait()


def main():
    refzarr, work = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    subprocess.run(["rm", "-rf", work], check=True)
    src, mnt, plain = (os.path.join(work, d) for d in ("src", "mnt", "plain"))
    os.makedirs(src)
    os.makedirs(mnt)
    tif = os.path.join(src, "bench.tif")
    index = os.path.join(work, "bench.refs.db")

    import numpy as np
    import tifffile
    rng = np.random.default_rng(0)
    tifffile.imwrite(tif, rng.integers(0, 4096, (16384, 8192), dtype=np.uint16), tile=(256, 256))
    subprocess.run([refzarr, "index", "-o", index, tif], check=True, stdout=subprocess.DEVNULL)
    with Mount(refzarr, index, mnt):
        subprocess.run(["cp", "-r", mnt, plain], check=True)

    plain_files = chunk_files(plain)
    print(f"{len(plain_files)} chunk files of {os.path.getsize(plain_files[0]) // 1024} KiB")
    for rnd in range(1, rounds + 1):
        for mode in ("seq", "rand"):
            results = {}
            # cold: nothing cached on either side.
            evict(plain_files)
            results["cold", "plain"] = measure(plain_files, mode, repeat=False)
            evict([tif])
            with Mount(refzarr, index, mnt):
                results["cold", "mount"] = measure(chunk_files(mnt), mode, repeat=False)
            # first: a fresh mount over a cached source, against a cached plain directory.
            read_sequential(plain_files)
            read_sequential([tif])
            results["first", "plain"] = measure(plain_files, mode, repeat=True)
            with Mount(refzarr, index, mnt):
                mount_files = chunk_files(mnt)
                results["first", "mount"] = measure(mount_files, mode, repeat=False)
                # warm: both sides read whole before.
                read_sequential(mount_files)
                results["warm", "mount"] = measure(mount_files, mode, repeat=True)
            results["warm", "plain"] = measure(plain_files, mode, repeat=True)
            for state in ("cold", "warm", "first"):
                (pm, po), (mm, mo) = results[state, "plain"], results[state, "mount"]
                print(f"round {rnd} {mode:4} {state:5} plain {pm:7.0f} MB/s {po:9.0f} op/s | "
                      f"mount {mm:7.0f} MB/s {mo:9.0f} op/s | {mo / po:.2f}x", flush=True)


if __name__ == "__main__":
    main()
