#!/usr/bin/env bash
# The whole round trip on the bundled sample repository, in a scratch
# folder: keygen, export, verify, import, status. Shows every step's output
# and ends by comparing the installed update source with the source.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
cargo build --release --quiet
ferry="$repo/target/release/ferry"
work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT

step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "scratch folder: $work"
step "$ferry" keygen "$work/site-key" --no-passphrase
step "$ferry" export samples/repository "$work/usb-drive" --key "$work/site-key.key" --repository sample --not-a-drive
step "$ferry" verify "$work/usb-drive" --trust "$work/site-key.pub"
step "$ferry" import "$work/usb-drive" "$work/update-source" --trust "$work/site-key.pub"
step "$ferry" status "$work/update-source"
printf '\n$ diff -r --exclude=.ferry samples/repository update-source\n'
diff -r --exclude=.ferry samples/repository "$work/update-source"
echo "identical: the update source serves exactly the exported repository"
printf '\n$ find update-source\n'
(cd "$work/update-source" && find . -path ./.ferry -prune -o -print | sort)
