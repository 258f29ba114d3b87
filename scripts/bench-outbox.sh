#!/usr/bin/env bash
# bench-outbox.sh — outbox drain rate against Postfix on loopback, measured
# in the same run as a bare lettre sender (examples/bare_send.rs) to the
# same relay. Prints figures; asserts nothing.
#
#   scripts/bench-outbox.sh
#
# What it does:
#   1. uses the mail stack in MAILSTACK_DIR (default /tmp/rd-bench; started
#      if it is not running, on the MAILSTACK_* ports from the environment);
#   2. builds one desk: BENCH_MESSAGES (2000) complete requests in a Maildir,
#      handled by `recoverydesk once` with the relay pointed at a closed
#      port, so every acknowledgement stays queued; copies it per run;
#   3. BENCH_RUNS (2) times, interleaved: the bare sender sends as many
#      messages of a reply's size, (a0) over lettre's transport as it comes
#      (only with BENCH_A0=1: it is slow) and (a) over one lettre connection
#      with TCP_NODELAY; (b) `once` on a
#      fresh copy of the desk, now pointed at Postfix, drains the queue
#      (RECOVERYDESK_NOW two hours on, past any backoff). With
#      BENCH_BEFORE_BIN set, (b0) that binary drains its own copy as well.
#   4. prints msgs/s for each and the ratio b/a per run.
#
# BENCH_BIN / BENCH_BARE_BIN name prebuilt binaries (then nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
N=${BENCH_MESSAGES:-2000}
RUNS=${BENCH_RUNS:-2}
DIR=${MAILSTACK_DIR:-/tmp/rd-bench}
say() { echo "bench: $*" >&2; }

if ! scripts/mailstack.sh status "$DIR" >/dev/null 2>&1; then
  say "starting a mail stack in $DIR"
  scripts/mailstack.sh up "$DIR" >&2
fi
while IFS='=' read -r key value; do
  [[ $key =~ ^MAILSTACK_[A-Z_]+$ ]] && printf -v "$key" '%s' "$value"
done <"$DIR/mailstack.env"
HOST=$MAILSTACK_HOST
SMTP_PORT=$MAILSTACK_SMTP_PORT

if [[ -z ${BENCH_BIN:-} || -z ${BENCH_BARE_BIN:-} ]]; then
  say "building (release)"
  cargo build --release --locked --quiet --bin recoverydesk --example bare_send
fi
bin=${BENCH_BIN:-$root/target/release/recoverydesk}
bare=${BENCH_BARE_BIN:-$root/target/release/examples/bare_send}

work=$(mktemp -d /tmp/rd-bench-outbox.XXXXXX)
trap 'rm -rf "$work"' EXIT
desk=$work/desk
mkdir -p "$desk/inbox/new" "$desk/inbox/cur" "$desk/inbox/tmp"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$desk/secret.key"
: >"$desk/accounts.toml"
config() { # $1 = SMTP port
  cat <<TOML
[instance]
id = "rd-bench-outbox"
support_address = "support@mailstack.test"
support_name = "Bench Support"
secret_key = { file = "secret.key" }

[store]
path = "store"

[source]
kind = "maildir"
batch_size = 100

[source.maildir]
path = "inbox"

[transport]
kind = "smtp"

[transport.smtp]
host = "$HOST"
port = $1
tls = "plain"
allow_plaintext = true
timeout = "10s"

[directory]
kind = "file"
path = "accounts.toml"

[staff]
addresses = ["admin@staff.test"]
notify = []
trusted_authserv_ids = ["mx.staff.test"]
TOML
}
say "writing $N requests"
for i in $(seq 1 "$N"); do
  printf 'From: Requester %s <alice+r%s@mailstack.test>\r\nTo: support@mailstack.test\r\nSubject: Lost my 2FA device\r\nMessage-ID: <bench-%s@example.test>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\nUsername: user%s\r\nI lost my phone with the authenticator app.\r\nI still have access to the email address on the account.\r\nI agree to the Code of Conduct and understand this may take a while.\r\n' \
    "$i" "$i" "$i" "$i" >"$desk/inbox/new/$i.bench"
done
# Port 9 (discard) is closed on loopback: everything stays queued.
config 9 >"$desk/config.toml"
say "queueing (relay unreachable)"
"$bin" --config "$desk/config.toml" once >"$work/queue.out" 2>"$work/queue.err" || true
head -1 "$work/queue.out" >&2
config "$SMTP_PORT" >"$desk/config.toml"
later=$(( $(date +%s) + 7200 ))

drain() { # $1 = binary, $2 = desk copy; prints msgs/s
  local start end sent
  start=$(date +%s.%N)
  RECOVERYDESK_NOW=$later "$1" --config "$2/config.toml" once >"$2/drain.out" 2>"$2/drain.err" || true
  end=$(date +%s.%N)
  sent=$(sed -nE 's/.*sent ([0-9]+),.*/\1/p' "$2/drain.out")
  awk -v n="${sent:-0}" -v s="$start" -v e="$end" 'BEGIN { printf "%d sent in %.2f s: %.0f msgs/s\n", n, e - s, n / (e - s) }'
}

for run in $(seq 1 "$RUNS"); do
  cp -a "$desk" "$work/run$run"
  [[ -n ${BENCH_BEFORE_BIN:-} ]] && cp -a "$desk" "$work/before$run"
  sleep 3 # let Postfix hand the previous run's mail on
  # lettre's own transport without TCP_NODELAY takes about 100 s for
  # 2,000 messages and is no baseline for the ratio: only on request.
  a0="(not run; BENCH_A0=1 runs it)"
  [[ ${BENCH_A0:-0} == 1 ]] && a0=$("$bare" transport "$HOST" "$SMTP_PORT" "$N" alice mailstack.test)
  a=$("$bare" nodelay "$HOST" "$SMTP_PORT" "$N" alice mailstack.test)
  b=$(drain "$bin" "$work/run$run")
  b0=""
  [[ -n ${BENCH_BEFORE_BIN:-} ]] && b0=$(drain "$BENCH_BEFORE_BIN" "$work/before$run")
  ra=$(echo "$a" | sed -E 's/.*: ([0-9]+) msgs\/s.*/\1/')
  rb=$(echo "$b" | sed -E 's/.*: ([0-9]+) msgs\/s.*/\1/')
  echo "run $run: (a0) bare lettre transport as it comes (no TCP_NODELAY): $a0"
  echo "run $run: (a) bare lettre connection with TCP_NODELAY: $a"
  echo "run $run: (b) recoverydesk once drains the outbox: $b; b/a = $(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.2f", b / a }')"
  if [[ -n $b0 ]]; then
    rb0=$(echo "$b0" | sed -E 's/.*: ([0-9]+) msgs\/s.*/\1/')
    echo "run $run: (b0) before ($BENCH_BEFORE_BIN): $b0; b0/a = $(awk -v a="$ra" -v b="$rb0" 'BEGIN { printf "%.2f", b / a }')"
  fi
done
echo "== bench-outbox: $N replies, Postfix on $HOST:$SMTP_PORT, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
