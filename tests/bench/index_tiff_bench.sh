#!/usr/bin/env bash
# Indexing benchmark of issue 2: a BigTIFF of 1,600 pages of 2048x2048 uint16 in 256x256 deflate
# tiles (102,400 tiles). Measures refzarr index (wall and CPU), bytes per reference, `refzarr cat`
# of one chunk as a whole process, and tifffile's write_fsspec on the same file (the baseline).
# Usage: tests/bench/index_tiff_bench.sh BUILD_DIR WORK_DIR   (WORK_DIR needs ~6.3 GB free)
set -euo pipefail
build=${1:-build}
work=${2:-/tmp/refzarr-bench}
mkdir -p "$work"
tif="$work/bench.tif"
[ -f "$tif" ] || "$build/bin/refzarr-make-bench-tiff" "$tif"
db="$work/bench.refs.db"
echo "== refzarr index (3 runs, fresh index each)"
for i in 1 2 3; do
  rm -f "$db" "$db-wal" "$db-shm"
  /usr/bin/time -f "wall %e s  user %U s  sys %S s  maxrss %M KB" \
    "$build/bin/refzarr" index -o "$db" "$tif" >/dev/null
done
"$build/bin/refzarr" info "$db" | grep -E "chunk references|index size"
echo "== refzarr cat of one chunk, whole process (5 runs)"
for i in 1 2 3 4 5; do
  /usr/bin/time -f "wall %e s" "$build/bin/refzarr" cat "$db" 0/0/0/0/800/3/4 --codecs passthrough >/dev/null
done
echo "== baseline: tifffile aszarr + write_fsspec"
/usr/bin/python3 "$(dirname "$0")/kerchunk_tifffile_baseline.py" "$tif" --repeat 3
