#!/bin/bash
# Read throughput through `refzarr mount` against the same chunks as a plain directory, cold, warm
# and first-read; see mount_bench.py for what each figure means.
# Usage: tests/bench/mount_bench.sh REFZARR_BIN [WORK_DIR] [ROUNDS]
# Needs: fuse3, /usr/bin/python3 with numpy and tifffile.
set -euo pipefail
REFZARR=$(realpath "${1:?refzarr binary}")
WORK=${2:-/tmp/refzarr-mount-bench}
exec /usr/bin/python3 "$(dirname "$0")/mount_bench.py" "$REFZARR" "$WORK" "${3:-2}"
