#!/usr/bin/env bash
# Runs every benchmark on demand (never part of the tests) and keeps the raw output in $OUT.
# Run on a quiet machine: the figures in Docs/Performance.md come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/calm-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
swift build -c release --product calm-bench >/dev/null
swift build -c release --product calm >/dev/null
BENCH=.build/release/calm-bench
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"
$BENCH kernels                                   | tee "$OUT/kernels.txt"
$BENCH decode --steps 20                         | tee "$OUT/decode.txt"
$BENCH serve --shape tiny                        | tee "$OUT/serve-tiny.txt"
$BENCH serve --shape calm-m --concurrency 1,4,16,64 --temperatures 1 --tokens-t1 32 | tee "$OUT/serve-calm-m-t1.txt"
$BENCH serve --shape calm-m --concurrency 1,4,16 --temperatures 0.5 --tokens-tlow 8 | tee "$OUT/serve-calm-m-t05.txt"
$BENCH eval --block-sizes 2048,8192               | tee "$OUT/eval.txt"
if [ -d ../shared/data/wikitext ]; then
  $BENCH tokenizer                               | tee "$OUT/tokenizer.txt"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
echo "raw output in $OUT"
