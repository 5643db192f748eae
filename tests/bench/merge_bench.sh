#!/bin/bash
# Merging shard indexes: SHARDS folders of PER_SHARD hard links to one 1024 x 1024 uint16 TIFF of
# 64 x 64 deflate tiles (256 chunk references a file), each folder indexed into its own shard
# index, then `refzarr merge` of all shards, timed ROUNDS times (default 3). Prints wall time, peak
# RSS, references/s and files/s of each merge.
# Usage: tests/bench/merge_bench.sh REFZARR_BIN [WORK_DIR] [SHARDS] [PER_SHARD]
# Needs: /usr/bin/python3 with numpy and tifffile.
set -euo pipefail
REFZARR=${1:?refzarr binary}
WORK=${2:-/tmp/refzarr-merge-bench}
SHARDS=${3:-16}
PER_SHARD=${4:-1250}
ROUNDS=${ROUNDS:-3}
rm -rf "$WORK" && mkdir -p "$WORK/src"
/usr/bin/python3 - "$WORK" "$SHARDS" "$PER_SHARD" <<'PY'
import os, sys, numpy as np, tifffile
work, shards, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
one = os.path.join(work, "one.tif")
tifffile.imwrite(one, np.zeros((1024, 1024), np.uint16), tile=(64, 64), compression="zlib")
for k in range(shards):
    folder = os.path.join(work, "src", f"shard{k:02d}")
    for i in range(per):
        sub = os.path.join(folder, f"d{i // 500}")
        os.makedirs(sub, exist_ok=True)
        os.link(one, os.path.join(sub, f"f{i}.tif"))
PY
# Each shard with the archive as its root, so its folder keeps its name in the tree
# (shardNN/dM/fI.tif) and the shards are placed alike, as merge expects.
start=$(date +%s%N)
for k in $(seq -f %02g 0 $((SHARDS - 1))); do
  "$REFZARR" index -o "$WORK/shard$k.refs.db" --root "$WORK/src" "$WORK/src/shard$k" >/dev/null
done
echo "indexed $SHARDS shards in $(( ($(date +%s%N) - start) / 1000000 )) ms"
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$WORK/merged.refs.db"
  /usr/bin/time -o "$WORK/time.txt" -f "%e %M" \
    "$REFZARR" merge -o "$WORK/merged.refs.db" "$WORK"/shard*.refs.db >/dev/null
  read -r wall rss <"$WORK/time.txt"
  refs=$("$REFZARR" info --json "$WORK/merged.refs.db" | /usr/bin/python3 -c \
    'import json,sys; j=json.load(sys.stdin); print(j["chunk_references"], j["sources"])')
  read -r nrefs nfiles <<<"$refs"
  /usr/bin/python3 -c "import sys; w=max(float(sys.argv[1]),1e-3); print(f'round $round: merge $SHARDS shards, {int(sys.argv[3])} files, {int(sys.argv[2])} references: wall {w} s, {int(sys.argv[2])/w:,.0f} references/s, {int(sys.argv[3])/w:,.0f} files/s, peak RSS $rss KB')" "$wall" "$nrefs" "$nfiles"
done
echo "merged index: $(stat -c %s "$WORK/merged.refs.db") bytes; shards: $(du -cb "$WORK"/shard*.refs.db | tail -1 | cut -f1) bytes"
