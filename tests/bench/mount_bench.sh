#!/bin/bash
# Read throughput through `refzarr mount` against reading the same chunks from a plain directory:
# sequential (every chunk file whole, in order) and random (4 KiB preads at random offsets of random
# chunks). Each mount measurement starts from a fresh mount (empty FUSE page cache); the source TIFF
# and the plain directory are in the OS page cache (warm), so the figures isolate the FUSE path.
# Usage: tests/bench/mount_bench.sh REFZARR_BIN [WORK_DIR]
# Needs: fuse3, /usr/bin/python3 with numpy and tifffile.
set -euo pipefail
REFZARR=${1:?refzarr binary}
WORK=${2:-/tmp/refzarr-mount-bench}
rm -rf "$WORK" && mkdir -p "$WORK/src" "$WORK/mnt"

# 8192 x 4096 uint16, uncompressed 256 x 256 tiles: 512 pass-through chunks of 128 KiB (64 MiB).
/usr/bin/python3 - "$WORK/src/bench.tif" <<'PY'
import sys, numpy as np, tifffile
rng = np.random.default_rng(0)
tifffile.imwrite(sys.argv[1], rng.integers(0, 4096, (8192, 4096), dtype=np.uint16), tile=(256, 256))
PY
"$REFZARR" index -o "$WORK/bench.refs.db" "$WORK/src/bench.tif" >/dev/null 2>&1 || true

mount_view() {
  "$REFZARR" mount "$WORK/bench.refs.db" "$WORK/mnt" -f 2>/dev/null &
  MOUNT_PID=$!
  for _ in $(seq 50); do mountpoint -q "$WORK/mnt" && return; sleep 0.1; done
  echo "mount failed"; exit 1
}
unmount_view() { fusermount3 -u "$WORK/mnt"; wait $MOUNT_PID || true; }

mount_view
cp -r "$WORK/mnt" "$WORK/plain"
unmount_view
cat "$WORK/src/bench.tif" > /dev/null; find "$WORK/plain" -type f -exec cat {} + > /dev/null

cat > "$WORK/read.py" <<'PY'
import os, random, sys, time
root, mode = sys.argv[1], sys.argv[2]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "0/0"))
               for f in fs if not f.startswith("."))
start = time.perf_counter()
total = ops = 0
if mode == "seq":
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
        ops += 1
else:
    rng = random.Random(1)
    fds = [os.open(p, os.O_RDONLY) for p in files]
    size = os.fstat(fds[0]).st_size
    for _ in range(20000):
        total += len(os.pread(rng.choice(fds), 4096, rng.randrange(0, size - 4096)))
        ops += 1
    for fd in fds:
        os.close(fd)
dt = time.perf_counter() - start
print(f"{total / dt / 1e6:.0f} {ops / dt:.0f}")
PY

echo "$(ls "$WORK/plain/0/0" | wc -l) entries; 512 chunks of 128 KiB"
for round in 1 2; do
  for mode in seq rand; do
    read -r plain_mb plain_ops < <(/usr/bin/python3 "$WORK/read.py" "$WORK/plain" $mode)
    mount_view
    read -r mnt_mb mnt_ops < <(/usr/bin/python3 "$WORK/read.py" "$WORK/mnt" $mode)
    read -r warm_mb warm_ops < <(/usr/bin/python3 "$WORK/read.py" "$WORK/mnt" $mode)
    unmount_view
    awk -v m=$mode -v p=$plain_mb -v q=$plain_ops -v a=$mnt_mb -v b=$mnt_ops -v c=$warm_mb -v d=$warm_ops \
      'BEGIN {printf "round '"$round"' %-4s plain %6d MB/s %7d op/s | mount cold %6d MB/s %7d op/s (%.2fx) | mount warm %6d MB/s %7d op/s (%.2fx)\n", m, p, q, a, b, b / q, c, d, d / q}'
  done
done
