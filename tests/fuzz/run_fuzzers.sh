#!/usr/bin/env bash
# Runs every fuzz target of a REFZARR_FUZZ=ON build for a bounded time (docs/fuzzing.md).
#   run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]
# Each target starts from its regression corpus (tests/fuzz/<name>/) plus what earlier runs in
# BUILD_DIR found (BUILD_DIR/fuzz/corpus/<name>, where new inputs go: the repository's corpus is
# only read). Crashes, leaks, timeouts and OOMs land in BUILD_DIR/fuzz/artifacts/<name>/; the log
# of each run in BUILD_DIR/fuzz/logs/<name>.log. Prints one line per target (executions, edges
# covered, features, corpus size, findings) and exits 1 when any target found something in
# refzarr's code.
#
# libhdf5 1.10 crashes and hangs on some malformed files; refzarr's defence is the crash-isolated
# scan worker (docs/refusals.md), which costs such a file alone. So hdf5_scanner runs in fork mode
# and goes on after a crash, and every finding is triaged by the first stack frame outside the
# sanitizer runtime: in libhdf5 or libtiff it is listed as a system-library finding (not a
# failure; docs/fuzzing.md lists them); anywhere else it is ours and fails the run.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]}"
seconds="${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]}"
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/*_fuzzer.cc; do n="$(basename "$f" _fuzzer.cc)"; targets+=("$n"); done
fi

dict_for() {
  case "$1" in
    hdf5_scanner|hdf5_chunk_index) echo "$here/hdf5.dict" ;;
    *) [ -f "$here/$1.dict" ] && echo "$here/$1.dict" ;;
  esac
}

extra_for() {
  case "$1" in
    hdf5_scanner) echo "-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1" ;;
  esac
}

# "system:<library>" or "ours", from the report of running the binary on the artifact once.
triage() {
  local report frame
  # Full unwinding, so a leak's stack names the library that allocated it.
  report="$(ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="$LSAN_OPTIONS:print_suppressions=1" "$1" -runs=1 -timeout=25 -rss_limit_mb=2048 "$2" 2>&1)"
  frame=$(grep -E '^ *#[0-9]+ 0x' <<<"$report" |
          grep -vE 'libclang_rt|compiler-rt|sanitizer_common|asan_|ubsan_|__interceptor_|libc\.so|libFuzzer|fuzzer::| in (malloc|calloc|realloc|free|operator new)' |
          head -1)
  case "$frame" in
    *libhdf5*) echo "system:libhdf5" ;;
    *libtiff*) echo "system:libtiff" ;;
    "") if grep -q 'ERROR: \|Timeout\|timeout\|out-of-memory' <<<"$report"; then echo "ours"
        elif grep -q 'Suppressions used' <<<"$report"; then echo "system:suppressed"
        else echo "unreproduced"; fi ;;
    *) echo "ours" ;;
  esac
}

# Leak reports: the suppressions of the sanitizer build (tests/sanitize/lsan.supp, each with its
# reason). (hdf5_scanner_fuzzer keeps libhdf5's filter plugins loaded, so it needs none.)
export LSAN_OPTIONS="suppressions=$here/../sanitize/lsan.supp:print_suppressions=0"

status=0
printf '%-18s %12s %10s %8s %8s %8s  %s\n' target executions exec/s edges features corpus found
for name in "${targets[@]}"; do
  bin="$build/bin/${name}_fuzzer"
  if [ ! -x "$bin" ]; then
    echo "run_fuzzers: $bin is missing (build the fuzzers target with REFZARR_FUZZ=ON)" >&2
    exit 2
  fi
  corpus="$build/fuzz/corpus/$name" artifacts="$build/fuzz/artifacts/$name/" log="$build/fuzz/logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dict="$(dict_for "$name")"
  # -timeout: an input that runs 25 s is a hang; -rss_limit_mb: one that needs 2 GiB is an OOM.
  # -max_len: large enough for the seeds (16 KiB and the 4 KiB heads).
  # shellcheck disable=SC2046
  "$bin" $(extra_for "$name") -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts" ${dict:+-dict="$dict"} \
    "$corpus" "$here/$name" >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  execs=${execs:-$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')}
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\(\/[0-9a-zA-Z]*\)\{0,1\}\).*/\1/p' <<<"$last")
  found=""
  ours=0
  for a in "$artifacts"*; do
    [ -f "$a" ] || continue
    kind="$(triage "$bin" "$a" "$name")"
    found+="$(basename "$a"):$kind "
    [[ "$kind" == ours* ]] && ours=1
    # unreproduced: fork mode names an empty input when a job fails at exit (a leak check over
    # the whole job); it is listed, and the job's own findings carry their inputs. suppressed: a
    # leak that tests/sanitize/lsan.supp names (the fuzzing itself unwinds fast, so it cannot).
  done
  if [ $ours -eq 1 ] || { [ $rc -ne 0 ] && [ -z "$found" ]; }; then
    status=1
    found="${found:-exit $rc} (see $log)"
  fi
  printf '%-18s %12s %10s %8s %8s %8s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "${found:-none}"
done
exit $status
