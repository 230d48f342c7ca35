#!/usr/bin/env bash
# Builds the libFuzzer harnesses of Fuzz/ (AddressSanitizer + libFuzzer, release) and runs each one
# for SECONDS on a scratch copy of its seed corpus, Fuzz/Corpus/<harness>/ (the repository is never
# written). One line per harness: executions, seconds, result. Exits non-zero when any harness
# crashed, timed out, ran out of memory or could not start; the input that did it is kept and its
# path printed (under Fuzz/.build/fuzz-runs/, or $CALM_FUZZ_OUT).
#
#   Scripts/fuzz.sh [SECONDS] [HARNESS...]   run every harness (or the ones named), 60 s each by default
#   Scripts/fuzz.sh --build                  only build
#   Scripts/fuzz.sh --seeds                  rewrite Fuzz/Corpus/*/ from the seed writers in the harnesses
#   Scripts/fuzz.sh --list                   the harness names
#
# Reproducing a crash: Fuzz/.build/release/fuzz-<harness> <crash file>  (after a build; the
# llama3-encode harness needs ../shared or $CALM_SHARED, as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

HARNESSES=(safetensors sharded-index torch-bin torch-pickle config tokenizer-json tokenizer-config tiktoken
           llama3-encode request http)

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH=/opt/swift/usr/bin:$PATH; fi

# One `-sanitize=` flag wins in swiftc (the last), so SwiftPM's two --sanitize flags alone would
# leave Swift code without coverage; the combined -Xswiftc flag comes after them. --sanitize=fuzzer
# keeps SwiftPM from renaming the executables' (absent) `main`; the C kernels get coverage too.
# SwiftPM writes the two sanitizers in hash order, which changes from run to run (and with it the
# build description, so everything would rebuild): deterministic hashing keeps one order.
BUILD=(env SWIFT_DETERMINISTIC_HASHING=1 swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address
       -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)

build() {
  echo "building the fuzz harnesses (swift build --package-path Fuzz -c release, ASan + libFuzzer)..." >&2
  local start=$SECONDS rc=0
  mkdir -p Fuzz/.build
  "${BUILD[@]}" >Fuzz/.build/fuzz-build.log 2>&1 || rc=$?
  # (the linker's one warning about an ASan symbol is expected)
  grep -E "error|warning: " Fuzz/.build/fuzz-build.log | grep -v "__asan_extra_spill_area" >&2 || true
  [ "$rc" -eq 0 ] || { tail -20 Fuzz/.build/fuzz-build.log >&2; echo "fuzz build failed (Fuzz/.build/fuzz-build.log)" >&2; exit 1; }
  echo "built in $((SECONDS - start)) s" >&2
  BIN=$("${BUILD[@]}" --show-bin-path)
}

dictionary() {
  case "$1" in
    safetensors|sharded-index|config|tokenizer-json|tokenizer-config) echo "-dict=$ROOT/Fuzz/Dictionaries/json.dict" ;;
    torch-bin|torch-pickle) echo "-dict=$ROOT/Fuzz/Dictionaries/pickle.dict" ;;
    http) echo "-dict=$ROOT/Fuzz/Dictionaries/http.dict" ;;
  esac
}

max_len() {
  case "$1" in
    tokenizer-json|tiktoken) echo 32768 ;;
    *) echo 8192 ;;
  esac
}

case "${1:-}" in
  --list) printf '%s\n' "${HARNESSES[@]}"; exit 0 ;;
  --build) build; exit 0 ;;
  --seeds)
    build
    for h in "${HARNESSES[@]}"; do
      rm -rf "Fuzz/Corpus/$h"
      CALM_FUZZ_WRITE_SEEDS="$ROOT/Fuzz/Corpus/$h" ASAN_OPTIONS=detect_leaks=0 "$BIN/fuzz-$h"
    done
    exit 0 ;;
esac

SECONDS_EACH=${1:-60}
shift || true
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "usage: Scripts/fuzz.sh [SECONDS] [HARNESS...] | --build | --seeds | --list" >&2; exit 2; }
if [ $# -gt 0 ]; then SELECTED=("$@"); else SELECTED=("${HARNESSES[@]}"); fi

build
OUT=${CALM_FUZZ_OUT:-$ROOT/Fuzz/.build/fuzz-runs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
# Parsers that only read files get one per input: in memory when /dev/shm is there.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then SCRATCH=$(mktemp -d /dev/shm/calm-fuzz.XXXXXX); else SCRATCH=$(mktemp -d "$OUT/scratch.XXXXXX"); fi
trap 'rm -rf "$SCRATCH"' EXIT

failed=0
total_start=$SECONDS
printf '%-17s %12s %6s  %s\n' harness runs secs result
for h in "${SELECTED[@]}"; do
  [ -x "$BIN/fuzz-$h" ] || { printf '%-17s %12s %6s  %s\n' "$h" - - "FAILED: no such harness"; failed=1; continue; }
  dir="$OUT/$h"
  mkdir -p "$dir/corpus"
  cp -R "Fuzz/Corpus/$h/." "$dir/corpus/"
  start=$SECONDS
  rc=0
  # libFuzzer: -timeout per input, -rss_limit_mb for the process (and, by default, the largest
  # single allocation); `timeout` only guards against a hang of libFuzzer itself.
  # The Swift runtime's own crash handler (swift-backtrace) trips ASan and can outlive the process:
  # off, so that libFuzzer reports a trap with its stack and keeps the input.
  SWIFT_BACKTRACE=enable=no CALM_FUZZ_SCRATCH=$SCRATCH ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/Fuzz/lsan.supp:print_suppressions=0} \
    timeout --kill-after=30 $((SECONDS_EACH + 300)) \
    "$BIN/fuzz-$h" -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=3072 -max_len="$(max_len "$h")" \
      $(dictionary "$h") -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  secs=$((SECONDS - start))
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$dir/log" | grep -oE '[0-9]+$' | tail -1 || true)
  [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$dir/log" | tail -1 | tr -d '#' || true)
  artifact=$(grep -oE "Test unit written to .*" "$dir/log" | tail -1 | sed 's/Test unit written to //' || true)
  if [ "$rc" -eq 0 ]; then
    result="ok (corpus $(ls "$dir/corpus" | wc -l) inputs)"
  else
    failed=1
    reason=$(grep -m1 -oE "==FUZZ FAILURE== .*|ERROR: libFuzzer: [a-z -]*[a-z]( \(.*\))?|ERROR: (Address|Leak)Sanitizer: [a-zA-Z -]*[a-z]|Fatal error: .*|fuzz-$h: (the|cannot) .*" "$dir/log" || true)
    trap_kind=$(grep -m1 -oE "Swift runtime failure: [^/]*[^/ ]" "$dir/log" || true)
    [ -z "$trap_kind" ] || reason="$reason ($trap_kind)"
    result="FAILED (exit $rc): ${reason:-see log}${artifact:+ — input: $artifact} — log: $dir/log"
  fi
  printf '%-17s %12s %6s  %s\n' "$h" "${runs:-?}" "$secs" "$result"
done
echo "total $((SECONDS - total_start)) s of fuzzing; logs and corpora in $OUT"
exit $failed
