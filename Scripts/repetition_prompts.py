#!/usr/bin/env python3
"""Prompts for `calm eval-repetition`: the openings of held-out documents, one a line.

usage: Scripts/repetition_prompts.py VALID.jsonl [--count 120] [--words 10] > prompts.txt

Takes `count` documents spread evenly over the held-out split `calm corpus` writes (valid.jsonl,
one {"text": ...} a line, in corpus order, so every source is represented) and prints the first
`words` whitespace-separated words of each on one line. Standard library only.
"""
import argparse
import json

parser = argparse.ArgumentParser()
parser.add_argument("valid")
parser.add_argument("--count", type=int, default=120)
parser.add_argument("--words", type=int, default=10)
args = parser.parse_args()

docs = []
with open(args.valid, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            text = json.loads(line)["text"]
            words = text.split()
            if len(words) >= args.words:
                docs.append(" ".join(words[: args.words]))
if len(docs) < args.count:
    raise SystemExit(f"{args.valid}: {len(docs)} documents with {args.words} words, fewer than --count {args.count}")
step = len(docs) / args.count
for i in range(args.count):
    print(docs[int(i * step)])
