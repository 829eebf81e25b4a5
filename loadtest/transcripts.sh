#!/usr/bin/env bash
# What encrypted transcripts cost, and whether they survive crashes: the
# "Transcripts" section of docs/benchmarks.md.
#
# 1. The chat load at 2000 sessions, transcripts off and on, at 1 and 2
#    messages a second per help-seeker (each echoed: 4000 and 8000 relayed
#    a second). Same machine, same build, unpinned (the writer threads
#    seal on whichever core is free, as in production).
# 2. Bytes per record and CPU per seal, from the server's own counters.
# 3. The crash test's long run: SIGKILL at a random moment, 200 times.
#
# Writes loadtest/TRANSCRIPTS.md, which loadtest/bench.sh puts into
# docs/benchmarks.md. Usage: loadtest/transcripts.sh   (about 6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p haven-server -p haven-loadtest
OUT=${BENCH_OUT:-target/bench}
mkdir -p "$OUT"
KEY="$OUT/transcripts-identity.txt"
rm -f "$KEY"
RECIPIENT=$(target/release/haven keygen --out "$KEY")
SESSIONS=${SESSIONS:-2000}
DURATION=${DURATION:-20s}

run() { # mode rate
    HAVEN_TRANSCRIPTS=$1 HAVEN_TRANSCRIPT_RECIPIENTS=$RECIPIENT \
        target/release/haven-loadtest chat --spawn target/release/haven \
        --sessions "$SESSIONS" --rate "$2" --duration "$DURATION" --json \
        --label "transcripts $1" 2>/dev/null
}

ROWS=""
for rate in 1 2; do
    for mode in off on; do
        echo "==> $SESSIONS sessions, rate $rate, transcripts $mode" >&2
        line=$(run "$mode" "$rate")
        ROWS+=$(python3 - "$line" "$mode" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
print(f"| {sys.argv[2]} | {d['msgs_per_s']:.0f} | {d['rtt']['p50']:.2f} | {d['rtt_p99_ms']:.2f} "
      f"| {d['ack']['p50']:.2f} | {d['ack_p99_ms']:.2f} | {d['server_cpu_us_per_msg']:.0f} "
      f"| {d['server_cpu_pct']:.0f}% | {d['lost']} | {d['errors']} |")
PY
)
        ROWS+=$'\n'
    done
done

echo "==> bytes per record" >&2
BYTES=$(cargo test -q --release -p haven-transcript --test format -- --ignored --nocapture record_cost 2>/dev/null | grep '^record cost' || true)

echo "==> crash test, 200 runs" >&2
CRASH=$(HAVEN_CRASH_RUNS=200 cargo test -q --release -p haven-server --test it \
    crash::after_sigkill -- --nocapture 2>&1 | grep '^crash runs' || echo "crash test FAILED")

{
    echo "## Transcripts"
    echo
    echo "Measured on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\` with"
    echo "\`loadtest/transcripts.sh\`: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
    echo "$(df -T target | awk 'NR==2{print $2}') data dir, $SESSIONS sessions, 100-byte messages, unpinned."
    echo "Round trip: a help-seeker's message to its echo. Ack: send to the broker's ack, which"
    echo "with transcripts on waits for the record's sync. CPU: the server's, per relayed message."
    echo
    echo "| transcripts | relayed/s | round trip p50 ms | p99 ms | ack p50 ms | ack p99 ms | CPU µs/msg | server CPU | lost | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s' "$ROWS"
    echo
    echo "$BYTES"
    echo
    echo "Crash safety (\`HAVEN_CRASH_RUNS=200\`, three chats at once, killed with SIGKILL"
    echo "30–400 ms in, restarted on the same data dir, every transcript read back):"
    echo
    echo "> $CRASH"
} > loadtest/TRANSCRIPTS.md
cat loadtest/TRANSCRIPTS.md
