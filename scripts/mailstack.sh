#!/usr/bin/env bash
# mailstack.sh — a throwaway mail stack on loopback for recoverydesk's tests.
#
# Postfix (SMTP) delivers every recipient of every domain over LMTP into
# Dovecot (IMAP, IMAPS, STARTTLS). Both run on 127.0.0.1 on non-standard
# ports, with TLS from a private test CA, users in a passwd-file, and every
# bit of state under one directory. Nothing here touches the system
# instances of either daemon, and `down` stops only the processes that this
# directory's pid files name.
#
# Usage: scripts/mailstack.sh COMMAND DIR
#   up               install missing packages, write configs, start both
#   down             stop both (only what DIR's pid files name)
#   status           print what runs; exit 0 only if both run
#   start-dovecot | stop-dovecot | restart-dovecot
#   start-postfix | stop-postfix | restart-postfix
#
# Ports (read at `up`; persisted in DIR/mailstack.env; env wins over file):
#   MAILSTACK_SMTP_PORT=12525 (STARTTLS may)  MAILSTACK_SMTPS_PORT=12465 (implicit TLS)
#   MAILSTACK_IMAP_PORT=14143 MAILSTACK_IMAPS_PORT=14993 MAILSTACK_LMTP_PORT=14024
#
# Test recipients: rejected@mailstack.test gets a 550, deferred@mailstack.test
# a 450, at RCPT time; every other address of every domain is delivered.
#
# Users: DIR/users.passwd (Dovecot passwd-file). `up` adds the default users
# (support alice bob carol dave staff agent, password "password") when
# missing and keeps every other line, so tests may append users of their
# own as `name:{PLAIN}secret::::::`; Dovecot picks them up without a restart.
#
# Needs root: Postfix's master and Dovecot's master both start as root and
# drop privileges themselves.
set -euo pipefail

readonly USERS=(support alice bob carol dave staff agent)
readonly PASSWORD=password
# Mail is stored as this uid/gid. It needs no /etc/passwd entry.
readonly VMAIL_ID=5000
readonly HOST=127.0.0.1

die() {
  echo "mailstack: $*" >&2
  exit 1
}
say() { echo "mailstack: $*" >&2; }

usage() {
  sed -n '11,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$2
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
# Unix sockets (Dovecot's base_dir, Postfix's private/auth) are limited to
# 108 bytes; a short DIR keeps every socket path under it.
((${#DIR} <= 64)) || die "DIR '$DIR' is longer than 64 characters (unix socket path limit)"

ENV_FILE=$DIR/mailstack.env

# Test binaries may call `up` at the same time; one at a time per DIR.
exec 9>"$DIR/.lock"
flock 9
TLS=$DIR/tls
PF_ETC=$DIR/postfix/etc
PF_SPOOL=$DIR/postfix/spool
PF_DATA=$DIR/postfix/data
DC_CONF=$DIR/dovecot/dovecot.conf
DC_BASE=$DIR/run/dovecot
LOG=$DIR/log

# --- small helpers ----------------------------------------------------------

# Reads KEY from the persisted env file, if there is one.
persisted() {
  [[ -f $ENV_FILE ]] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

port_of() { # port_of NAME DEFAULT
  local var=MAILSTACK_$1_PORT key=MAILSTACK_$1_PORT value
  value=${!var:-}
  [[ -n $value ]] || value=$(persisted "$key")
  [[ -n $value ]] || value=$2
  [[ $value =~ ^[0-9]+$ ]] || die "$var='$value' is not a port number"
  echo "$value"
}

SMTP_PORT=$(port_of SMTP 12525)
SMTPS_PORT=$(port_of SMTPS 12465)
IMAP_PORT=$(port_of IMAP 14143)
IMAPS_PORT=$(port_of IMAPS 14993)
LMTP_PORT=$(port_of LMTP 14024)

# Writes stdin to FILE only when the content differs. Rewriting Postfix's
# main.cf with identical bytes still makes the next `postfix check` ten
# times slower, so unchanged files are left alone.
write_if_changed() { # write_if_changed FILE MODE
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if [[ -f $1 ]] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  chmod "$2" "$tmp"
  mv -f "$tmp" "$1"
  return 0
}

# True when PID names a live process. `kill -0` also succeeds on a zombie,
# and orphans are reaped late here, so read the state field instead.
alive() {
  local pid=$1 stat state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ $state != Z && $state != X ]]
}

# True when PID is alive and its command line contains WORD: a pid file
# left from before a reboot may name an unrelated process, which we must
# neither mistake for our daemon nor kill.
alive_as() { # alive_as PID WORD
  alive "$1" || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

pid_from() { # pid_from FILE -> pid or empty
  [[ -f $1 ]] || return 0
  tr -dc '0-9' <"$1"
}

wait_gone() { # wait_gone PID SECONDS
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

wait_port() { # wait_port PORT SECONDS WHAT
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    ((SECONDS < deadline)) || die "$3 is not listening on $HOST:$1 after $2 s (see $LOG)"
    sleep 0.1
  done
}

# --- packages -----------------------------------------------------------------

packages_present() {
  command -v postfix >/dev/null 2>&1 &&
    command -v dovecot >/dev/null 2>&1 &&
    [[ -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/lmtp ]] &&
    command -v openssl >/dev/null 2>&1
}

install_packages() {
  packages_present && return 0
  [[ $(id -u) -eq 0 ]] || die "postfix/dovecot are missing and installing them needs root"
  command -v apt-get >/dev/null 2>&1 || die "postfix/dovecot are missing and there is no apt-get"
  say "installing postfix, dovecot-imapd, dovecot-lmtpd (once)"
  # Keep package scripts from starting the system daemons: a policy-rc.d
  # that says 101 ("action forbidden") is honoured by invoke-rc.d. Ours is
  # marked so that only ours is removed afterwards.
  local policy=/usr/sbin/policy-rc.d marker='# mailstack.sh temporary'
  local made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n%s\nexit 101\n' "$marker" >"$policy"
    chmod 0755 "$policy"
    made_policy=1
  fi
  # "No configuration" means no /etc/postfix/main.cf: the system instance
  # can never run, only ours with -c.
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postfix dovecot-imapd dovecot-lmtpd openssl
  } >"${TMPDIR:-/tmp}/mailstack-apt.log" 2>&1 || rc=$?
  if ((made_policy)) && grep -qF "$marker" "$policy" 2>/dev/null; then
    rm -f "$policy"
  fi
  ((rc == 0)) || die "apt-get failed (exit $rc); see ${TMPDIR:-/tmp}/mailstack-apt.log"
  # Belt and braces: if a system Dovecot started despite the policy, stop
  # exactly that one (its pid file lives in the system base_dir).
  local syspid
  syspid=$(pid_from /run/dovecot/master.pid)
  if [[ -n $syspid ]] && alive "$syspid"; then
    say "stopping the system dovecot ($syspid) that the package started"
    kill "$syspid" 2>/dev/null || true
  fi
  packages_present || die "packages installed but binaries are still missing"
}

# --- files ---------------------------------------------------------------------

make_dirs() {
  mkdir -p "$TLS" "$PF_ETC" "$PF_SPOOL" "$PF_DATA" "$DIR/dovecot" \
    "$DIR/state/dovecot" "$LOG" "$DIR/mail" "$DIR/run"
  # Dovecot's mail processes run as uid 5000 and must reach DIR/mail.
  chmod 0755 "$DIR" "$DIR/run" "$DIR/postfix"
  chown "$VMAIL_ID:$VMAIL_ID" "$DIR/mail"
  chmod 0770 "$DIR/mail"
  # Postfix's master creates its lock file here as the postfix user.
  chown postfix:postfix "$PF_DATA"
  # The queue directory itself must belong to root.
  chown root:root "$PF_SPOOL"
}

make_tls() {
  [[ -s $TLS/ca.crt && -s $TLS/server.crt && -s $TLS/server.key ]] && return 0
  say "making a test CA and a server certificate in $TLS"
  # A CA plus a leaf, not one self-signed cert: rustls refuses a CA:TRUE
  # certificate as a server certificate, and clients should trust ca.crt.
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt" \
    -subj "/CN=recoverydesk mailstack test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -sha256 \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=localhost" 2>/dev/null
  cat >"$TLS/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:mail.mailstack.test
EOF
  openssl x509 -req -sha256 -days 825 -in "$TLS/server.csr" \
    -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -CAserial "$TLS/ca.srl" \
    -extfile "$TLS/server.ext" -out "$TLS/server.crt" 2>/dev/null
  chmod 0600 "$TLS/ca.key" "$TLS/server.key"
  chmod 0644 "$TLS/ca.crt" "$TLS/server.crt"
}

make_users() {
  # Only adds the default users that are missing: lines that tests append
  # (users of their own) stay, and the file is never rewritten under a
  # running Dovecot, which re-reads it on its own.
  local file=$DIR/users.passwd user
  touch "$file"
  for user in "${USERS[@]}"; do
    grep -q "^$user:" "$file" || echo "$user:{PLAIN}$PASSWORD::::::" >>"$file"
  done
  chmod 0640 "$file"
  chown root:dovecot "$file"
}

write_dovecot_conf() {
  local instance
  instance=mailstack-$(printf '%s' "$DIR" | md5sum | cut -c1-8)
  write_if_changed "$DC_CONF" 0644 <<EOF && DC_CHANGED=1
# Written by scripts/mailstack.sh; standalone, no /etc/dovecot includes.
instance_name = $instance
base_dir = $DC_BASE
state_dir = $DIR/state/dovecot
log_path = $LOG/dovecot.log
info_log_path = $LOG/dovecot.log
protocols = imap lmtp
listen = $HOST
ssl = yes
ssl_cert = <$TLS/server.crt
ssl_key = <$TLS/server.key
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
# Failed logins are part of the tests; Dovecot still batches them on a
# 500 ms timer.
auth_failure_delay = 0
recipient_delimiter = +
first_valid_uid = 1
mail_location = maildir:~/Maildir

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Ln $DIR/users.passwd
}
userdb {
  driver = static
  args = uid=$VMAIL_ID gid=$VMAIL_ID home=$DIR/mail/%Ln allow_all_users=yes
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = subscribe
    special_use = \\Drafts
  }
  mailbox Sent {
    auto = subscribe
    special_use = \\Sent
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
  mailbox Archive {
    auto = subscribe
    special_use = \\Archive
  }
}

service imap-login {
  inet_listener imap {
    address = $HOST
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = $HOST
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = $HOST
    port = $LMTP_PORT
  }
}
service auth {
  # Postfix's smtpd asks Dovecot for SASL through this socket.
  unix_listener $PF_SPOOL/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  # Without this, failed logins from 127.0.0.1 delay every later login
  # (good ones too) by up to 15 s.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
protocol imap {
  # Parallel tests log in as the same user from the same address.
  mail_max_userip_connections = 1000
}
protocol lmtp {
  postmaster_address = postmaster@mailstack.test
}
EOF
  return 0
}

write_postfix_conf() {
  write_if_changed "$PF_ETC/main.cf" 0644 <<EOF && PF_CHANGED=1
# Written by scripts/mailstack.sh; run as postfix -c $PF_ETC
compatibility_level = 3.6
myhostname = mail.mailstack.test
mydomain = mailstack.test
queue_directory = $PF_SPOOL
data_directory = $PF_DATA
maillog_file = $LOG/postfix.log
maillog_file_prefixes = $LOG
inet_interfaces = $HOST
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is local and nothing is relayed by domain: every recipient of
# every domain goes to Dovecot over LMTP.
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
default_transport = lmtp:inet:$HOST:$LMTP_PORT
relay_transport = lmtp:inet:$HOST:$LMTP_PORT
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
# Two fixed answers so that clients can test their 5xx and 4xx handling.
smtpd_recipient_restrictions = check_recipient_access inline:{ { rejected@mailstack.test = 550 5.1.1 Rejected by the mailstack test rule }, { deferred@mailstack.test = 450 4.2.0 Deferred by the mailstack test rule } }
smtpd_peername_lookup = no
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_tls_security_level = may
smtpd_tls_cert_file = $TLS/server.crt
smtpd_tls_key_file = $TLS/server.key
recipient_delimiter = +
message_size_limit = 52428800
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
biff = no
append_dot_mydomain = no
EOF
  # The Debian default service list with chroot off, the listener moved to
  # loopback and a non-standard port, and no smtp/relay client: mail
  # cannot leave this machine whatever the address.
  write_if_changed "$PF_ETC/master.cf" 0644 <<EOF && PF_CHANGED=1
# service type  private unpriv  chroot  wakeup  maxproc command
$HOST:$SMTP_PORT inet n - n - - smtpd
$HOST:$SMTPS_PORT inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  return 0
}

write_env() {
  write_if_changed "$ENV_FILE" 0644 <<EOF || true
MAILSTACK_DIR=$DIR
MAILSTACK_HOST=$HOST
MAILSTACK_SMTP_PORT=$SMTP_PORT
MAILSTACK_SMTPS_PORT=$SMTPS_PORT
MAILSTACK_IMAP_PORT=$IMAP_PORT
MAILSTACK_IMAPS_PORT=$IMAPS_PORT
MAILSTACK_LMTP_PORT=$LMTP_PORT
MAILSTACK_CA_FILE=$TLS/ca.crt
MAILSTACK_TLS_NAME=localhost
MAILSTACK_USERS_FILE=$DIR/users.passwd
MAILSTACK_USERS=${USERS[*]}
MAILSTACK_PASSWORD=$PASSWORD
MAILSTACK_MAIL_DIR=$DIR/mail
MAILSTACK_LOG_DIR=$LOG
EOF
}

# --- daemons -------------------------------------------------------------------

dovecot_pid() { pid_from "$DC_BASE/master.pid"; }
postfix_pid() { pid_from "$PF_SPOOL/pid/master.pid"; }

dovecot_running() {
  local pid
  pid=$(dovecot_pid)
  [[ -n $pid ]] && alive_as "$pid" dovecot
}

postfix_running() {
  local pid
  pid=$(postfix_pid)
  [[ -n $pid ]] && alive_as "$pid" master
}

postfix_check() {
  # Also creates the queue tree, which Dovecot's SASL socket lives in.
  postfix -c "$PF_ETC" check >>"$LOG/postfix.stderr" 2>&1 ||
    die "postfix check failed; see $LOG/postfix.stderr and $LOG/postfix.log"
}

start_dovecot() {
  dovecot_running && return 0
  [[ -d $PF_SPOOL/private ]] || postfix_check
  # A stale anvil-auth-penalty socket from an earlier run makes the auth
  # process retry for 5 s, which delays the first login and the SMTP banner.
  rm -rf "$DC_BASE"
  # Dovecot's master keeps fd 2 open forever; detach it from our caller's
  # pipes or `mailstack.sh up | tee` hangs until `down`.
  # fd 9 holds our lock; the daemon must not inherit it.
  dovecot -c "$DC_CONF" </dev/null >>"$LOG/dovecot.stderr" 2>&1 9>&- ||
    die "dovecot failed to start; see $LOG/dovecot.stderr and $LOG/dovecot.log"
  wait_port "$IMAP_PORT" 10 "dovecot (imap)"
  wait_port "$IMAPS_PORT" 10 "dovecot (imaps)"
  wait_port "$LMTP_PORT" 10 "dovecot (lmtp)"
}

stop_dovecot() {
  local pid
  pid=$(dovecot_pid)
  if dovecot_running; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || {
      say "dovecot ($pid) still there after 5 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
    }
  fi
  # The children exit with the master; wait for the listener to close so
  # that a following start can bind again.
  local deadline=$((SECONDS + 5))
  while port_open "$IMAP_PORT" && ((SECONDS < deadline)); do sleep 0.1; done
}

start_postfix() {
  postfix_running && return 0
  postfix_check
  postfix -c "$PF_ETC" start </dev/null >>"$LOG/postfix.stderr" 2>&1 9>&- ||
    die "postfix failed to start; see $LOG/postfix.stderr and $LOG/postfix.log"
  wait_port "$SMTP_PORT" 10 "postfix (smtp)"
  wait_port "$SMTPS_PORT" 10 "postfix (smtps)"
}

stop_postfix() {
  local pid
  pid=$(postfix_pid)
  postfix_running || return 0
  postfix -c "$PF_ETC" stop </dev/null >>"$LOG/postfix.stderr" 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || {
    say "postfix master ($pid) still there after 5 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || true
  }
  local deadline=$((SECONDS + 5))
  while port_open "$SMTP_PORT" && ((SECONDS < deadline)); do sleep 0.1; done
}

need_root() {
  [[ $(id -u) -eq 0 ]] || die "$CMD needs root (the daemons' masters start as root)"
}

# Set by the config writers when a file changed, so that a running daemon
# picks the change up.
DC_CHANGED=0
PF_CHANGED=0

configure() {
  need_root
  install_packages
  make_dirs
  make_tls
  make_users
  write_dovecot_conf
  write_postfix_conf
  write_env
}

status() {
  local rc=0 pid
  pid=$(dovecot_pid)
  if dovecot_running; then
    echo "dovecot: running (pid $pid) imap $HOST:$IMAP_PORT imaps $HOST:$IMAPS_PORT lmtp $HOST:$LMTP_PORT"
  else
    echo "dovecot: stopped"
    rc=1
  fi
  pid=$(postfix_pid)
  if postfix_running; then
    echo "postfix: running (pid $pid) smtp $HOST:$SMTP_PORT smtps $HOST:$SMTPS_PORT"
  else
    echo "postfix: stopped"
    rc=1
  fi
  [[ -f $ENV_FILE ]] && echo "env: $ENV_FILE"
  return $rc
}

case $CMD in
  up)
    configure
    if ((DC_CHANGED)) && dovecot_running; then
      say "dovecot.conf changed; restarting dovecot"
      stop_dovecot
    fi
    start_dovecot
    if ((PF_CHANGED)) && postfix_running; then
      say "postfix config changed; reloading postfix"
      postfix_check
      postfix -c "$PF_ETC" reload </dev/null >>"$LOG/postfix.stderr" 2>&1 9>&- || die "postfix reload failed; see $LOG"
      wait_port "$SMTPS_PORT" 10 "postfix (smtps)"
    fi
    start_postfix
    say "up: smtp $HOST:$SMTP_PORT smtps $HOST:$SMTPS_PORT imap $HOST:$IMAP_PORT imaps $HOST:$IMAPS_PORT; env in $ENV_FILE"
    ;;
  down)
    pids="$(postfix_pid) $(dovecot_pid)"
    stop_postfix
    stop_dovecot
    # Orphans are reaped late here; wait (briefly) for the zombies to go so
    # that `ps` right after `down` is clean.
    deadline=$((SECONDS + 5))
    for pid in $pids; do
      while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.1; done
    done
    ;;
  status) status ;;
  start-dovecot) configure && start_dovecot ;;
  stop-dovecot) stop_dovecot ;;
  restart-dovecot) stop_dovecot && configure && start_dovecot ;;
  start-postfix) configure && start_postfix ;;
  stop-postfix) stop_postfix ;;
  restart-postfix) stop_postfix && configure && start_postfix ;;
  *) usage ;;
esac
