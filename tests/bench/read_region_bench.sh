#!/bin/bash
# Reading a region of a deflate BigTIFF through the C++ read API (store/array_reader.h) against
# tifffile reading the same region from the file (docs/performance.md).
# Usage: tests/bench/read_region_bench.sh BUILD_DIR [WORK_DIR] [PAGE_SIZE] [REGION] [REPEAT]
# Writes one PAGE_SIZE^2 uint16 page in 256 x 256 deflate tiles (refzarr-make-bench-tiff), indexes
# it, reads the REGION^2 box at an offset that is not tile-aligned with refzarr on 1 and 2 threads
# and with tifffile (read_region_tifffile.py), and fails unless every sum is the same.
# The file stays in the page cache: both sides read it warm.
set -euo pipefail
BUILD=${1:?build directory}
WORK=${2:-/tmp/refzarr-read-region-bench}
SIZE=${3:-8192}
REGION=${4:-4096}
REPEAT=${5:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"
"$BUILD/bin/refzarr-make-bench-tiff" "$WORK/bench.tif" --pages 1 --size "$SIZE" >/dev/null
"$BUILD/bin/refzarr" index -o "$WORK/bench.refs.db" "$WORK/bench.tif" >/dev/null
Y0=$((SIZE / 8 + 7))
X0=$((SIZE / 8 + 13))
echo "file: $(stat -c %s "$WORK/bench.tif") bytes, ${SIZE}x${SIZE} uint16, region ${REGION}x${REGION} at ($Y0, $X0)"
"$BUILD/bin/refzarr-bench-read-region" "$WORK/bench.refs.db" 0/0 0:1 0:1 0:1 \
  "$Y0:$((Y0 + REGION))" "$X0:$((X0 + REGION))" --threads 1 2 --repeat "$REPEAT" | tee "$WORK/out.txt"
/usr/bin/python3 "$HERE/read_region_tifffile.py" "$WORK/bench.tif" "$Y0" "$X0" "$REGION" \
  --repeat "$REPEAT" | tee -a "$WORK/out.txt"
SUMS=$(grep -o 'sum=[0-9]*' "$WORK/out.txt" | sort -u | wc -l)
if [ "$SUMS" != 1 ]; then
  echo "FAILED: the readers disagree on the region's sum" >&2
  exit 1
fi
echo "all sums agree"
rm -rf "$WORK"
