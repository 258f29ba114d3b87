#!/usr/bin/env bash
# Pipeline throughput and peak memory on the real-world corpus, against a
# baseline measured in the same run: parsing alone (mail-parser + our owned
# Inbound) over the same messages. Prints figures; asserts nothing.
#
#   scripts/bench-replay.sh [CORPUS_DIR]     (default ../shared/corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-../shared/corpus}"
[ -d "$corpus" ] || { echo "no corpus at $corpus"; exit 0; }
cargo build --release --locked --quiet
bin=target/release/recoverydesk
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

measure() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "%M" -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; return 1; }
  local line rate
  line=$(grep -E "^(replayed|parsed) " "$tmp/err" | tail -1)
  rate=$(echo "$line" | sed -E 's/.*\(([0-9]+) msgs\/s.*/\1/')
  echo "$label|$rate|$(cat "$tmp/rss")|$line"
}

echo "corpus: $corpus ($(find "$corpus" -type f | wc -l) files)"
base=$(measure baseline "$bin" replay --parse-only "$corpus")
full=$(measure pipeline "$bin" replay "$corpus")
b_rate=$(echo "$base" | cut -d'|' -f2); f_rate=$(echo "$full" | cut -d'|' -f2)
echo "baseline (parse only): $(echo "$base" | cut -d'|' -f4)"
echo "pipeline (replay):     $(echo "$full" | cut -d'|' -f4)"
echo "peak RSS: baseline $(echo "$base" | cut -d'|' -f3) KiB, pipeline $(echo "$full" | cut -d'|' -f3) KiB"
awk -v f="$f_rate" -v b="$b_rate" 'BEGIN { printf "pipeline/baseline throughput ratio: %.3f\n", f / b }'
