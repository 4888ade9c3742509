#!/usr/bin/env bash
# Runs every fuzz target (or those named) for FUZZ_TIME seconds each, one
# after the other, and prints a table: executions, exec/s, libFuzzer's
# final cov and ft, corpus size, and crashes found.
#
#   FUZZ_TIME=60 bash fuzz/run.sh [target ...]
#
# Each target starts from its committed seeds (fuzz/seeds/<target>, read
# only) and its own corpus (fuzz/corpus/<target>, gitignored, grows from run
# to run). Crashing inputs land in fuzz/artifacts/<target>/, logs in
# fuzz/logs/. libFuzzer stops a target at its first crash; reproduce one
# with `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_TIME=${FUZZ_TIME:-60}
ALL=(graph_wan graph_lan dhcp4_server dhcp6_client ra_ndp_arp mld config ctl_request
    dhcp6_server lan_ra aftr_resolver dns_proxy graph_napt hb46pp_reply http_response)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

# Longest input per target: a few full-size frames for the graph, several
# messages for the protocol engines, a large config, a long request line.
max_len() {
    case "$1" in
    graph_wan | graph_lan | graph_napt) echo 8192 ;;
    dhcp4_server | dhcp6_client | ra_ndp_arp | mld) echo 4096 ;;
    dhcp6_server | lan_ra | aftr_resolver | dns_proxy) echo 4096 ;;
    hb46pp_reply | http_response) echo 16384 ;;
    config) echo 8192 ;;
    ctl_request) echo 2048 ;;
    *) echo 4096 ;;
    esac
}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "run.sh: needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ $# -eq 0 ]; then
    cargo +nightly fuzz build
else
    for t in "${TARGETS[@]}"; do
        cargo +nightly fuzz build "$t"
    done
fi
BIN=fuzz/target/x86_64-unknown-linux-gnu/release

mkdir -p fuzz/logs
SUMMARY=fuzz/logs/summary.txt
: >"$SUMMARY"
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
    stamp=$(mktemp)
    log="fuzz/logs/$t.log"
    echo "run.sh: $t for ${FUZZ_TIME}s (log: $log)" >&2
    start=$(date +%s)
    set +e
    "$BIN/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
        -max_total_time="$FUZZ_TIME" -max_len="$(max_len "$t")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(find "fuzz/corpus/$t" -type f | wc -l)
    found=$(find "fuzz/artifacts/$t" -type f -newer "$stamp")
    crashes=$(grep -c . <<<"$found" || true)
    rm -f "$stamp"
    printf '%s %s %s %s %s %s %s %s %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$corp" "$crashes" "$rc" >>"$SUMMARY"
    if [ "$crashes" -gt 0 ]; then
        echo "run.sh: $t: $crashes crash artifact(s):" >&2
        sed 's/^/  /' <<<"$found" >&2
    fi
done

echo
printf '%-14s %7s %12s %8s %6s %7s %7s %8s\n' target seconds executions exec/s cov ft corpus crashes
while read -r t secs execs rate cov ft corp crashes rc; do
    printf '%-14s %7s %12s %8s %6s %7s %7s %8s\n' "$t" "$secs" "$execs" "$rate" "$cov" "$ft" "$corp" "$crashes"
done <"$SUMMARY"
