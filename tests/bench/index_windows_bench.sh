#!/bin/bash
# The index-time cost of display windows from the data (indexer/display_windows.h): two archives
# of FILES 12-bit uint16 TIFFs of 512 x 512 in 256 x 256 deflate tiles (camera-like noise), equal
# but for the SMinSampleValue/SMaxSampleValue tags: with them the window comes from the file and no
# pixel is read; without, each file's plane is read, decoded and its percentiles taken. Each is
# indexed from scratch ROUNDS times, alternating, so both see the same machine.
# Usage: tests/bench/index_windows_bench.sh REFZARR_BIN [WORK_DIR] [FILES] [ROUNDS]
# Needs: /usr/bin/python3 with numpy and tifffile.
set -euo pipefail
REFZARR=${1:?refzarr binary}
WORK=${2:-/tmp/refzarr-windows-bench}
FILES=${3:-2000}
ROUNDS=${4:-3}
rm -rf "$WORK" && mkdir -p "$WORK"
/usr/bin/python3 - "$WORK" "$FILES" <<'PY'
import os, sys, numpy as np, tifffile
work, files = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
yy, xx = np.mgrid[0:512, 0:512]
for i in range(files):
    data = (200 + (yy + xx + i) % 3000 + rng.integers(0, 400, (512, 512))).astype(np.uint16)
    for kind, tags in (("data", []), ("tags", [(340, "H", 1, 200, True), (341, "H", 1, 3600, True)])):
        folder = os.path.join(work, kind, f"d{i // 500}")
        os.makedirs(folder, exist_ok=True)
        tifffile.imwrite(os.path.join(folder, f"f{i % 500}.tif"), data, tile=(256, 256),
                         compression="zlib", extratags=tags)
PY
run() { /usr/bin/time -f "$1: wall %e s, user %U s, peak RSS %M KB" "${@:2}" >/dev/null; }
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$WORK"/*.refs.db*
  run "round $round, windows from the data" "$REFZARR" index -o "$WORK/data.refs.db" "$WORK/data"
  run "round $round, windows from the tags " "$REFZARR" index -o "$WORK/tags.refs.db" "$WORK/tags"
done
"$REFZARR" info "$WORK/data.refs.db" d0/f0.tif | grep "channel 0"
"$REFZARR" info "$WORK/tags.refs.db" d0/f0.tif | grep "channel 0"
