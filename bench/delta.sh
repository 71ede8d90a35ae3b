#!/usr/bin/env bash
# Delta media against a full export, rsync's batch mode and xdelta3
# (issue #10 performance figures). Usage:
#   bench/delta.sh FERRY [FILES MB PERCENT]   (defaults: 10000 316 2)
# Generates a repository (bench/gen.py gen), exports and imports it with a
# ledger and a receipt, changes PERCENT % of the files in place
# (bench/gen.py edit), then measures on the same data:
#   * full export and delta export (--since RECEIPT): bytes on the medium, time;
#   * full import into an empty folder and delta import over day 0: time,
#     and CPU time (user + system, from /usr/bin/time: steadier than the
#     wall clock on a loaded machine);
#   * rsync -a --no-whole-file --only-write-batch: batch file bytes and
#     time (the peer of the delta export), and rsync --read-batch applying
#     it to a copy of day 0, + sync (the peer of the delta import);
#   * xdelta3 -e -s OLD NEW for every changed file, added files whole: bytes.
# Every timed command starts after a `sync`, so none pays for writing back
# what an earlier step (the generator, cp -a, another command) left dirty
# on the same filesystem: export and import sync what they write.
# Needs rsync, xdelta3 and GNU time (apt install rsync xdelta3 time). Writes $BENCH_DIR
# (default /tmp/ferry-delta-bench) and removes it at the end (unless
# BENCH_KEEP=1). Also prints what the delta medium's bytes are.
set -euo pipefail
FERRY=$(realpath "$1"); FILES=${2:-10000}; MB=${3:-316}; PERCENT=${4:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
W=${BENCH_DIR:-/tmp/ferry-delta-bench}
for tool in rsync xdelta3; do
    command -v $tool >/dev/null || { echo "bench/delta.sh needs $tool: apt install $tool" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench/delta.sh needs GNU time: apt install time" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"
[ -n "${BENCH_KEEP:-}" ] || trap 'rm -rf "$W"' EXIT   # BENCH_KEEP=1 leaves $W to look at
export FERRY_NOT_A_DRIVE=1 FERRY_LEDGER="$W/ledger"
"$FERRY" keygen "$W/k" --no-passphrase -q
python3 "$HERE/gen.py" gen "$W/src" "$FILES" "$MB" 1 >/dev/null
cp -a "$W/src" "$W/day0"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
# cpu FILE: user + system seconds that /usr/bin/time -f '%U %S' wrote.
cpu() { python3 -c "u, s = open('$1').read().split()[-2:]; print(f'{float(u) + float(s):.2f}')"; }
size() { du -sb "$1" | cut -f1; }
sync; t0=$(now); "$FERRY" export "$W/src" "$W/full" --key "$W/k.key" --repository bench -q --no-read-back; t1=$(now)
full_export=$(secs $t0 $t1); full_bytes=$(size "$W/full")
sync; t0=$(now); /usr/bin/time -f '%U %S' -o "$W/cpu.full" "$FERRY" import "$W/full" "$W/site" --trust "$W/k.pub" -q; t1=$(now)
full_import=$(secs $t0 $t1); full_cpu=$(cpu "$W/cpu.full")
"$FERRY" receipt "$W/site" "$W/receipt" -q
python3 "$HERE/gen.py" edit "$W/src" "$PERCENT" 2 >/dev/null
sync; t0=$(now); "$FERRY" export "$W/src" "$W/delta" --key "$W/k.key" --repository bench -q --no-read-back --since "$W/receipt"; t1=$(now)
delta_export=$(secs $t0 $t1); delta_bytes=$(size "$W/delta")
sync; t0=$(now); /usr/bin/time -f '%U %S' -o "$W/cpu.delta" "$FERRY" import "$W/delta" "$W/site" --trust "$W/k.pub" -q; t1=$(now)
delta_import=$(secs $t0 $t1); delta_cpu=$(cpu "$W/cpu.delta")
diff -r -x .ferry "$W/src" "$W/site" >/dev/null && same=yes || same=NO
sync; t0=$(now); rsync -a --no-whole-file --delete --only-write-batch="$W/rsync.batch" "$W/src/" "$W/day0/"; t1=$(now)
rsync_time=$(secs $t0 $t1); rsync_bytes=$(size "$W/rsync.batch")
# The peer of the delta import: rsync applying its batch to a copy of day 0,
# then sync (ferry's import syncs what it writes).
cp -a "$W/day0" "$W/day0-batch"
sync; t0=$(now); rsync -a --delete --read-batch="$W/rsync.batch" "$W/day0-batch/" && sync; t1=$(now)
rsync_apply=$(secs $t0 $t1)
diff -r "$W/src" "$W/day0-batch" >/dev/null && rsync_same=yes || rsync_same=NO
rm -rf "$W/day0-batch"
xd_bytes=0; changed=0; added=0
t0=$(now)
while IFS= read -r -d '' file; do
    rel=${file#"$W/src/"}
    if [ -f "$W/day0/$rel" ]; then
        cmp -s "$file" "$W/day0/$rel" && continue
        xdelta3 -e -f -s "$W/day0/$rel" "$file" "$W/x.vcdiff"
        xd_bytes=$((xd_bytes + $(stat -c %s "$W/x.vcdiff"))); changed=$((changed + 1))
    else
        xd_bytes=$((xd_bytes + $(stat -c %s "$file"))); added=$((added + 1))
    fi
done < <(find "$W/src" -type f -print0)
t1=$(now); xd_time=$(secs $t0 $t1)
whole_bytes=$("$FERRY" diff "$W/day0" "$W/src" --json --no-patches | python3 -c 'import json,sys; print(json.load(sys.stdin)["delta_bytes_whole"])')
pct() { python3 -c "print(f'{100 * $1 / $2:.2f} %')"; }
# What the delta medium's bytes are: the manifest file, the tar volumes
# split into headers, file contents, padding and end blocks, and the rest.
breakdown=$(python3 - "$W/delta" <<'PY'
import os, sys, tarfile
root = sys.argv[1]
parts = {"manifest": 0, "headers": 0, "contents": 0, "padding": 0, "end blocks": 0, "other files": 0}
for folder, _, names in os.walk(root):
    for name in names:
        path = os.path.join(folder, name); size = os.path.getsize(path)
        if name in ("manifest", "manifest.zst"):
            parts["manifest"] += size
        elif name.endswith(".tar"):
            with tarfile.open(path) as tar:
                members = tar.getmembers()
            used = 0
            for m in members:
                parts["headers"] += m.offset_data - m.offset
                parts["contents"] += m.size
                parts["padding"] += -m.size % 512
                used = m.offset_data + m.size + (-m.size % 512)
            parts["end blocks"] += size - used
        else:
            parts["other files"] += size
print(", ".join(f"{k} {v}" for k, v in parts.items()))
PY
)
cat <<TABLE
repository: $FILES files, $MB MB; change: bench/gen.py edit $PERCENT % ($changed changed, $added added); result equal to source: $same
| what | bytes | of full | seconds |
| --- | ---: | ---: | ---: |
| full export (tar, no read-back) | $full_bytes | 100 % | $full_export |
| changed files whole (ferry diff) | $whole_bytes | $(pct $whole_bytes $full_bytes) | |
| ferry delta export (--since receipt) | $delta_bytes | $(pct $delta_bytes $full_bytes) | $delta_export |
| rsync --only-write-batch | $rsync_bytes | $(pct $rsync_bytes $full_bytes) | $rsync_time |
| xdelta3 per changed file + added whole | $xd_bytes | $(pct $xd_bytes $full_bytes) | $xd_time |
| full import (empty folder) | | | $full_import |
| delta import (over day 0) | | $(pct $delta_import $full_import) of full import | $delta_import |
| full import, CPU seconds (user + system) | | | $full_cpu |
| delta import, CPU seconds (user + system) | | $(pct $delta_cpu $full_cpu) of full import | $delta_cpu |
| rsync --read-batch onto day 0, + sync (result equal: $rsync_same) | | delta import: $(python3 -c "print(f'{$delta_import / $rsync_apply:.2f}')") x this | $rsync_apply |
| | | delta export: $(python3 -c "print(f'{$delta_export / $rsync_time:.2f}')") x rsync --only-write-batch | |

delta medium bytes: $breakdown
TABLE
