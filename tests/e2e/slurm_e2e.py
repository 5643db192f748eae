"""End to end on a real SLURM (Debian's slurm-wlm and munge): a one-node cluster on localhost in a
temporary folder (its own munge key and socket, slurm.conf, ports, state and spool folders) runs a
job array of 4 tasks with `sbatch --wait`, each `refzarr index --shard K/4` of the samples into its
own index; `refzarr merge` combines them. Checked against a single-machine index of the same
inputs: every file is in the shard the documented hash names (python3-xxhash's XXH3-64 of its tree
path modulo 4), the merged index exports the same kerchunk references and serves every key with
the same bytes (two `refzarr serve`), and after one task is re-run (`sbatch --array=3`) the re-merged
index is the same again. The cluster is shut down at the end, failed or not. Needs root (slurmd
runs jobs as their user; SlurmdUser=root); where the daemons cannot start it fails, naming the
daemon and its log.
Usage: REFZARR_BIN=... REFZARR_SAMPLES_BIN=... REFZARR_HDF5_SAMPLES_BIN=... REFZARR_WORK=...
slurm_e2e.py"""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402

SHARDS = 4
DAEMONS = ["munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo"]


def fail(message):
    sys.exit("slurm_e2e: " + message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"({path}: {e})"


class Cluster:
    """munged, slurmctld and slurmd in the foreground, children of this process, in `root`."""

    def __init__(self, root):
        self.root = root
        self.procs = []  # (name, Popen, log path)
        self.munge = os.path.join(root, "munge")
        self.conf = os.path.join(root, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    def start(self):
        missing = [d for d in DAEMONS if not shutil.which(d, path=os.environ.get("PATH", "") +
                                                          ":/usr/sbin:/sbin")]
        if missing:
            fail(f"{', '.join(missing)} not found: install the Makefile's APT_PACKAGES "
                 "(slurm-wlm munge)")
        if os.geteuid() != 0:
            fail("the SLURM test needs root (SlurmdUser=root, munged's key and socket); it cannot "
                 f"start the daemons as uid {os.geteuid()}")
        os.makedirs(self.munge, mode=0o711)
        os.chmod(self.munge, 0o711)
        key = os.path.join(self.munge, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        sock = os.path.join(self.munge, "munge.sock")
        self.spawn("munged", ["munged", "--foreground", "--force", f"--socket={sock}",
                              f"--key-file={key}", f"--log-file={self.munge}/munged.log",
                              f"--pid-file={self.munge}/munged.pid",
                              f"--seed-file={self.munge}/munged.seed"],
                   os.path.join(self.munge, "munged.log"))
        self.wait_for("munged", lambda: os.path.exists(sock), 10)
        for d in ("state", "spool"):
            os.makedirs(os.path.join(self.root, d))
        r = self.root
        cpus = os.cpu_count() or 1
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=refzarrtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=node1 NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes=node1 Default=YES MaxTime=INFINITE State=UP
""")
        # -i: ignore a state folder's previous contents (there are none: a fresh cluster).
        self.spawn("slurmctld", ["slurmctld", "-D", "-i"], os.path.join(r, "slurmctld.log"))
        self.wait_for("slurmctld", lambda: self.run(["scontrol", "ping"], check=False)
                      .stdout.find("is UP") >= 0, 20)
        self.spawn("slurmd", ["slurmd", "-D", "-N", "node1"], os.path.join(r, "slurmd.log"))
        self.wait_for("slurmd", lambda: self.run(["sinfo", "-h", "-n", "node1", "-o", "%T"],
                                                 check=False).stdout.strip() == "idle", 30)

    def spawn(self, name, args, log):
        out = open(os.path.join(self.root, name + ".out"), "w")
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                             cwd=self.root)
        self.procs.append((name, p, log))

    def wait_for(self, name, ready, seconds):
        timer = c.Timer(seconds)
        proc, log = next((p, l) for n, p, l in self.procs if n == name)
        while not timer.expired():
            if ready():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        state = "exited with " + str(proc.returncode) if proc.poll() is not None else \
            f"not ready after {seconds} s"
        fail(f"{name} could not start ({state}); its log {log}:\n{tail(log)}\n"
             f"its output:\n{tail(os.path.join(self.root, name + '.out'))}")

    def run(self, args, check=True, **kw):
        r = subprocess.run(args, env=self.env, capture_output=True, text=True, **kw)
        if check and r.returncode != 0:
            fail(f"{' '.join(args)} exited with {r.returncode}:\n{r.stdout}{r.stderr}\n"
                 f"slurmctld log:\n{tail(os.path.join(self.root, 'slurmctld.log'))}\n"
                 f"slurmd log:\n{tail(os.path.join(self.root, 'slurmd.log'))}")
        return r

    def stop(self):
        """scontrol shutdown, then each daemon that is still running is terminated, then killed."""
        if any(n == "slurmctld" and p.poll() is None for n, p, _ in self.procs):
            self.run(["scontrol", "shutdown"], check=False, timeout=10)
        for name, p, _ in reversed(self.procs):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def refzarr_json(refzarr, *args):
    r = subprocess.run([refzarr, *args], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"refzarr {' '.join(args)} exited with {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)


def export_refs(refzarr, index, work, name):
    out = os.path.join(work, name + ".json")
    r = subprocess.run([refzarr, "export", index, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"refzarr export {index}: {r.stderr}")
    with open(out) as f:
        return json.load(f)["refs"]


def compare(refzarr, single, merged, work, what):
    """The failures of `merged` against `single`: references, info, and every served key."""
    failures = []
    want, got = export_refs(refzarr, single, work, "single"), export_refs(refzarr, merged, work, what)
    if len(want) < 20:
        fail(f"the single index exports only {len(want)} keys: the samples were not indexed")
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            failures.append(f"{what}: reference of {key}: single {str(want.get(key))[:80]}, "
                            f"merged {str(got.get(key))[:80]}")
    info = [refzarr_json(refzarr, "info", "--json", i) for i in (single, merged)]
    for i in info:
        i.pop("index"), i.pop("index_bytes")
    if info[0] != info[1]:
        failures.append(f"{what}: info --json differs")
    with serve_e2e.Server(refzarr, single, 2, work, "-single") as a, \
            serve_e2e.Server(refzarr, merged, 2, work, "-" + what) as b:
        for key in sorted(want):
            sa, _, ba = a.request("GET", key)
            sb, _, bb = b.request("GET", key)
            if (sa, ba) != (sb, bb):
                failures.append(f"{what}: served {key}: single {sa} ({len(ba)} bytes), merged "
                                f"{sb} ({len(bb)} bytes)")
    return failures, len(want)


def main():
    import xxhash

    refzarr = os.path.abspath(c.env("REFZARR_BIN"))
    work = os.path.abspath(c.env("REFZARR_WORK"))
    shutil.rmtree(work, ignore_errors=True)
    archive = os.path.join(work, "archive")
    shards = os.path.join(work, "shards")
    os.makedirs(shards)
    subprocess.run([c.env("REFZARR_SAMPLES_BIN"), os.path.join(archive, "tiff"), "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([c.env("REFZARR_HDF5_SAMPLES_BIN"), os.path.join(archive, "hdf5")], check=True,
                   stdout=subprocess.DEVNULL)
    single = os.path.join(work, "single.refs.db")
    # Exit 1: the deliberately broken samples fail; they are recorded like the rest.
    r = subprocess.run([refzarr, "index", "-o", single, archive], capture_output=True, text=True)
    if r.returncode > 1 or not os.path.exists(single):
        fail(f"single-machine index: {r.stderr}")

    # The job script a user would write (docs/cluster.md): task K of N from SLURM's array id.
    job = os.path.join(work, "index-shard.sh")
    with open(job, "w") as f:
        f.write(f"""#!/bin/bash
#SBATCH --job-name=refzarr-index
#SBATCH --cpus-per-task=1
#SBATCH --output={work}/task-%a.out
set -u
N={SHARDS}
echo "task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID"
"{refzarr}" index -j 1 -o "{shards}/shard-$SLURM_ARRAY_TASK_ID-of-$N.refs.db" \\
    --shard "$SLURM_ARRAY_TASK_ID/$N" "{archive}"
code=$?
# 1: some files failed (recorded in the index, as in one run); anything else fails the task.
[ $code -le 1 ] || exit $code
""")
    os.chmod(job, 0o755)

    cluster_root = tempfile.mkdtemp(prefix="refzarr-slurm-")
    cluster = Cluster(cluster_root)
    failures = []
    try:
        start = time.time()
        cluster.start()
        print(f"cluster up in {time.time() - start:.1f} s ({cluster_root})")
        start = time.time()
        cluster.run(["sbatch", "--wait", f"--array=1-{SHARDS}", job], timeout=120)
        print(f"job array of {SHARDS} tasks done in {time.time() - start:.1f} s")
        for k in range(1, SHARDS + 1):
            out = os.path.join(work, f"task-{k}.out")
            if not os.path.exists(out) or f"task {k} of job" not in open(out).read():
                failures.append(f"task {k} left no output of its own at {out}")
        indexes = sorted(glob.glob(os.path.join(shards, "*.refs.db")))
        if len(indexes) != SHARDS:
            fail(f"the job array wrote {len(indexes)} shard indexes, not {SHARDS}: {indexes}")

        # Every file is in the shard that the documented hash names, and in no other.
        single_files = {f["uri"] for f in refzarr_json(refzarr, "info", "--json", single)["files"]
                        if f["status"] != "companion"}
        seen = []
        for k in range(1, SHARDS + 1):
            index = os.path.join(shards, f"shard-{k}-of-{SHARDS}.refs.db")
            for f in refzarr_json(refzarr, "info", "--json", index)["files"]:
                if f["status"] == "companion":
                    continue
                seen.append(f["uri"])
                want = xxhash.xxh3_64_intdigest(f["group"].encode()) % SHARDS + 1
                if want != k:
                    failures.append(f"{f['group']} is in shard {k}, XXH3-64 says {want}")
        if sorted(seen) != sorted(single_files):
            failures.append(f"the shards hold {len(seen)} files ({len(set(seen))} distinct), the "
                            f"single index {len(single_files)}")

        merged = os.path.join(work, "merged.refs.db")
        cluster.run([refzarr, "merge", "-o", merged, *indexes])
        f, keys = compare(refzarr, single, merged, work, "merged")
        failures += f

        # Task 3 fails (its index is lost) and is re-run alone: the same index again.
        os.remove(os.path.join(shards, f"shard-3-of-{SHARDS}.refs.db"))
        start = time.time()
        cluster.run(["sbatch", "--wait", "--array=3", job], timeout=120)
        print(f"task 3 re-run in {time.time() - start:.1f} s")
        remerged = os.path.join(work, "remerged.refs.db")
        cluster.run([refzarr, "merge", "-o", remerged, *indexes])
        f, _ = compare(refzarr, single, remerged, work, "remerged")
        failures += f
    finally:
        cluster.stop()
        shutil.rmtree(cluster_root, ignore_errors=True)
    for m in failures[:30]:
        print("FAIL", m)
    if failures:
        fail(f"{len(failures)} failures")
    print(f"OK: {SHARDS} SLURM tasks, merged and re-merged after a re-run, {keys} keys equal to "
          "one index")


if __name__ == "__main__":
    main()
