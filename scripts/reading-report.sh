#!/bin/sh
# The reading report: field, reply-stripping and machine-mail accuracy on
# the shared corpus beside the checkout, development and held-out parts.
# Pass --misses to list the development part's misses (never the held-out).
set -eu
cd "$(dirname "$0")/.."
exec cargo run --quiet --example reading_report -- "$@"
