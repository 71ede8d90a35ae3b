#!/usr/bin/env bash
# Builds the seed corpora fuzz/corpus/<target>/ from samples/ (and from the
# worked examples of formats/target-state-v1.md for the state files).
# Idempotent: seeds are named after their content's SHA-256 like libFuzzer's.
set -euo pipefail
cd "$(dirname "$0")"
samples=../samples

add() { # add TARGET FILE...
    local target=$1
    shift
    mkdir -p "corpus/$target"
    for file in "$@"; do
        cp "$file" "corpus/$target/$(sha256sum <"$file" | cut -c1-40)"
    done
}
add_text() { # add_text TARGET TEXT
    local tmp
    tmp=$(mktemp)
    printf '%s' "$2" >"$tmp"
    add "$1" "$tmp"
    rm -f "$tmp"
}

# Manifests, valid and invalid.
add manifest "$samples"/media/ferry/*/*/manifest "$samples"/invalid/*/manifest
# Signature files alone (checked against the sample manifest), and one
# signature NUL manifest pair.
add signature "$samples"/media/ferry/*/*/manifest.sig "$samples"/invalid/*/manifest.sig
pair=$(mktemp)
{ cat "$samples"/media/ferry/sample/1/manifest.sig; printf '\0'; cat "$samples"/media/ferry/sample/1/manifest; } >"$pair"
add signature "$pair"
rm -f "$pair"
# Keys: every public and secret sample key, and a trust store of two keys.
add keys "$samples"/keys/*.pub "$samples"/keys/*.key
pair=$(mktemp)
{ cat "$samples"/keys/TEST-ONLY-DO-NOT-USE.pub; printf '\0'; cat "$samples"/keys/TEST-ONLY-DO-NOT-USE-protected.pub; } >"$pair"
add keys "$pair"
rm -f "$pair"
# State marker and journal (formats/target-state-v1.md, worked example).
add_text state 'ferry state v1
repository: antivirus
sequence: 42
snapshot: b405099cb2dc3fed097f311e5c85b19675111b5e36e6f289acc58c16aef87955
created: 2026-11-24T13:00:00Z
expires: 2026-12-24T13:00:00Z
installed: 2026-11-24T13:05:00Z
switch: ordered
previous: 26f97d9c0acd8d0fa3c9dd65ca575e1a82a5d76fbb0bc082e1569eb52473f31c
rolled-back-from: none
'
add_text state 'ferry state v1
repository: av
sequence: 7
snapshot: 0303030303030303030303030303030303030303030303030303030303030303
created: 2026-11-24T13:00:00Z
expires: never
installed: 2026-11-24T14:00:00Z
switch: tree
previous: none
rolled-back-from: 9
'
add_text state 'ferry journal v1
snapshot: b405099cb2dc3fed097f311e5c85b19675111b5e36e6f289acc58c16aef87955
kind: import
save bases/daily.cvd
save bases/old.cvd
save index/master.xml
save legacy/readme.txt
mkdir bin
barrier
put staging/000000 bases/daily.cvd
put staging/000001 bases/empty.dat
put staging/000002 bin/tool
put staging/000003 index/master.xml
barrier
delete bases/old.cvd
delete legacy/readme.txt
rmdir legacy
end
'
add_text state 'ferry journal v1
snapshot: 26f97d9c0acd8d0fa3c9dd65ca575e1a82a5d76fbb0bc082e1569eb52473f31c
kind: rollback
restore bases/daily.cvd
delete bin/tool
rmdir bin
end
'
# One-line parsers: paths, targets, times, durations.
for text in 'bases/daily/2026-11-24.dat' 'bases/ünïcødé.dat' 'a/b c/d.txt' 'CON.txt' 'a/../b' \
    'ftp://upd@127.0.0.1:2121/pub/av/' 'ftps://[::1]:990/x%20y' 'ftp://user:pw@host/' '/srv/updates' \
    '2026-11-24T13:00:00Z' '2026-11-24T13:00:00+01:00' '@1790000000' '90s' '7d' '2w' '99999999999999999999d'; do
    add_text text "$text"
done
# Tar volumes: the golden tar sample's volume.
add volume "$samples"/media/ferry/sample/2/volumes/*.tar
for target in corpus/*; do echo "$target: $(ls "$target" | wc -l) seeds"; done
