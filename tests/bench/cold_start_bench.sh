#!/usr/bin/env bash
# Cold start of the read path (issue 11): `refzarr cat` of one pass-through chunk as a whole
# process, side by side with `refzarr --version` (the binary's own start-up), `sqlite3 DB 'select 1'`
# and a minimal C program that opens the index with SQLite and reads one row (what any reader of
# the index pays). Prints how many shared objects each maps, then hyperfine's comparison.
# Usage: tests/bench/cold_start_bench.sh [BUILD_DIR] [WORK_DIR]   (needs hyperfine, cc)
# BEFORE=/path/to/an/older/refzarr adds its `cat` to the same hyperfine run, side by side.
set -euo pipefail
build=$(realpath "${1:-build}")
work=${2:-/tmp/refzarr-cold-start-bench}
refzarr="$build/bin/refzarr"
mkdir -p "$work"
[ -d "$work/samples" ] || "$build/bin/refzarr-samples" "$work/samples" -q
db="$work/samples.refs.db"
[ -f "$db" ] || "$refzarr" index -o "$db" "$work/samples" >/dev/null 2>&1 || true
key=tiled/u16_edge_tiles_deflate.tif/0/0/0/0/0/0/0      # zlib in the TIFF and in the view
cat >"$work/sqlite_reader.c" <<'C'
#include <sqlite3.h>
#include <stdio.h>
int main(int argc, char** argv) {
  sqlite3* db; sqlite3_stmt* st;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return 1;
  if (sqlite3_prepare_v2(db, "select name from sqlite_master limit 1", -1, &st, NULL)) return 1;
  if (sqlite3_step(st) == SQLITE_ROW) printf("%s\n", sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return sqlite3_close(db);
}
C
cc -O2 -o "$work/sqlite_reader" "$work/sqlite_reader.c" -lsqlite3

echo "== shared objects mapped (LD_DEBUG=files)"
count() { LD_DEBUG=files "$@" 2>&1 >/dev/null | grep -c 'generating link map' || true; }
printf '%4s  refzarr cat (pass-through chunk)\n' "$(count "$refzarr" cat "$db" "$key")"
printf '%4s  refzarr --version\n' "$(count "$refzarr" --version)"
printf '%4s  sqlite3 DB "select 1"\n' "$(count sqlite3 "$db" 'select 1')"
printf '%4s  minimal SQLite reader (C)\n' "$(count "$work/sqlite_reader" "$db")"

echo "== wall time (hyperfine, no shell)"
before=()
[ -n "${BEFORE:-}" ] && before=(-n "refzarr cat (BEFORE)" "$BEFORE cat $db $key")
hyperfine -N --warmup 10 --runs "${RUNS:-200}" "${before[@]}" \
  -n "refzarr cat" "$refzarr cat $db $key" \
  -n "refzarr --version" "$refzarr --version" \
  -n "sqlite3 select 1" "sqlite3 $db 'select 1'" \
  -n "sqlite reader (C)" "$work/sqlite_reader $db"
