#!/usr/bin/env bash
# The Token Maturation paper's repetition table (spec §4.1) and BrierLM on our models, with the
# exact commands the README quotes. Issue 12 items 4–5.
#
# usage: Scripts/tm_tables.sh TM_DIR BASELINE_DIR CORPUS_DIR OUT_DIR
#   TM_DIR        a Token Maturation model folder (the built-in one, or a train-tm checkpoint)
#   BASELINE_DIR  its discrete baseline (a train-baseline checkpoint with the same tokenizer)
#   CORPUS_DIR    the `calm corpus` output (valid.jsonl: the held-out split)
#   OUT_DIR       where the JSON rows and prompts go
# env: CALM (default .build/release/calm), DICT (default /usr/share/dict/words: apt-get install
#      wamerican), MAX_TOKENS (128), PROMPTS (120), TOKENIZER (default: the built-in model folder),
#      KEEP=1 keeps rows whose JSON already exists in OUT_DIR (to fill in only the missing ones),
#      ROWS (default: all six, in the order below) picks rows by name
set -euo pipefail
TM=$1; BASE=$2; CORPUS=$3; OUT=$4
CALM=${CALM:-.build/release/calm}
DICT=${DICT:-/usr/share/dict/words}
MAX=${MAX_TOKENS:-128}
TOK=${TOKENIZER:-Sources/CALMDefaultModel/DefaultModel}
mkdir -p "$OUT"
python3 Scripts/repetition_prompts.py "$CORPUS/valid.jsonl" --count "${PROMPTS:-120}" > "$OUT/prompts.txt"
common=(--prompts "$OUT/prompts.txt" --tokenizer "$TOK" --max-tokens "$MAX" --dictionary "$DICT" --seed 0 --json)
ROWS=${ROWS:-tm-k16-s1 tm-k16-s2 greedy greedy-rp1.2 sample-t0.5 calm-t0.5}
run() {
  local name=$1; shift
  [[ " $ROWS " == *" $name "* ]] || return 0
  if [[ "${KEEP:-0}" == 1 && -s "$OUT/$name.json" ]]; then echo "== $name: kept" >&2; return 0; fi
  echo "== $name: $CALM eval-repetition $*" >&2; "$CALM" eval-repetition "$@" "${common[@]}" > "$OUT/$name.json.part"
  mv "$OUT/$name.json.part" "$OUT/$name.json"
}
run tm-k16-s1      --model "$TM" --tail 16 --cfg-scale 1
run tm-k16-s2      --model "$TM" --tail 16 --cfg-scale 2
run greedy         --model "$BASE" --temperature 0
run greedy-rp1.2   --model "$BASE" --temperature 0 --repetition-penalty 1.2
run sample-t0.5    --model "$BASE" --temperature 0.5
run calm-t0.5      --family calm --temperature 0.5
python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows = [r for r in ["tm-k16-s1", "tm-k16-s2", "greedy", "greedy-rp1.2", "sample-t0.5", "calm-t0.5"] if (out / f"{r}.json").exists()]
print("| row | Dist-1 | Dist-2 | Rep-2 | Rep-3 | Loop % | real words % | tokens |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    j = json.loads((out / f"{r}.json").read_text())
    f = lambda k: "n/a" if j.get(k) is None else f"{j[k]:.3f}"
    print(f"| {r} | {f('dist_1')} | {f('dist_2')} | {f('rep_2')} | {f('rep_3')} | {j['loop_percent']:.1f} | {j.get('real_word_percent', 0):.1f} | {j['tokens']} |")
PY
