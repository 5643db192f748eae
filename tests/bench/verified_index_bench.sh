#!/bin/bash
# Verified mode's index cost (docs/verified.md): `refzarr index --checksums` against reading the
# same files with `cat FILES >/dev/null`, page cache warm for both, side by side in each round;
# plain `index` beside them for what the checksums add.
# Usage: [ROUNDS=3] [FILES=4] [MIB=256] tests/bench/verified_index_bench.sh REFZARR_BIN [WORK_DIR]
# Needs /usr/bin/python3 with numpy and tifffile, and FILES x MIB MiB in WORK_DIR (and as much
# free memory, so the page cache holds them).
set -euo pipefail
REFZARR=${1:?refzarr binary}
WORK=${2:-/tmp/refzarr-verified-bench}
FILES=${FILES:-4}
MIB=${MIB:-256}
rm -rf "$WORK" && mkdir -p "$WORK/src"
# Uncompressed uint16 tiles of 512 x 512 (512 KiB each): every byte of the file is a chunk.
/usr/bin/python3 - "$WORK/src" "$FILES" "$MIB" <<'PY'
import sys, numpy as np, tifffile
folder, files, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
side = int((mib * 2**20 / 2) ** 0.5) // 512 * 512
rng = np.random.default_rng(0)
plane = rng.integers(0, 65535, (side, side), dtype=np.uint16)
for i in range(files):
    tifffile.imwrite(f"{folder}/f{i}.tif", plane + i, tile=(512, 512))
PY
BYTES=$(cat "$WORK"/src/*.tif | wc -c)
cat "$WORK"/src/*.tif >/dev/null  # warm the page cache
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
echo "$FILES files, $BYTES bytes, $(nproc) cores"
: > "$WORK/ratios"
for round in $(seq "${ROUNDS:-3}"); do
  rm -f "$WORK"/*.db*
  t_cat=$(secs sh -c "cat '$WORK'/src/*.tif >/dev/null")
  t_plain=$(secs "$REFZARR" index -o "$WORK/plain.db" "$WORK/src")
  t_sum=$(secs "$REFZARR" index --checksums -o "$WORK/sum.db" "$WORK/src")
  awk -v b="$BYTES" -v c="$t_cat" -v p="$t_plain" -v s="$t_sum" -v r="$round" 'BEGIN {
    printf "round %d: cat %.2f GB/s (%.2f s)  index %.2f s  index --checksums %.2f GB/s (%.2f s)  checksums / cat = %.2f\n",
      r, b / c / 1e9, c, p, b / s / 1e9, s, c / s }'
  awk -v c="$t_cat" -v s="$t_sum" 'BEGIN { printf "%.3f\n", c / s }' >> "$WORK/ratios"
done
sort -n "$WORK/ratios" | awk '{a[NR] = $1} END {printf "median (index --checksums GB/s) / (cat GB/s) = %.2f over %d rounds\n", a[int((NR + 1) / 2)], NR}'
"$REFZARR" info "$WORK/plain.db" | grep "^chunk references" || true
"$REFZARR" info "$WORK/sum.db" | grep "^chunk references" || true
