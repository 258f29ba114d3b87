#!/usr/bin/env bash
# bench-ingest.sh — IMAP ingest against a real Dovecot, measured in one run
# against the physical limit, plus arrival → acknowledgement latency with
# IDLE. Prints figures; asserts nothing.
#
#   scripts/bench-ingest.sh
#
# What it does:
#   1. starts a mail stack of its own (scripts/mailstack.sh, in
#      BENCH_MAILSTACK_DIR, default /tmp/rd-bench, on ports 22525/24143/...
#      so that tests on the default stack neither disturb nor are disturbed)
#      and stops it at the end if it started it;
#   2. delivers BENCH_MESSAGES (2000) realistic ~3 KB requests (form-style,
#      prose, replies) over one SMTP connection into a fresh user's INBOX;
#   3. (a) a bare IMAP client on the same async-imap + tokio + native-tls
#      stack (examples/imap_fetch.rs) fetches them all, 100 per UID FETCH
#      (median of 3 runs);
#   4. (b0) the floor (examples/ingest_floor.rs): the worker's own source
#      and store, but each message is only parsed and its raw bytes kept,
#      the whole batch in one sled transaction (cursor last) made durable
#      by one fsync'd flush, then marked: what any durable worker must do
#      before marking, with no reading, case or reply;
#      (b) `recoverydesk once` (release build, file transport) handles them
#      all: msgs/s over the whole process, and per stage from its log;
#      ratio b/a; (d) its peak RSS (/usr/bin/time -f %M);
#   5. (c) `recoverydesk run` with IDLE and the SMTP transport through
#      Postfix: BENCH_LATENCY_MESSAGES (200) single requests, each timed from
#      the SMTP send to its acknowledgement appearing in the requester's
#      mailbox (polled over IMAP every 10 ms): p50/p99.
#
# Environment: BENCH_MESSAGES, BENCH_LATENCY_MESSAGES, BENCH_MAILSTACK_DIR,
# BENCH_BEFORE_FLOOR=PATH (an earlier ingest_floor, run on the same mail),
# BENCH_BIN_DIR=DIR (prebuilt recoverydesk, imap_fetch and ingest_floor:
# nothing is built),
# BENCH_TLS=plain|implicit (IMAP for (a) and (b); default plain),
# BENCH_KEEP=1 keeps the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

N=${BENCH_MESSAGES:-2000}
LAT_N=${BENCH_LATENCY_MESSAGES:-200}
DIR=${BENCH_MAILSTACK_DIR:-/tmp/rd-bench}
TLS_MODE=${BENCH_TLS:-plain}
export MAILSTACK_SMTP_PORT=${MAILSTACK_SMTP_PORT:-22525}
export MAILSTACK_SMTPS_PORT=${MAILSTACK_SMTPS_PORT:-22465}
export MAILSTACK_IMAP_PORT=${MAILSTACK_IMAP_PORT:-24143}
export MAILSTACK_IMAPS_PORT=${MAILSTACK_IMAPS_PORT:-24993}
export MAILSTACK_LMTP_PORT=${MAILSTACK_LMTP_PORT:-24024}

say() { echo "bench: $*" >&2; }

work=$(mktemp -d /tmp/rd-bench-work.XXXXXX)
started_stack=""
run_pid=""
cleanup() {
  if [[ -n $run_pid ]] && kill -0 "$run_pid" 2>/dev/null; then
    kill -TERM "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  if [[ -n $started_stack ]]; then scripts/mailstack.sh down "$DIR" >/dev/null 2>&1 || true; fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- stack and build -----------------------------------------------------------

if ! scripts/mailstack.sh status "$DIR" >/dev/null 2>&1; then
  say "starting a mail stack in $DIR"
  scripts/mailstack.sh up "$DIR" >&2
  started_stack=1
fi
# KEY=VALUE lines; values may hold spaces, so read rather than source.
while IFS='=' read -r key value; do
  [[ $key =~ ^MAILSTACK_[A-Z_]+$ ]] && printf -v "$key" '%s' "$value"
done <"$DIR/mailstack.env"
HOST=$MAILSTACK_HOST
SMTP_PORT=$MAILSTACK_SMTP_PORT
case $TLS_MODE in
  plain) IMAP_PORT=$MAILSTACK_IMAP_PORT ;;
  implicit) IMAP_PORT=$MAILSTACK_IMAPS_PORT ;;
  *) say "BENCH_TLS must be plain or implicit"; exit 2 ;;
esac

if [[ -n ${BENCH_BIN_DIR:-} ]]; then
  bin=$BENCH_BIN_DIR/recoverydesk fetcher=$BENCH_BIN_DIR/imap_fetch floor=$BENCH_BIN_DIR/ingest_floor
else
  say "building (release)"
  cargo build --release --locked --quiet --bin recoverydesk --example imap_fetch --example ingest_floor
  bin=$root/target/release/recoverydesk
  fetcher=$root/target/release/examples/imap_fetch
  floor=$root/target/release/examples/ingest_floor
fi

stamp=$(date +%s)-$$
LOAD_USER=bench-load-$stamp
LAT_SUPPORT=bench-lat-$stamp
LAT_REQ=bench-req-$stamp
USERS=("$LOAD_USER" "$LAT_SUPPORT" "$LAT_REQ")

# mailstack.sh rewrites the passwd-file on every `up`/`start-*`; put our
# users (back) before each phase. Dovecot re-reads the file by itself.
ensure_users() {
  local u
  for u in "${USERS[@]}"; do
    grep -q "^$u:" "$MAILSTACK_USERS_FILE" || echo "$u:{PLAIN}$MAILSTACK_PASSWORD::::::" >>"$MAILSTACK_USERS_FILE"
  done
}
ensure_users

# --- the load --------------------------------------------------------------------

export BENCH_HOST=$HOST BENCH_SMTP_PORT=$SMTP_PORT BENCH_IMAP_PORT=$MAILSTACK_IMAP_PORT
export BENCH_PASSWORD=$MAILSTACK_PASSWORD BENCH_N=$N BENCH_LOAD_USER=$LOAD_USER
export BENCH_ACCOUNTS=$work/accounts.toml

say "delivering $N requests to $LOAD_USER over one SMTP connection"
python3 - <<'PY'
import imaplib, os, random, smtplib, time
from email.utils import formatdate

host = os.environ["BENCH_HOST"]
n = int(os.environ["BENCH_N"])
user = os.environ["BENCH_LOAD_USER"]
rnd = random.Random(20261123)
to = f"{user}@support.test"

reasons = [
    "I lost my phone with the authenticator app on it",
    "my recovery codes do not work any more",
    "I forgot my password and the reset mail never arrives",
    "my 2FA device was stolen last week",
    "I reset my phone and the TOTP app was wiped",
    "my security key broke",
]
filler = [
    "I have been maintaining my packages for several years and publish new releases every few months.",
    "The project is used by a number of downstream distributions, so I would like to keep publishing.",
    "I already tried the password reset form twice, but I think the second factor is the real problem.",
    "I can provide the names of the packages I maintain and the dates of my last uploads if that helps.",
    "My GitHub account is linked from the project page and shows the same e-mail address.",
    "Please let me know if there is anything else you need from me to prove that I own the account.",
    "I understand that this process takes time and that you need to be careful with these requests.",
    "Sorry for the long message, I wanted to include everything that could be useful to you.",
    "The last time I logged in successfully was a few weeks ago from my work laptop.",
    "I still have the API tokens configured in CI, but I would rather not use them for this.",
]
accounts = []
msgs = []
ids = []
for i in range(n):
    username = f"benchpkg{i % 1500:04d}"
    sender = f"maint{i % 1700:04d}@example.test"
    if i % 3 == 0 and i % 1500 not in accounts:
        accounts.append(i % 1500)
    mid = f"bench-{i}-{rnd.randrange(1 << 30)}@example.test"
    kind = i % 10
    reason = rnd.choice(reasons)
    body_extra = " ".join(rnd.choice(filler) for _ in range(rnd.randrange(20, 30)))
    headers = [
        f"From: Maintainer {i % 1700} <{sender}>",
        f"To: Support <{to}>",
        f"Message-ID: <{mid}>",
        f"Date: {formatdate(localtime=False)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Received: from mx.example.test by mail.mailstack.test; " + formatdate(localtime=False),
    ]
    if kind < 4:
        subject = "Account recovery request"
        body = (
            "Account recovery form\n\n"
            f"Username: {username}\n"
            f"Reason: {reason}\n"
            "Do you still have access to the email address on the account? Yes\n"
            "[x] I agree to the Code of Conduct\n"
            "[x] I understand that recovery can take one to two weeks\n\n"
            f"Additional information:\n{body_extra}\n"
        )
    elif kind < 8 or not ids:
        subject = rnd.choice(["Lost 2FA", "Help: locked out of my account", "Cannot log in", "2FA recovery"])
        body = (
            "Hello,\n\n"
            f"my username is {username} and {reason}. "
            "I still have access to the email address on the account. "
            "I agree to the Code of Conduct and I understand this may take a while.\n\n"
            f"{body_extra}\n\nBest regards,\nMaintainer {i % 1700}\n"
        )
    else:
        parent = rnd.choice(ids[-200:])
        subject = "Re: Account recovery request"
        headers.append(f"In-Reply-To: <{parent}>")
        headers.append(f"References: <{parent}>")
        quoted = "\n".join("> " + rnd.choice(filler) for _ in range(12))
        body = (
            "Hi again,\n\nsome more details for my request: "
            f"{body_extra}\n\nOn Mon, someone wrote:\n{quoted}\n"
        )
    headers.insert(2, f"Subject: {subject}")
    raw = "\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")
    msgs.append((sender, raw.encode()))
    ids.append(mid)

with open(os.environ["BENCH_ACCOUNTS"], "w") as f:
    for a in accounts:
        f.write(f'[[account]]\nusername = "benchpkg{a:04d}"\n'
                f'addresses = [{{ address = "linked{a:04d}@linked.test", verified = true, primary = true }}]\n\n')

sizes = [len(m) for _, m in msgs]
t0 = time.monotonic()
with smtplib.SMTP(host, int(os.environ["BENCH_SMTP_PORT"])) as s:
    for sender, raw in msgs:
        s.sendmail(sender, [to], raw)
t1 = time.monotonic()
print(f"bench: sent {n} messages (avg {sum(sizes) // n} bytes, {min(sizes)}-{max(sizes)}) in {t1 - t0:.1f} s", flush=True)

imap = imaplib.IMAP4(host, int(os.environ["BENCH_IMAP_PORT"]))
imap.login(user, os.environ["BENCH_PASSWORD"])
deadline = time.monotonic() + 600
while True:
    typ, data = imap.status("INBOX", "(MESSAGES)")
    count = int(data[0].decode().split("MESSAGES")[1].strip(" ()"))
    if count >= n or time.monotonic() > deadline:
        break
    time.sleep(0.2)
imap.logout()
print(f"bench: {count} messages in the mailbox {time.monotonic() - t0:.1f} s after the first send", flush=True)
PY

# --- (a) the bare fetch ---------------------------------------------------------------

ensure_users
fetch_args=(--host "$HOST" --port "$IMAP_PORT" --tls "$TLS_MODE" --user "$LOAD_USER"
  --password "$MAILSTACK_PASSWORD" --batch 100)
[[ $TLS_MODE == implicit ]] && fetch_args+=(--ca "$MAILSTACK_CA_FILE" --tls-name localhost)
rates=()
for i in 1 2 3; do
  line=$("$fetcher" "${fetch_args[@]}")
  say "(a) run $i: $line"
  rates+=("$(echo "$line" | sed -E 's/.*: ([0-9]+) msgs\/s.*/\1/')")
done
a_rate=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n 2p)

# --- (b) recoverydesk once ---------------------------------------------------------

write_config() { # write_config FOLDER SUPPORT_USER TRANSPORT_TOML POLL
  local folder=$1 support=$2 transport=$3 poll=$4 tls_toml
  mkdir -p "$folder"
  printf 'bench-secret-%s-0123456789abcdef0123456789\n' "$stamp" >"$folder/secret.key"
  printf '%s\n' "$MAILSTACK_PASSWORD" >"$folder/imap.pass"
  cp "$BENCH_ACCOUNTS" "$folder/accounts.toml"
  if [[ $TLS_MODE == implicit ]]; then
    tls_toml="tls = \"implicit\"
ca_file = \"$MAILSTACK_CA_FILE\"
tls_server_name = \"localhost\""
  else
    tls_toml='tls = "plain"
allow_plaintext = true'
  fi
  cat >"$folder/config.toml" <<EOF
[instance]
id = "rd-bench-$support"
support_address = "$support@support.test"
support_name = "Bench Support"
secret_key = { file = "secret.key" }

[store]
path = "store"

[source]
kind = "imap"
batch_size = 100
poll_interval = "$poll"

[source.imap]
host = "$HOST"
port = $IMAP_PORT
$tls_toml
username = "$support"
password = { file = "imap.pass" }
processed_keyword = "\$RecoverydeskDone"
idle = true

[transport]
$transport

[directory]
kind = "file"
path = "accounts.toml"

[staff]
addresses = ["admin@staff.test"]
notify = ["admins@staff.test"]
trusted_authserv_ids = ["mx.staff.test"]

[policy]
waiting_period = "0s"

[policy.rate_limit]
per_hour = 1000
per_day = 10000
EOF
}

# --- (b0) the floor: fetch, parse, keep, flush, mark; nothing else -----------------

write_config "$work/floor" "$LOAD_USER" 'kind = "file"
[transport.file]
dir = "outbox"' 60s
ensure_users
floor_line=$("$floor" --config "$work/floor/config.toml")
say "(b0) $floor_line"
floor_rate=$(echo "$floor_line" | sed -E 's/.*: ([0-9]+) msgs\/s.*/\1/')
before_floor_line=""
if [[ -n ${BENCH_BEFORE_FLOOR:-} ]]; then
  write_config "$work/floor-before" "$LOAD_USER" 'kind = "file"
[transport.file]
dir = "outbox"' 60s
  ensure_users
  before_floor_line=$("$BENCH_BEFORE_FLOOR" --config "$work/floor-before/config.toml")
  say "(b0 before) $before_floor_line"
fi

write_config "$work/once" "$LOAD_USER" 'kind = "file"
[transport.file]
dir = "outbox"' 60s
ensure_users
say "(b) recoverydesk once over $N messages"
b_start=$(date +%s.%N)
RECOVERYDESK_LOG=info /usr/bin/time -f %M -o "$work/once.rss" \
  "$bin" --config "$work/once/config.toml" once >"$work/once.out" 2>"$work/once.log" || {
  say "recoverydesk once failed:"
  tail -20 "$work/once.log" >&2
  exit 1
}
b_end=$(date +%s.%N)
summary=$(cat "$work/once.out")
handled=$(echo "$summary" | sed -E 's/^handled ([0-9]+) .*/\1/')
b_secs=$(awk -v s="$b_start" -v e="$b_end" 'BEGIN { printf "%.3f", e - s }')
b_rate=$(awk -v n="$handled" -v s="$b_secs" 'BEGIN { printf "%.0f", n / s }')
rss_kb=$(cat "$work/once.rss")
cases=$("$bin" --config "$work/once/config.toml" cases export --json | wc -l)
outbox_files=$(find "$work/once/outbox" -name '*.eml' | wc -l)

# Per stage, from the log's timestamps: start-up (to "imap connected"),
# ingest (to the last "message handled"), then timers + outbox.
stages=$(python3 - "$work/once.log" "$b_start" <<'PY'
import re, sys
from datetime import datetime
start = float(sys.argv[2])
connected = first = last = sent_last = None
handled = sent = 0
for line in open(sys.argv[1], errors="replace"):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    m = re.match(r"\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if not m:
        continue
    t = datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
    if "imap connected" in line and connected is None:
        connected = t
    elif "message handled" in line:
        handled += 1
        first = first or t
        last = t
    elif re.search(r": sent( |$)", line):
        sent += 1
        sent_last = t
if connected and last:
    ingest = last - connected
    print(f"{last - start:.3f}|start-up {connected - start:.2f} s; ingest {ingest:.2f} s "
          f"({handled / ingest:.0f} msgs/s from connect to the last message handled); "
          f"timers + outbox {((sent_last or last) - last):.2f} s ({sent} replies written)")
else:
    print("0|(no timestamps found in the log)")
PY
)

queued_secs=${stages%%|*}
stages=${stages#*|}
q_rate=$(awk -v n="$handled" -v s="$queued_secs" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print 0 }')

# --- (c) latency with IDLE -------------------------------------------------------------

write_config "$work/run" "$LAT_SUPPORT" "kind = \"smtp\"
[transport.smtp]
host = \"$HOST\"
port = $SMTP_PORT
tls = \"plain\"
allow_plaintext = true" 60s
ensure_users
say "(c) recoverydesk run with IDLE; $LAT_N single requests, each timed to its acknowledgement"
"$bin" --config "$work/run/config.toml" run >"$work/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 300); do
  grep -q "recoverydesk running" "$work/run.log" && break
  kill -0 "$run_pid" 2>/dev/null || { say "recoverydesk run died:"; tail -20 "$work/run.log" >&2; exit 1; }
  sleep 0.1
done
export BENCH_LAT_N=$LAT_N BENCH_LAT_SUPPORT=$LAT_SUPPORT BENCH_LAT_REQ=$LAT_REQ
latency=$(python3 - <<'PY'
import imaplib, os, smtplib, time
from email.utils import formatdate

host = os.environ["BENCH_HOST"]
n = int(os.environ["BENCH_LAT_N"])
support = os.environ["BENCH_LAT_SUPPORT"] + "@support.test"
req = os.environ["BENCH_LAT_REQ"]
imap = imaplib.IMAP4(host, int(os.environ["BENCH_IMAP_PORT"]))
imap.login(req, os.environ["BENCH_PASSWORD"])
imap.select("INBOX")
smtp = smtplib.SMTP(host, int(os.environ["BENCH_SMTP_PORT"]))
lat, lost = [], 0
for i in range(n):
    mid = f"lat-{i}-{time.time_ns()}@example.test"
    sender = f"{req}+{i}@example.test"
    raw = (
        f"From: Maintainer {i} <{sender}>\r\nTo: {support}\r\nSubject: Lost 2FA\r\n"
        f"Message-ID: <{mid}>\r\nDate: {formatdate()}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\n\r\nmy username is latpkg{i:04d} and I lost my phone with the authenticator app.\r\n"
        "I still have access to the email address on the account.\r\n"
        "I agree to the Code of Conduct and understand this may take a while.\r\n"
    ).encode()
    t0 = time.monotonic()
    try:
        smtp.sendmail(sender, [support], raw)
    except (smtplib.SMTPServerDisconnected, OSError):
        smtp = smtplib.SMTP(host, int(os.environ["BENCH_SMTP_PORT"]))
        smtp.sendmail(sender, [support], raw)
    deadline = t0 + 30
    while True:
        imap.noop()
        typ, data = imap.uid("SEARCH", "HEADER", "In-Reply-To", f"<{mid}>")
        if data and data[0].split():
            lat.append(time.monotonic() - t0)
            break
        if time.monotonic() > deadline:
            lost += 1
            break
        time.sleep(0.01)
smtp.quit()
imap.logout()
lat.sort()
def pct(p):
    if not lat:
        return float("nan")
    k = max(0, min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1))
    return lat[k]
print(f"{len(lat)} {lost} {pct(50):.3f} {pct(99):.3f} {lat[0] if lat else float('nan'):.3f} {lat[-1] if lat else float('nan'):.3f}")
PY
)
kill -TERM "$run_pid" 2>/dev/null || true
wait "$run_pid" 2>/dev/null || true
run_pid=""
read -r lat_ok lat_lost p50 p99 lat_min lat_max <<<"$latency"

# --- figures ----------------------------------------------------------------------------

echo
echo "== bench-ingest: $N messages, IMAP $TLS_MODE on $HOST:$IMAP_PORT, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(a) bare fetch (examples/imap_fetch, 100 per UID FETCH): ${a_rate} msgs/s (median of ${rates[*]})"
echo "(b0) floor (examples/ingest_floor: fetch, parse, keep the raw bytes, one sled transaction and one fsync'd flush per batch, mark; no reading, no case, no reply): ${floor_rate} msgs/s"
[[ -n $before_floor_line ]] && echo "(b0 before) floor of BENCH_BEFORE_FLOOR ($BENCH_BEFORE_FLOOR): ${before_floor_line}"
echo "(b) recoverydesk once: ${handled} handled in ${b_secs} s = ${b_rate} msgs/s; ${cases} cases, ${outbox_files} replies written"
echo "    ${summary}"
echo "    stages: ${stages}"
echo "    until every acknowledgement is queued (process start to the last message handled, ${queued_secs} s): ${q_rate} msgs/s"
awk -v b="$b_rate" -v a="$a_rate" -v q="$q_rate" -v f="$floor_rate" 'BEGIN {
  printf "ratio b/a: %.3f (whole once, outbox files included); %.3f (until queued) (target >= 0.25)\n", b / a, q / a
  printf "ratio b0/a (floor / bare fetch): %.3f (target >= 0.5); b/b0 (ingest until queued / floor): %.3f (target >= 0.5)\n", f / a, q / f }'
echo "(c) arrival -> acknowledgement in the requester's inbox, IDLE, SMTP through Postfix: ${lat_ok} measured, ${lat_lost} not answered within 30 s"
echo "    p50 ${p50} s, p99 ${p99} s (min ${lat_min} s, max ${lat_max} s) (target p99 <= 0.5 s)"
awk -v k="$rss_kb" 'BEGIN { printf "(d) peak RSS of recoverydesk once: %d KiB (%.1f MiB) (target <= 64 MB)\n", k, k / 1024 }'
