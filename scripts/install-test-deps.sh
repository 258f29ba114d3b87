#!/usr/bin/env bash
# install-test-deps.sh — the programs the tests drive besides the mail stack
# (scripts/mailstack.sh installs Postfix and Dovecot itself).
#
#   mutt    a real mail client: tests/live/mail_client.rs has it reply to a staff
#           notification, quoting it as a mail client does, and send the
#           reply through Postfix.
#   script  (util-linux, bsdutils) gives mutt the terminal its index needs.
#   dnsmasq (dnsmasq-base: the program without the system service) serves
#           the DKIM keys of tests/it/staff_signature.rs on loopback; each
#           test starts its own on a free port.
#
# Idempotent: installs only what is missing, with Debian's packages, and
# runs `apt-get update` only when it has to install something. Needs root
# for that; prints why and exits 1 when it cannot install.
set -euo pipefail

say() { echo "install-test-deps: $*" >&2; }

missing=()
command -v mutt >/dev/null 2>&1 || missing+=(mutt)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
[[ -x /usr/sbin/dnsmasq || -x /usr/bin/dnsmasq ]] || missing+=(dnsmasq-base)

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  say "missing: ${missing[*]}; installing needs root"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "missing: ${missing[*]}; there is no apt-get here"
  exit 1
fi
say "installing ${missing[*]} (once)"
log=${TMPDIR:-/tmp}/install-test-deps-apt.log
rc=0
{
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
} >"$log" 2>&1 || rc=$?
if ((rc != 0)); then
  say "apt-get failed (exit $rc); see $log"
  exit 1
fi
command -v mutt >/dev/null 2>&1 || {
  say "mutt is still missing after the install; see $log"
  exit 1
}
say "installed: ${missing[*]}"
