#!/usr/bin/env bash
# Runs a test command, passes its output through, and ends with one plain
# 'N passed, N failed' line summed over every cargo test binary, so the last
# line says what the whole run did (cargo's own last line is often an empty
# doc-test binary's "0 passed").
set -uo pipefail
log=$(mktemp)
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '; [0-9]+ failed' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
echo "summary: $passed passed, $failed failed"
exit "$rc"
