#!/usr/bin/env bash
# Runs the engine tests under ThreadSanitizer and the tensor/tokenizer tests (the file parsers)
# under AddressSanitizer, each from its own build folder so the normal build stays as it is.
# Any sanitizer report fails the run: the sanitizers make the test process exit non-zero.
# Usage: Scripts/sanitizers.sh [thread|address|all]   (default all)
set -uo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
logs="${TMPDIR:-/tmp}/calm-sanitizers"
mkdir -p "$logs"

# run NAME SANITIZER FILTER: builds with the sanitizer and runs the filtered tests, logging both.
run() {
  local name=$1 sanitizer=$2 filter=$3
  echo "== $name: $filter"
  local start=$SECONDS
  if ! swift build --build-tests --sanitize="$sanitizer" --build-path ".build/$sanitizer" >"$logs/$name-build.log" 2>&1; then
    tail -40 "$logs/$name-build.log"; echo "$name: build failed"; return 1
  fi
  echo "   built in $((SECONDS - start)) s"
  start=$SECONDS
  swift test --skip-build --sanitize="$sanitizer" --build-path ".build/$sanitizer" --filter "$filter" >"$logs/$name-test.log" 2>&1
  local rc=$?
  local reports
  reports=$(grep -c "^WARNING: ThreadSanitizer\|^==[0-9]*==ERROR: AddressSanitizer\|^SUMMARY: .*Sanitizer" "$logs/$name-test.log")
  grep -E "^✔ Test run|^✘ Test run|Executed [0-9]+ tests" "$logs/$name-test.log" | tail -2
  echo "   ran in $((SECONDS - start)) s, exit $rc, sanitizer report lines: $reports (log: $logs/$name-test.log)"
  if [ "$rc" -ne 0 ] || [ "$reports" -ne 0 ]; then
    grep -B2 -A40 "^WARNING: ThreadSanitizer\|ERROR: AddressSanitizer\|✘" "$logs/$name-test.log" | head -200
    echo "$name: FAILED"
    return 1
  fi
}

status=0
if [ "$which" = thread ] || [ "$which" = all ]; then
  # No suppressions: the engine's locks are pthread mutexes (Sources/CALMEngine/Locked.swift).
  TSAN_OPTIONS="halt_on_error=0 exitcode=66" run ThreadSanitizer thread CALMEngineTests || status=1
fi
if [ "$which" = address ] || [ "$which" = all ]; then
  ASAN_OPTIONS="detect_leaks=1 halt_on_error=1" LSAN_OPTIONS="suppressions=$PWD/Scripts/lsan.supp print_suppressions=0" run AddressSanitizer address 'CALMTensorTests|CALMTokenizerTests' || status=1
fi
exit $status
