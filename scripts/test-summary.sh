#!/usr/bin/env bash
# Runs a test command, passes its output through, and ends with one plain
# 'N passed, N failed' line summed over every cargo test binary, so the last
# line says what the whole run did (cargo's own last line is often an empty
# doc-test binary's "0 passed").
set -uo pipefail
log=$(mktemp)
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# cargo test binaries, plus tools that print their own 'NAME: N passed, N failed'.
passed=$( (grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{print $4}';
           grep -E '^[a-z ]+: [0-9]+ passed, [0-9]+ failed$' "$log" | awk -F': ' '{split($2,a," "); print a[1]}') | awk '{s+=$1} END {print s+0}')
failed=$( (grep -Eo '; [0-9]+ failed' "$log" | awk '{print $2}';
           grep -E '^[a-z ]+: [0-9]+ passed, [0-9]+ failed$' "$log" | awk -F', ' '{split($2,a," "); print a[1]}') | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "summary: $passed passed, $failed failed"
exit "$rc"
