#!/bin/bash
# Sharded v3 views on the indexing benchmark BigTIFF (refzarr-make-bench-tiff: PAGES pages of
# 2048 x 2048 uint16 in 256 x 256 deflate tiles, 64 tiles a page; 1,600 pages = 102,400 tiles).
# Measures, side by side in one run:
#   1. objects in the v3 view (refzarr ls -r, keys that are not directories), unsharded and
#      --shards auto;
#   2. `cp -r` of the mounted array (a fresh mount each, page cache of the source warm),
#      unsharded vs sharded;
#   3. a full-array read by zarrita.js 0.7 (tests/e2e/js/read_arrays.mjs: 16 requests in flight)
#      over HTTP from `refzarr serve`, unsharded vs sharded, and from nginx serving the sharded
#      copy of step 2 as files.
# Usage: tests/bench/shard_bench.sh BUILD WORK [PAGES]   (BUILD/tests/e2e/js must hold the npm
# install of tests/e2e/js: run e2e.every_array_zarrita once, or `npm ci` there.)
set -euo pipefail
build=$(realpath "$1"); work=$2; pages=${3:-1600}
src=$(realpath "$(dirname "$0")/../..")
mkdir -p "$work"; work=$(realpath "$work")
tif=$work/bench-$pages.tif; db=$work/bench-$pages.refs.db
[ -f "$tif" ] || "$build/bin/refzarr-make-bench-tiff" "$tif" --pages "$pages" >/dev/null 2>&1
[ -f "$db" ] || "$build/bin/refzarr" index -o "$db" "$tif" >/dev/null
array=0/0  # a one-file index: the root is the file's group
js=$build/tests/e2e/js
[ -d "$js/node_modules/zarrita-0.7" ] || { echo "no zarrita install in $js" >&2; exit 1; }
cp "$src/tests/e2e/js/read_arrays.mjs" "$js/"

count() { "$build/bin/refzarr" ls -r "$db" --zarr-format 3 "$@" | grep -vc '/$'; }
echo "objects in the v3 view: unsharded $(count --shards none), sharded $(count --shards auto)"

copy() {  # copy SHARDS DEST: seconds of cp -r of the mounted array
  local mnt=$work/mnt; mkdir -p "$mnt"; rm -rf "$2"
  "$build/bin/refzarr" mount "$db" "$mnt" --zarr-format 3 --shards "$1" -f 2>"$work/mount.err" &
  local pid=$!
  for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
  local t0=$(date +%s.%N)
  cp -r "$mnt/$array" "$2"
  local t1=$(date +%s.%N)
  fusermount3 -u "$mnt"; wait "$pid" || true
  echo "$t1 - $t0" | bc
}
cat "$tif" >/dev/null
echo "cp -r of the mounted array: unsharded $(copy none "$work/copy-none") s, sharded $(copy auto "$work/copy-auto") s"
echo "copies: $(find "$work/copy-none" -type f | wc -l) files unsharded, $(find "$work/copy-auto" -type f | wc -l) sharded"

read_http() {  # read_http BASE ARRAY: seconds of zarrita reading the whole array
  printf '{"base":"%s","format":3,"arrays":["%s"],"workers":1}' "$1" "$2" >"$work/jobs.json"
  local t0=$(date +%s.%N)
  node "$js/read_arrays.mjs" zarrita-0.7 "$work/jobs.json" >"$work/read.out"
  local t1=$(date +%s.%N)
  grep -q sha256 "$work/read.out" || { cat "$work/read.out" >&2; exit 1; }
  echo "$(echo "$t1 - $t0" | bc) s $(grep -o '"sha256":"[0-9a-f]\{12\}' "$work/read.out" | cut -d'"' -f4)"
}
serve() {  # serve SHARDS: starts refzarr serve, sets port
  "$build/bin/refzarr" serve "$db" --port 0 --zarr-format 3 --shards "$1" 2>"$work/serve.err" &
  server=$!
  for _ in $(seq 100); do port=$(grep -o '127.0.0.1:[0-9]*' "$work/serve.err" | cut -d: -f2) && [ -n "$port" ] && break; sleep 0.1; done
}
serve none; echo "zarrita full read, refzarr serve unsharded: $(read_http "http://127.0.0.1:$port/" "$array")"; kill $server; wait $server || true
serve auto; echo "zarrita full read, refzarr serve sharded:   $(read_http "http://127.0.0.1:$port/" "$array")"; kill $server; wait $server || true
# nginx serving the sharded copy as files (array metadata and shards as cp -r wrote them).
nroot=$work/nginx-root; rm -rf "$nroot"; mkdir -p "$nroot/$(dirname "$array")"
cp -r "$work/copy-auto" "$nroot/$array"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<CONF
daemon off; worker_processes 2; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path $work/nginx-tmp; proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp; uwsgi_temp_path $work/nginx-tmp; scgi_temp_path $work/nginx-tmp;
  server { listen 127.0.0.1:$port; root $nroot; } }
CONF
mkdir -p "$work/nginx-tmp"
nginx -c "$work/nginx.conf" -p "$work" & ngx=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
echo "zarrita full read, nginx serving the sharded copy: $(read_http "http://127.0.0.1:$port/" "$array")"
kill $ngx; wait $ngx || true
