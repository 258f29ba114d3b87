#!/usr/bin/env bash
# bench-memory.sh — peak RSS of `recoverydesk once` (Maildir in, file
# transport out, no servers) over (1) a backlog of BENCH_MESSAGES (2000)
# requests of about 1 KB and (2) thirty requests of about 9.4 MB each
# (a pasted attachment, under the 10 MiB max_message_bytes). Prints
# figures; asserts nothing. BENCH_BEFORE_BIN=PATH measures that binary on
# the same input in the same run as well. BENCH_RUNS (2) runs each.
# BENCH_BIN=PATH measures that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
N=${BENCH_MESSAGES:-2000}
RUNS=${BENCH_RUNS:-2}
say() { echo "bench: $*" >&2; }
if [[ -z ${BENCH_BIN:-} ]]; then
  say "building (release)"
  cargo build --release --locked --quiet --bin recoverydesk
fi
bin=${BENCH_BIN:-$root/target/release/recoverydesk}
work=$(mktemp -d /tmp/rd-bench-memory.XXXXXX)
trap 'rm -rf "$work"' EXIT

request() { # $1 = number, $2 = extra body bytes
  printf 'From: Requester %s <r%s@example.org>\r\nTo: support@pypi.example\r\nSubject: Lost my 2FA device\r\nMessage-ID: <mem-%s@example.org>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nUsername: user%s\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\n' "$1" "$1" "$1" "$1"
  if (($2 > 0)); then
    # Base64-looking lines, as a pasted attachment would be.
    head -c $(($2 * 3 / 4)) /dev/urandom | base64 -w 76 | sed 's/$/\r/'
  fi
}

make_desk() { # $1 = folder, $2 = count, $3 = extra bytes each
  mkdir -p "$1/inbox/new" "$1/inbox/cur" "$1/inbox/tmp"
  echo "memory-bench-key-0123456789abcdef" >"$1/secret.key"
  : >"$1/accounts.toml"
  sed -e 's|^path = "mail/inbox"|path = "inbox"|' config/demo.toml >"$1/config.toml"
  for i in $(seq 1 "$2"); do request "$i" "$3" >"$1/inbox/new/$i.mem"; done
}

peak() { # $1 = binary, $2 = desk; prints "N handled, peak RSS M MiB"
  local out
  /usr/bin/time -f %M -o "$2/rss" "$1" --config "$2/config.toml" once >"$2/once.out" 2>"$2/once.err" || true
  out=$(sed -nE 's/^handled ([0-9]+) .*/\1/p' "$2/once.out")
  awk -v n="${out:-0}" -v k="$(tail -1 "$2/rss")" 'BEGIN { printf "%d handled, peak RSS %.0f MiB\n", n, k / 1024 }'
}

say "writing the inputs"
make_desk "$work/small" "$N" 0
make_desk "$work/large" 30 9800000
largest=$(ls -l "$work/large/inbox/new" | awk 'NR > 1 { if ($5 > m) m = $5 } END { printf "%.1f", m / 1048576 }')
for run in $(seq 1 "$RUNS"); do
  for input in small large; do
    rm -rf "$work/$input.run" && cp -a "$work/$input" "$work/$input.run"
    echo "run $run: ($input) after: $(peak "$bin" "$work/$input.run")"
    if [[ -n ${BENCH_BEFORE_BIN:-} ]]; then
      rm -rf "$work/$input.run" && cp -a "$work/$input" "$work/$input.run"
      echo "run $run: ($input) before: $(peak "$BENCH_BEFORE_BIN" "$work/$input.run")"
    fi
  done
done
echo "== bench-memory: small = $N requests of about 1 KB; large = 30 requests, the largest $largest MiB; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
