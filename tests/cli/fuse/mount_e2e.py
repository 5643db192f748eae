#!/usr/bin/python3
"""`refzarr mount` end to end: index the samples, mount the index with FUSE, read every array with
zarr-python's DirectoryStore and compare with tifffile, `cp -r` a file group out and open the copy
without refzarr, then unmount with `fusermount3 -u` (v2) and with SIGTERM (v3). Then a source that
changes while mounted: its chunks are never served again, even those in the kernel's page cache.
Exit code 77 (ctest SKIP_RETURN_CODE) where /dev/fuse is missing or mounting is not permitted.
Environment: REFZARR_BIN, REFZARR_SAMPLES_BIN, REFZARR_SHARED_DIR, REFZARR_WORK."""
import errno
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

    def __init__(self, refzarr, index, mountpoint, zarr_format, work, extra=(), tag=""):
        self.mountpoint = mountpoint
        self.log_path = os.path.join(work, f"mount{tag}-v{zarr_format}.err")
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


def expect_eio(failures, path, what):
    """Opening and reading `path` must fail with EIO."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        failures.append(f"{what}: {path} served {len(data)} bytes")
    except OSError as e:
        if e.errno != errno.EIO:
            failures.append(f"{what}: {path}: {e} (expected EIO)")


def check_changed_source(refzarr, work):
    """A source rewritten in place while mounted: an uncached chunk fails at once, a cached one once
    --revalidate has passed, and so do the file's metadata and listings; all with EIO, and the
    mount's log names the source. zarr-python's DirectoryStore reads an array opened before the
    change as zeros; the README's StrictDirectoryStore raises."""
    import numpy as np
    import zarr
    _, StrictDirectoryStore = c.strict_stores()
    failures = []
    folder = os.path.join(work, "changing")
    os.makedirs(folder, exist_ok=True)
    tif = os.path.join(folder, "changing.tif")
    pixels = c.write_tiled_tiff(tif)
    index = os.path.join(work, "changing.refs.db")
    subprocess.run([refzarr, "index", "-o", index, tif], check=True, stdout=subprocess.DEVNULL)
    mnt = os.path.join(work, "mnt-changing")
    array = os.path.join(mnt, "0", "0")  # A one-file index: the root is its group.
    chunk = os.path.join(array, "0", "0", "0")
    with Mounted(refzarr, index, mnt, 2, work, ["--revalidate", "0.3"]) as m:
        cached = open(os.path.join(chunk, "0", "0"), "rb").read()
        if cached != pixels[:32, :32].tobytes():
            failures.append("changed source: the first chunk read wrong before the change")
        plain = zarr.open(zarr.DirectoryStore(mnt), mode="r")["0/0"]
        strict = zarr.open(StrictDirectoryStore(mnt), mode="r")["0/0"]
        if not (plain[0, 0, 0, :32, 32:] == pixels[:32, 32:]).all():
            failures.append("changed source: zarr-python read wrong pixels before the change")
        c.rewrite_in_place(tif)
        expect_eio(failures, os.path.join(chunk, "1", "1"), "changed source, chunk not cached")
        time.sleep(0.6)
        expect_eio(failures, os.path.join(chunk, "0", "0"), "changed source, chunk cached")
        for key in (".zattrs", ".zgroup", ".zmetadata", "0/.zattrs", "0/0/.zarray",
                    "0/0/.zattrs"):
            expect_eio(failures, os.path.join(mnt, *key.split("/")), "changed source, metadata")
        try:
            os.listdir(chunk)
            failures.append("changed source: its chunk directory still lists")
        except OSError as e:
            if e.errno != errno.EIO:
                failures.append(f"changed source: listing: {e} (expected EIO)")
        if plain[0, 0, 0].any():
            failures.append("changed source: zarr-python's DirectoryStore no longer reads failed "
                            "chunks as zeros (the README says it does)")
        try:
            strict[0, 0, 0]
            failures.append("changed source: the README's StrictDirectoryStore read it without "
                            "error")
        except OSError as e:
            print(f"changed source: StrictDirectoryStore raised {e}")
        m.proc.send_signal(signal.SIGTERM)
        m.wait()
    log = open(m.log_path).read()
    if tif not in log or "changed since it was indexed" not in log:
        failures.append("changed source: the mount's log does not name it: " + log)
    print(f"changed source: {len(failures)} failures")
    return failures


def check_mount_points(refzarr, work, index):
    """`mount` refuses a file and a mount point (exit 1, a clear message, nothing mounted), warns
    about a non-empty directory, and hints at Ctrl-C only in the foreground. A background mount
    logs to --log FILE: mounted, each EIO with its key and reason, unmounted."""
    failures = []
    a_file = os.path.join(work, "not-a-directory")
    open(a_file, "w").close()
    done = subprocess.run([refzarr, "mount", index, a_file], capture_output=True, text=True)
    if done.returncode != 1 or f"{a_file}: not a directory" not in done.stderr:
        failures.append(f"mount on a file: exit {done.returncode}: {done.stderr.strip()}")

    mnt = os.path.join(work, "mnt-points")
    shutil.rmtree(mnt, ignore_errors=True)
    os.makedirs(mnt)
    open(os.path.join(mnt, "hidden"), "w").close()
    with Mounted(refzarr, index, mnt, 2, work, tag="-points") as m:
        again = subprocess.run([refzarr, "mount", index, mnt], capture_output=True, text=True)
        if again.returncode != 1 or "already a mount point" not in again.stderr:
            failures.append(f"mount on a mount point: exit {again.returncode}: "
                            f"{again.stderr.strip()}")
        if ".zgroup" not in os.listdir(mnt):
            failures.append("the first mount broke when a second was tried")
        subprocess.run(["fusermount3", "-u", mnt])
        m.wait()
    log = open(m.log_path).read()
    if "is not empty" not in log:
        failures.append("no warning for a non-empty mount point: " + log)
    if "Ctrl-C" not in log:
        failures.append("a foreground mount does not say Ctrl-C unmounts it: " + log)

    # In the background, with a log file.
    folder = os.path.join(work, "background")
    os.makedirs(folder, exist_ok=True)
    tif = os.path.join(folder, "bg.tif")
    c.write_tiled_tiff(tif)
    bg_index = os.path.join(work, "background.refs.db")
    subprocess.run([refzarr, "index", "-o", bg_index, folder], check=True,
                   stdout=subprocess.DEVNULL)
    os.remove(os.path.join(mnt, "hidden"))
    log_path = os.path.join(work, "background.log")
    if os.path.exists(log_path):
        os.remove(log_path)
    done = subprocess.run([refzarr, "mount", bg_index, mnt, "--revalidate", "0", "--log",
                           log_path], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or not os.path.ismount(mnt):
        failures.append(f"background mount: exit {done.returncode}: {done.stderr.strip()}")
        return failures
    if "Ctrl-C" in done.stderr:
        failures.append("a background mount says Ctrl-C unmounts it: " + done.stderr)
    c.rewrite_in_place(tif)
    expect_eio(failures, os.path.join(mnt, "bg.tif", "0", "0", ".zarray"), "background mount")
    subprocess.run(["fusermount3", "-u", mnt])
    timer = c.Timer(10)
    text = ""
    while not timer.expired() and "unmounted" not in text:
        time.sleep(0.05)
        text = open(log_path).read()
    for line in ("refzarr: mounted Zarr v2 at " + mnt, f"source {tif} changed since it was indexed",
                 "refzarr: unmounted " + mnt):
        if line not in text:
            failures.append(f"background mount: --log lacks '{line}': {text}")
    print(f"mount points and --log: {len(failures)} failures")
    return failures


def check_huge_sparse_listings(refzarr, work, shared):
    """tlayouto.h5 (2^33 x 257 chunk positions, none stored) and tbigdims.h5 (4 194 305, 2
    stored) list through the mount in little time and memory, only their stored chunks (h5py is
    the oracle)."""
    failures = []
    for path, dataset in c.huge_sparse_cases(shared):
        name = os.path.basename(path)
        index = os.path.join(work, name + ".refs.db")
        subprocess.run([refzarr, "index", "-o", index, path], check=True,
                       stdout=subprocess.DEVNULL)
        mnt = os.path.join(work, "mnt-" + name)
        with Mounted(refzarr, index, mnt, 2, work, tag="-" + name) as m:
            start = time.time()
            names = sorted(os.listdir(os.path.join(mnt, dataset)))
            seconds = time.time() - start
            rss = c.peak_rss_mib(m.proc.pid)
            want = sorted([".zarray", ".zattrs"] + c.h5_stored_chunk_names(path, dataset))
            if names != want:
                failures.append(f"{name}: the mount lists {names[:10]}, h5py says {want}")
            if seconds > 5 or rss > 200:
                failures.append(f"{name}: listing took {seconds:.1f} s, mount peaked at "
                                f"{rss:.0f} MiB")
            print(f"{name}: mounted listing of {dataset}/ in {seconds * 1000:.0f} ms, mount peak "
                  f"{rss:.0f} MiB")
            subprocess.run(["fusermount3", "-u", mnt])
            m.wait()
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
    failures += check_mount_points(refzarr, work, index)
    failures += check_huge_sparse_listings(refzarr, work, c.env("REFZARR_SHARED_DIR"))

    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
