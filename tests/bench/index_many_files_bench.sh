#!/bin/bash
# Indexing an archive of many small files: FILES copies of one 256 x 256 uint16 tiled TIFF in
# folders of 1,000, indexed from scratch, re-indexed unchanged, then `info` (a stat per source) and
# `info --verify` (a fingerprint per source), then ROUNDS (default 3) fresh indexes with scans in
# worker processes and in process, alternating. Prints wall time and peak memory of each.
# Usage: tests/bench/index_many_files_bench.sh REFZARR_BIN [WORK_DIR] [FILES]
# Needs: /usr/bin/python3 with numpy and tifffile.
set -euo pipefail
REFZARR=${1:?refzarr binary}
WORK=${2:-/tmp/refzarr-many-files}
FILES=${3:-20000}
rm -rf "$WORK" && mkdir -p "$WORK/src"
/usr/bin/python3 - "$WORK" "$FILES" <<'PY'
import os, shutil, sys, numpy as np, tifffile
work, files = sys.argv[1], int(sys.argv[2])
one = os.path.join(work, "one.tif")
tifffile.imwrite(one, np.zeros((256, 256), np.uint16), tile=(128, 128))
for i in range(files):
    folder = os.path.join(work, "src", f"d{i // 1000}")
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(one, os.path.join(folder, f"f{i % 1000}.tif"))
PY
db="$WORK/many.refs.db"
run() { /usr/bin/time -f "$1: wall %e s, peak RSS %M KB" "${@:2}" >/dev/null; }
run "index, $FILES new files" "$REFZARR" index -o "$db" "$WORK/src"
run "index again, nothing changed" "$REFZARR" index -o "$db" "$WORK/src"
run "info (stat per source)" "$REFZARR" info "$db"
run "info --verify (fingerprint per source)" "$REFZARR" info "$db" --verify
echo "index size: $(stat -c %s "$db") bytes"
# The cost of crash-isolated scanning: fresh indexes of the same files, scans in worker processes
# (the default) and in process, alternating so both see the same machine.
ROUNDS=${ROUNDS:-3}
for round in $(seq 1 "$ROUNDS"); do
  for mode in isolated in-process; do
    rm -f "$WORK/cmp.refs.db"*
    flag=(); [ "$mode" = in-process ] && flag=(--in-process)
    run "round $round, index $FILES new files, scans $mode" \
      "$REFZARR" index "${flag[@]}" -o "$WORK/cmp.refs.db" "$WORK/src"
  done
done
