#!/usr/bin/env bash
# Regenerates docs/reference/cli.md from the binary's own --help text, so
# the reference can never drift from the program (tests/docs.rs checks it).
set -euo pipefail
ferry="${1:-target/debug/ferry}"
out="${2:-docs/reference/cli.md}"
{
  echo "# Command-line reference"
  echo
  echo "Generated from \`ferry --help\` by \`docs/reference/generate-cli.sh\`; do not edit by hand."
  for command in "" keygen export verify list import publish rollback status sign rotate trust "trust add" "trust threshold" "trust list" "trust remove" receipt diff policy "policy check" verdict promote inventory completions man; do
    echo
    echo "## ferry${command:+ $command}"
    echo
    echo '```text'
    COLUMNS=100 "$ferry" $command --help
    echo '```'
  done
} > "$out"
