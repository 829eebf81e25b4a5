#!/usr/bin/env bash
# User-space instructions the server spends per relayed chat message,
# counted by callgrind: a figure that does not move with the machine's
# load, for comparing two builds where CPU time (±15 % between runs on a
# shared virtual machine) cannot tell a 5 % change from noise.
#
# Starts the given haven under callgrind with instrumentation off, runs a
# steady chat load (SESSIONS help-seekers at 5 messages a second, each
# echoed), switches instrumentation on once the sessions are matched,
# counts for 15 seconds, and divides by the messages the server relayed in
# that window (haven_messages_relayed_total). Kernel time is not in it.
#
# Usage: loadtest/instructions.sh [HAVEN_BINARY] [SESSIONS]
#        (default target/release/haven, 100 sessions; about a minute)
#        KEEP_CALLGRIND=FILE keeps the callgrind profile of the window there.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$(realpath "${1:-target/release/haven}")
SESSIONS=${2:-100}
if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind
fi
cargo build --release -q -p haven-loadtest
OUT=$(mktemp -d)
trap '[ -n "${KEEP_CALLGRIND:-}" ] && cp "$OUT/callgrind.out.1" "$KEEP_CALLGRIND"; rm -rf "$OUT"' EXIT

# The load generator starts what it is given with the server's arguments:
# put callgrind in front of `serve` only (not of `account add`).
cat > "$OUT/haven" <<EOF
#!/bin/sh
if [ "\$1" = serve ]; then
    exec valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$OUT/callgrind.out" "$BIN" "\$@"
fi
exec "$BIN" "\$@"
EOF
chmod +x "$OUT/haven"

target/release/haven-loadtest chat --spawn "$OUT/haven" --sessions "$SESSIONS" \
    --rate 5 --duration 45s --json > "$OUT/run.json" 2> "$OUT/run.log" &
LOAD=$!

pid=""
for _ in $(seq 240); do
    pid=$(pgrep -f "callgrind-out-file=$OUT/" | head -1 || true)
    [ -n "$pid" ] && break
    sleep 0.5
done
[ -n "$pid" ] || { echo "the server did not start; see $OUT/run.log" >&2; exit 1; }
port=""
for _ in $(seq 240); do
    port=$(ss -ltnp 2>/dev/null | awk -v p="pid=$pid," 'index($0, p) { sub(/.*:/, "", $4); print $4; exit }')
    [ -n "$port" ] && break
    sleep 0.5
done
relayed() {
    curl -s -H "Authorization: Bearer haven-loadtest" "http://127.0.0.1:$port/metrics" | awk '/^haven_messages_relayed_total/ { print $2 }'
}
# Wait until every session has chatted a little.
for _ in $(seq 240); do
    n=$(relayed)
    [ -n "$n" ] && [ "$n" -gt $((SESSIONS * 20)) ] && break
    sleep 0.5
done

callgrind_control -i on "$pid" > /dev/null 2>&1
before=$(relayed)
sleep 15
after=$(relayed)
callgrind_control -d "$pid" > /dev/null 2>&1
callgrind_control -i off "$pid" > /dev/null 2>&1
# The dump is the window alone (part 1); what follows it was not counted.
total=$(callgrind_annotate "$OUT/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ { gsub(",", "", $1); print $1 }')
wait "$LOAD" || true

messages=$((after - before))
echo "$(basename "$BIN"): $messages messages relayed, $total instructions, $((total / messages)) per message"
