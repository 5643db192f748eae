#!/bin/bash
# GET throughput of `refzarr serve` against nginx serving the same chunks as a plain directory,
# measured side by side with wrk (random pass-through chunk keys, keep-alive).
# Usage: tests/bench/serve_bench.sh REFZARR_BIN [WORK_DIR] [SECONDS] [CONNECTIONS]
# Needs: wrk, nginx (nginx-light), fuse3 (the plain copy is made with `cp -r` from the mount),
# /usr/bin/python3 with numpy and tifffile.
set -euo pipefail
REFZARR=${1:?refzarr binary}
WORK=${2:-/tmp/refzarr-serve-bench}
SECONDS_RUN=${3:-10}
CONNS=${4:-32}
THREADS=${THREADS:-2}
PORT_R=${PORT_R:-18401}
PORT_N=${PORT_N:-18402}
rm -rf "$WORK" && mkdir -p "$WORK/src" "$WORK/mnt" "$WORK/nginx"

# 4096 x 4096 uint16, uncompressed 256 x 256 tiles: 256 pass-through chunks of 128 KiB.
/usr/bin/python3 - "$WORK/src/bench.tif" <<'PY'
import sys, numpy as np, tifffile
rng = np.random.default_rng(0)
tifffile.imwrite(sys.argv[1], rng.integers(0, 4096, (4096, 4096), dtype=np.uint16), tile=(256, 256))
PY
"$REFZARR" index -o "$WORK/bench.refs.db" "$WORK/src/bench.tif" >/dev/null 2>&1 || true
ARRAY=0/0   # series 0, level 0 of the single indexed file (the root)

# The same chunks as an ordinary directory, copied out through the mount.
"$REFZARR" mount "$WORK/bench.refs.db" "$WORK/mnt" -f 2>/dev/null &
MOUNT_PID=$!
for _ in $(seq 50); do mountpoint -q "$WORK/mnt" && break; sleep 0.1; done
cp -r "$WORK/mnt" "$WORK/plain"
fusermount3 -u "$WORK/mnt"; wait $MOUNT_PID || true

(cd "$WORK/plain" && find "$ARRAY" -type f ! -name '.*' | sort) > "$WORK/keys.txt"
N=$(wc -l < "$WORK/keys.txt")
cat > "$WORK/urls.lua" <<LUA
local keys = {}
for line in io.lines("$WORK/keys.txt") do keys[#keys + 1] = "/" .. line end
math.randomseed(1)
request = function() return wrk.format("GET", keys[math.random(#keys)]) end
LUA

cat > "$WORK/nginx/nginx.conf" <<NGX
daemon off;
worker_processes $THREADS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$PORT_N; root $WORK/plain; }
}
NGX

"$REFZARR" serve "$WORK/bench.refs.db" --port $PORT_R --threads $THREADS 2>/dev/null &
SERVE_PID=$!
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
trap 'kill $SERVE_PID $NGINX_PID 2>/dev/null || true' EXIT
sleep 1
first=$(head -1 "$WORK/keys.txt")
cmp <(curl -s "http://127.0.0.1:$PORT_R/$first") <(curl -s "http://127.0.0.1:$PORT_N/$first") \
  || { echo "servers disagree on $first"; exit 1; }

run() {  # name port -> prints a line, leaves req/s in $WORK/<name>.rps
  wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" -s "$WORK/urls.lua" "http://127.0.0.1:$2" > "$WORK/$1.wrk"
  awk '/Requests\/sec/ {print $2}' "$WORK/$1.wrk" > "$WORK/$1.rps"
  printf "%-8s %10s req/s  %10s/s  latency avg %s\n" "$1" "$(cat "$WORK/$1.rps")" \
    "$(awk '/Transfer\/sec/ {print $2}' "$WORK/$1.wrk")" "$(awk '/Latency/ {print $2}' "$WORK/$1.wrk")"
}
echo "wrk: $N chunks of 128 KiB, random keys, ${SECONDS_RUN}s, $CONNS connections, $THREADS server threads"
for round in 1 2; do
  run nginx $PORT_N
  run refzarr $PORT_R
  awk -v r="$(cat "$WORK/refzarr.rps")" -v n="$(cat "$WORK/nginx.rps")" \
    'BEGIN {printf "round %d: refzarr / nginx = %.2f\n", '"$round"', r / n}'
done
