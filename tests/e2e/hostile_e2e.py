"""A hostile corpus costs its own files, never the run: `refzarr index` over good files mixed with
mutants of the samples and of ../shared/realdata (bytes flipped in the headers, words set to huge
values, truncations, each reproducible from a fixed seed) indexes every good file, names every bad
one with a reason, exits 1 with its JSON report intact, leaves a consistent index, and finishes
within a time bound. Scans run in crash-isolated workers (the default), so a mutant that crashes
libtiff or libhdf5, loops or eats memory fails alone.
Usage: REFZARR_BIN=... REFZARR_SAMPLES_BIN=... REFZARR_HDF5_SAMPLES_BIN=... REFZARR_SHARED_DIR=...
       REFZARR_WORK=... hostile_e2e.py"""
import json
import os
import random
import shutil
import subprocess
import sys
import time

MUTANTS_PER_SEED = 6
SEED = 20261201
TIME_BOUND_S = 240
IMAGE_EXTENSIONS = (".tif", ".tiff", ".btf", ".tf8", ".svs", ".ome", ".h5", ".hdf5", ".he5", ".ims",
                    ".nwb", ".nc", ".emd")


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"missing environment variable {name}")
    return value


def mutate(data, rng):
    """One mutant of `data`: what fuzzers find most often breaks parsers (headers, offsets, sizes)."""
    b = bytearray(data)
    kind = rng.randrange(4)
    head = max(1, min(len(b), 4096))
    if kind == 0:  # flip bytes in the header region (IFDs, superblock, object headers)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(head)] ^= 1 << rng.randrange(8)
    elif kind == 1:  # a 4- or 8-byte word becomes huge (counts, offsets, dimensions)
        at = rng.randrange(max(1, head - 8))
        b[at:at + 8] = rng.choice([b"\xff" * 8, b"\x7f\xff\xff\xff" * 2, b"\x00\x00\x00\x80" * 2])
    elif kind == 2:  # truncated
        del b[rng.randrange(1, max(2, len(b))):]
    else:  # a block of the file copied over another (self-references, loops)
        n = rng.randint(8, 256)
        src, dst = rng.randrange(max(1, len(b) - n)), rng.randrange(max(1, head - n))
        b[dst:dst + n] = b[src:src + n]
    return bytes(b)


# Mutants that a fuzzing run found to crash or hang the HDF5 library in process, as byte patches of
# realdata files: (file under realdata, {offset: new byte}, what it did).
KNOWN_HOSTILE = [
    ("hdf5/vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfloat16_be.h5",
     {920: 1, 1186: 1, 1554: 73}, "SIGSEGV in H5Dread of a compact dataset"),
    ("hdf5/jamesmudd+jhdf/jhdf/src/test/resources/hdf5/implicit_index_datasets.hdf5",
     {43: 128, 93: 14, 414: 32, 644: 32, 722: 2, 1228: 1, 1549: 128, 2195: 16},
     "a hang opening a checksummed file with bad checksums"),
]


def seeds(good, shared):
    """Small files to mutate: a spread of the samples and the realdata TIFF and HDF5 files."""
    out = []
    for root, _, names in os.walk(good):
        for name in sorted(names):
            if name.lower().endswith((".tif", ".tiff", ".h5", ".ims")):
                out.append(os.path.join(root, name))
    real = os.path.join(shared, "realdata")
    for root, _, names in os.walk(real):
        for name in sorted(names):
            if name.lower().endswith((".tif", ".tiff", ".h5", ".hdf5")):
                out.append(os.path.join(root, name))
    out = [p for p in sorted(out) if os.path.getsize(p) <= 2 << 20]
    return out


def main():
    refzarr = env("REFZARR_BIN")
    work = env("REFZARR_WORK")
    shared = env("REFZARR_SHARED_DIR")
    shutil.rmtree(work, ignore_errors=True)
    corpus = os.path.join(work, "corpus")
    good = os.path.join(corpus, "good")
    bad = os.path.join(corpus, "mutants")
    os.makedirs(bad)
    subprocess.run([env("REFZARR_SAMPLES_BIN"), good, "-q"], check=True)
    subprocess.run([env("REFZARR_HDF5_SAMPLES_BIN"), os.path.join(good, "hdf5")], check=True,
                   stdout=subprocess.DEVNULL)
    rng = random.Random(SEED)
    mutants = 0
    for path in seeds(good, shared):
        with open(path, "rb") as f:
            data = f.read()
        stem, ext = os.path.splitext(os.path.basename(path))
        for k in range(MUTANTS_PER_SEED):
            with open(os.path.join(bad, f"{stem}.m{k}{ext}"), "wb") as f:
                f.write(mutate(data, rng))
            mutants += 1
    known = os.path.join(corpus, "known")
    os.makedirs(known)
    for rel, patch, _ in KNOWN_HOSTILE:
        data = bytearray(open(os.path.join(shared, "realdata", rel), "rb").read())
        for at, value in patch.items():
            data[at] = value
        with open(os.path.join(known, "patched-" + os.path.basename(rel)), "wb") as f:
            f.write(bytes(data))
    print(f"{mutants} mutants of {mutants // MUTANTS_PER_SEED} files, {len(KNOWN_HOSTILE)} known crashers")

    index = os.path.join(work, "hostile.refs.db")
    start = time.time()
    try:
        done = subprocess.run([refzarr, "index", "--json", "--scan-timeout", "10", "-o", index, corpus],
                              capture_output=True, text=True, timeout=TIME_BOUND_S)
    except subprocess.TimeoutExpired:
        sys.exit(f"refzarr index did not finish within {TIME_BOUND_S} s")
    seconds = time.time() - start
    failures = []
    if done.returncode != 1:
        failures.append(f"refzarr index exited {done.returncode} (expected 1: some files fail); "
                        f"stderr: {done.stderr[-2000:]}")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        sys.exit(f"the JSON report is lost (exit {done.returncode}): {done.stdout[-500:]}")
    outcomes = {}
    for f in report["files"]:
        outcomes[f["outcome"]] = outcomes.get(f["outcome"], 0) + 1
        rel = os.path.relpath(f["path"], corpus)
        if rel.startswith("good" + os.sep):
            # Sidecars (BDV XML, raw external data, manifests) are skipped; the two deliberately
            # damaged samples under good/bad fail; every other good file is indexed.
            sidecar = f["outcome"] == "skipped" and not f["path"].lower().endswith(IMAGE_EXTENSIONS)
            if f["outcome"] != "indexed" and not sidecar and not rel.startswith(os.path.join("good", "bad")):
                failures.append(f"good file {rel}: {f['outcome']}: {f['error']}")
        elif rel.startswith("known" + os.sep) and f["outcome"] != "failed":
            failures.append(f"{rel} (known to crash or hang a library) was not failed: {f['outcome']}")
        elif f["outcome"] == "failed":
            if not f["error"]:
                failures.append(f"{rel} failed without a reason")
            if f["path"] not in done.stderr:
                failures.append(f"{rel} failed without a message naming it")
        elif f["outcome"] not in ("indexed", "skipped"):
            failures.append(f"{rel}: unexpected outcome {f['outcome']}")
    listed = len(report["files"])
    on_disk = sum(len(names) for _, _, names in os.walk(corpus))
    if listed != on_disk:
        failures.append(f"the report lists {listed} files, the corpus holds {on_disk}")
    killed = [f for f in report["files"] if "scan killed by" in f["error"] or "timed out" in f["error"]]
    print(f"index: {seconds:.1f} s, exit {done.returncode}, outcomes {outcomes}, "
          f"{len(killed)} scans killed or timed out")
    for f in killed:
        print(f"  {os.path.relpath(f['path'], corpus)}: {f['error']}")

    # The index is consistent: it opens, its counts agree with the report, every key lists.
    info = subprocess.run([refzarr, "info", "--json", index], capture_output=True, text=True)
    if info.returncode != 0:
        failures.append(f"refzarr info failed on the index: {info.stderr}")
    else:
        j = json.loads(info.stdout)
        if j["sources"] != report["indexed"]:
            failures.append(f"info counts {j['sources']} sources, the report {report['indexed']} indexed")
        if j["failed_sources"] != report["failed"]:
            failures.append(f"info counts {j['failed_sources']} failed, the report {report['failed']}")
    ls = subprocess.run([refzarr, "ls", "-r", index], capture_output=True, text=True, timeout=120)
    if ls.returncode != 0:
        failures.append(f"refzarr ls -r failed on the index: {ls.stderr[-500:]}")
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
