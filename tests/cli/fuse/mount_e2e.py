#!/usr/bin/python3
"""`refzarr mount` end to end: index the samples, mount the index with FUSE, read every array with
zarr-python's DirectoryStore and compare with tifffile, `cp -r` a file group out and open the copy
without refzarr, then unmount with `fusermount3 -u` (v2) and with SIGTERM (v3). Then a source that
changes while mounted: its chunks are never served again, even those in the kernel's page cache.
Exit code 77 (ctest SKIP_RETURN_CODE) where /dev/fuse is missing or mounting is not permitted.
Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_SHARED_DIR, REFZARR_WORK."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import e2e_common as c  # noqa: E402

SKIP = 77


class Mounted:
    """A foreground `refzarr mount -f` process."""

    def __init__(self, refzarr, index, mountpoint, zarr_format, work, extra=()):
        self.mountpoint = mountpoint
        self.log_path = os.path.join(work, f"mount-v{zarr_format}.err")
        self.args = [refzarr, "mount", index, mountpoint, "-f", "--zarr-format", str(zarr_format),
                     *extra]

    def __enter__(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        self.err = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        timer = c.Timer(15)
        while not timer.expired():
            if os.path.ismount(self.mountpoint):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
        log = open(self.log_path).read()
        if not os.path.exists("/dev/fuse") or "fuse" in log.lower():
            print(f"SKIP: cannot mount here (no /dev/fuse or not permitted): {log.strip()}")
            sys.exit(SKIP)
        sys.exit("refzarr mount did not mount: " + log)

    def wait(self, seconds=10):
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "killed after %d s" % seconds

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", self.mountpoint])
            self.wait()
        self.err.close()


def check_changed_source(refzarr, work):
    """A source rewritten in place while mounted: an uncached chunk fails at once, a cached one once
    --revalidate has passed; both with EIO, and the mount's log names the source."""
    import numpy as np
    import tifffile
    failures = []
    folder = os.path.join(work, "changing")
    os.makedirs(folder, exist_ok=True)
    tif = os.path.join(folder, "changing.tif")
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    tifffile.imwrite(tif, pixels, tile=(32, 32))
    index = os.path.join(work, "changing.refs.db")
    subprocess.run([refzarr, "index", "-o", index, tif], check=True, stdout=subprocess.DEVNULL)
    mnt = os.path.join(work, "mnt-changing")
    chunk = os.path.join(mnt, "0", "0", "0", "0", "0")  # A one-file index: the root is its group.
    with Mounted(refzarr, index, mnt, 2, work, ["--revalidate", "0.3"]) as m:
        cached = open(os.path.join(chunk, "0", "0"), "rb").read()
        if cached != pixels[:32, :32].tobytes():
            failures.append("changed source: the first chunk read wrong before the change")
        with open(tif, "r+b") as f:  # Same size, new bytes and mtime.
            f.seek(os.path.getsize(tif) // 2)
            f.write(b"\xff" * 16)
        for name, when in (("1/1", "not cached"), ("0/0", "cached, after --revalidate")):
            if name == "0/0":
                time.sleep(0.6)
            try:
                data = open(os.path.join(chunk, *name.split("/")), "rb").read()
                failures.append(f"changed source: chunk {name} ({when}) served {len(data)} bytes")
            except OSError as e:
                if e.errno != 5:
                    failures.append(f"changed source: chunk {name} ({when}): {e} (expected EIO)")
        m.proc.send_signal(signal.SIGTERM)
        m.wait()
    log = open(m.log_path).read()
    if tif not in log or "changed since it was indexed" not in log:
        failures.append("changed source: the mount's log does not name it: " + log)
    print(f"changed source: {len(failures)} failures")
    return failures


def main():
    if not os.path.exists("/dev/fuse"):
        print("SKIP: no /dev/fuse")
        sys.exit(SKIP)
    refzarr = c.env("REFZARR_BIN")
    work = c.env("REFZARR_WORK")
    os.makedirs(work, exist_ok=True)
    samples, index = c.make_index(refzarr, c.env("REFZARR_SAMPLES_BIN"), work)
    failures = []

    import zarr
    mnt = os.path.join(work, "mnt")
    with Mounted(refzarr, index, mnt, 2, work) as m:
        root = zarr.open(zarr.DirectoryStore(mnt), mode="r")
        failures += c.check_all_arrays(root, samples, "zarr-python DirectoryStore on the mount (v2)")

        # A file group copied out is an ordinary OME-Zarr: zarr-python opens it without refzarr.
        group = "tiled/u32_none.tif"
        copy = os.path.join(work, "copy.zarr")
        shutil.rmtree(copy, ignore_errors=True)
        subprocess.run(["cp", "-r", os.path.join(mnt, group), copy], check=True)
        copied = zarr.open(zarr.DirectoryStore(copy), mode="r")
        mounted = zarr.open(zarr.DirectoryStore(os.path.join(mnt, group)), mode="r")
        if not (copied["0/0"][...] == mounted["0/0"][...]).all():
            failures.append("the cp -r copy differs from the mount")
        message = c.compare_array(copied["0/0"], samples, group + "/0/0")
        if message is not None:
            failures.append("copy: " + message)
        if "multiscales" not in json.load(open(os.path.join(copy, "0", ".zattrs"))):
            failures.append("copy: no multiscales in 0/.zattrs")

        # Writes fail with EROFS.
        try:
            open(os.path.join(mnt, group, "0", "new"), "w")
            failures.append("creating a file on the mount succeeded")
        except OSError as e:
            if e.errno != 30:
                failures.append(f"create on the mount: {e} (expected EROFS)")

        rc = subprocess.run(["fusermount3", "-u", mnt]).returncode
        code = m.wait()
        if rc != 0 or code != 0 or os.path.ismount(mnt):
            failures.append(f"fusermount3 -u: rc {rc}, mount exit code {code}")
        print(f"fusermount3 -u: mount process exit code {code}")

    with Mounted(refzarr, index, mnt, 3, work) as m:
        names = set(os.listdir(mnt))
        if "zarr.json" not in names or ".zgroup" in names:
            failures.append(f"v3 mount root has {sorted(names)}")
        m.proc.send_signal(signal.SIGTERM)
        code = m.wait()
        if code != 0 or os.path.ismount(mnt):
            failures.append(f"SIGTERM: exit code {code}, still mounted: {os.path.ismount(mnt)}")
        print(f"SIGTERM: mount process exit code {code}")

    failures += check_changed_source(refzarr, work)

    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
