#!/bin/bash
# Merging shard indexes: an archive of SHARDS x PER_SHARD hard links to one 1024 x 1024 uint16 TIFF
# of 64 x 64 deflate tiles (256 chunk references a file) in folders of 500, indexed as SHARDS tasks
# of `refzarr index --shard K/SHARDS` (one after the other), then `refzarr merge` of all shards,
# timed ROUNDS times (default 3). Prints wall time, peak RSS, references/s and files/s of each
# merge. Run it at two PER_SHARD to see that the merge is linear (same files/s, same peak RSS).
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
for i in range(shards * per):
    sub = os.path.join(work, "src", f"d{i // 500:05d}")
    os.makedirs(sub, exist_ok=True)
    os.link(one, os.path.join(sub, f"f{i}.tif"))
PY
# Every task walks the whole archive and indexes the files of its shard (a hash of the path).
start=$(date +%s%N)
for k in $(seq 1 "$SHARDS"); do
  "$REFZARR" index -o "$WORK/shard$(printf %02d "$k").refs.db" --shard "$k/$SHARDS" "$WORK/src" >/dev/null
done
echo "indexed $SHARDS shards in $(( ($(date +%s%N) - start) / 1000000 )) ms"
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$WORK/merged.refs.db"
  /usr/bin/time -o "$WORK/time.txt" -f "%e %M %U %S" \
    "$REFZARR" merge -o "$WORK/merged.refs.db" "$WORK"/shard*.refs.db >/dev/null
  read -r wall rss user sys <"$WORK/time.txt"
  refs=$("$REFZARR" info --json "$WORK/merged.refs.db" | /usr/bin/python3 -c \
    'import json,sys; j=json.load(sys.stdin); print(j["chunk_references"], j["sources"])')
  read -r nrefs nfiles <<<"$refs"
  /usr/bin/python3 -c "import sys; w=max(float(sys.argv[1]),1e-3); print(f'round $round: merge $SHARDS shards, {int(sys.argv[3])} files, {int(sys.argv[2])} references: wall {w} s, {int(sys.argv[2])/w:,.0f} references/s, {int(sys.argv[3])/w:,.0f} files/s, peak RSS $rss KB, CPU {float(sys.argv[4])+float(sys.argv[5]):.2f} s ({int(sys.argv[3])/max(float(sys.argv[4])+float(sys.argv[5]),1e-3):,.0f} files/s of CPU)')" "$wall" "$nrefs" "$nfiles" "$user" "$sys"
done
echo "merged index: $(stat -c %s "$WORK/merged.refs.db") bytes; shards: $(du -cb "$WORK"/shard*.refs.db | tail -1 | cut -f1) bytes"
