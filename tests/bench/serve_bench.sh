#!/bin/bash
# GET throughput of `refzarr serve` against nginx serving the same chunks as a plain directory,
# measured side by side with wrk (random pass-through chunk keys, keep-alive).
# Usage: [ROUNDS=3] [THREADS=2] [BASELINE=OLD_REFZARR_BIN] tests/bench/serve_bench.sh REFZARR_BIN \
#          [WORK_DIR] [SECONDS] [CONNECTIONS]
# CHECKSUMS=1: the baseline slot serves the same file indexed with `index --checksums` (verified
# mode, docs/verified.md) with the same binary: "baseline / nginx" is then verified / nginx.
# Each round runs nginx, refzarr (and BASELINE, a previous build, when given) one after the other,
# so a busy machine weighs on all of them alike: read the ratios within a round and their median.
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
PORT_B=${PORT_B:-18403}
BASELINE=${BASELINE:-}
BASE_INDEX=bench.refs.db
if [ "${CHECKSUMS:-0}" = 1 ]; then BASELINE=$REFZARR; BASE_INDEX=bench.verified.db; fi
rm -rf "$WORK" && mkdir -p "$WORK/src" "$WORK/mnt" "$WORK/nginx"

# 4096 x 4096 uint16, uncompressed 256 x 256 tiles: 256 pass-through chunks of 128 KiB.
/usr/bin/python3 - "$WORK/src/bench.tif" <<'PY'
import sys, numpy as np, tifffile
rng = np.random.default_rng(0)
tifffile.imwrite(sys.argv[1], rng.integers(0, 4096, (4096, 4096), dtype=np.uint16), tile=(256, 256))
PY
"$REFZARR" index -o "$WORK/bench.refs.db" "$WORK/src/bench.tif" >/dev/null 2>&1 || true
if [ "${CHECKSUMS:-0}" = 1 ]; then
  "$REFZARR" index --checksums -o "$WORK/bench.verified.db" "$WORK/src/bench.tif" >/dev/null 2>&1 || true
fi
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
BASE_PID=
if [ -n "$BASELINE" ]; then
  "$BASELINE" serve "$WORK/$BASE_INDEX" --port $PORT_B --threads $THREADS 2>/dev/null &
  BASE_PID=$!
fi
trap 'kill $SERVE_PID $NGINX_PID $BASE_PID 2>/dev/null || true' EXIT
sleep 1
first=$(head -1 "$WORK/keys.txt")
cmp <(curl -s "http://127.0.0.1:$PORT_R/$first") <(curl -s "http://127.0.0.1:$PORT_N/$first") \
  || { echo "servers disagree on $first"; exit 1; }
# Warm-up (page cache, the view's caches, the sources' one-time fingerprint check), not counted.
for port in $PORT_N $PORT_R ${BASE_PID:+$PORT_B}; do
  wrk -t2 -c"$CONNS" -d1s -s "$WORK/urls.lua" "http://127.0.0.1:$port" >/dev/null
done

# CPU ticks (user + system) of a server: the process and its children (nginx's workers). On a busy
# machine requests/s swings with the other load; the server's CPU time per request does much less.
cpu_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $total
}
run() {  # name port pid -> prints a line, leaves req/s in $WORK/<name>.rps
  local before after
  before=$(cpu_ticks "$3")
  wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" -s "$WORK/urls.lua" "http://127.0.0.1:$2" > "$WORK/$1.wrk"
  after=$(cpu_ticks "$3")
  awk '/Requests\/sec/ {print $2}' "$WORK/$1.wrk" > "$WORK/$1.rps"
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/requests in/ {printf "%.1f", t / hz * 1e6 / $1}' \
    "$WORK/$1.wrk" > "$WORK/$1.cpu"
  printf "%-8s %10s req/s  %10s/s  latency avg %-8s  server CPU %s us/request\n" "$1" \
    "$(cat "$WORK/$1.rps")" "$(awk '/Transfer\/sec/ {print $2}' "$WORK/$1.wrk")" \
    "$(awk '/Latency/ {print $2}' "$WORK/$1.wrk")" "$(cat "$WORK/$1.cpu")"
}
echo "wrk -t2 -c$CONNS -d${SECONDS_RUN}s: $N chunks of 128 KiB, random keys, $THREADS server threads"
: > "$WORK/ratios"
for round in $(seq "${ROUNDS:-3}"); do
  run nginx $PORT_N $NGINX_PID
  run refzarr $PORT_R $SERVE_PID
  line=$(awk -v r="$(cat "$WORK/refzarr.rps")" -v n="$(cat "$WORK/nginx.rps")" 'BEGIN {printf "%.2f", r / n}')
  extra=""
  if [ -n "$BASE_PID" ]; then
    run baseline $PORT_B $BASE_PID
    extra=$(awk -v b="$(cat "$WORK/baseline.rps")" -v n="$(cat "$WORK/nginx.rps")" \
      'BEGIN {printf "  baseline / nginx = %.2f", b / n}')
  fi
  echo "round $round: refzarr / nginx = $line$extra"
  echo "$line" >> "$WORK/ratios"
done
sort -n "$WORK/ratios" | awk '{a[NR] = $1} END {printf "median refzarr / nginx = %.2f over %d rounds\n", a[int((NR + 1) / 2)], NR}'
