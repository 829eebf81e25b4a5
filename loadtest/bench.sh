#!/usr/bin/env bash
# Haven side by side with its peers, in one run, on this machine.
#
# Installs what the peers need (Debian packages, npm packages, an offline Go
# build of Centrifuge), pins every server to CPU 0 and the load generator to
# CPU 1, runs each server in turn on the same workloads (REPS times each,
# median taken), and writes docs/benchmarks.md and docs/benchmarks.svg.
#
# Usage: loadtest/bench.sh            # the full benchmark (about 30 minutes)
#        loadtest/bench.sh --quick    # one repetition, smaller loads (a try-out)
#
# Environment: REPS (default 3), BENCH_OUT (default target/bench).
# This is a benchmark, not a test: it is not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
if [ "${1:-}" = "--quick" ]; then QUICK=1; fi
REPS=${REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}
OUT=${BENCH_OUT:-target/bench}
RESULTS="$OUT/results.jsonl"
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*" >&2; }
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# --- What the peers need ---------------------------------------------------
CENTRIFUGE_SRC=/usr/share/gocode/src/github.com/centrifugal/centrifuge
APT=()
command -v redis-server >/dev/null || APT+=(redis-server)
command -v go >/dev/null || APT+=(golang-go)
command -v taskset >/dev/null || APT+=(util-linux)
command -v node >/dev/null || APT+=(nodejs npm)
if [ ! -d "$CENTRIFUGE_SRC" ]; then
    # The library package's dependency list is incomplete: the last four are
    # needed to build it.
    APT+=(golang-github-centrifugal-centrifuge-dev golang-github-centrifugal-protocol-dev
          golang-github-fzambia-eagle-dev golang-github-igm-sockjs-go-dev golang-github-mna-redisc-dev)
fi
if [ ${#APT[@]} -gt 0 ]; then
    step "installing ${APT[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT[@]}"
fi

step "building Haven, the load generator and the bare relay (release)"
cargo build --release --locked -p haven-server -p haven-loadtest -p haven-bare-relay
LT=target/release/haven-loadtest

step "installing the Node peers"
(cd loadtest/peers/node && npm ci --no-audit --no-fund --loglevel=error)

step "building the Centrifuge peer (offline, from Debian's Go packages)"
mkdir -p "$OUT/gopath"
(cd loadtest/peers/centrifuge &&
    GO111MODULE=off GOPATH="$PWD/../../../$OUT/gopath:/usr/share/gocode" GOPROXY=off \
    go build -o "../../../$OUT/centrifuge-peer" .)

# --- Pinning ----------------------------------------------------------------
if [ "$(nproc)" -ge 2 ]; then
    SERVER=(taskset -c 0); LOADGEN=(taskset -c 1); SERVER_CPUS=(--server-cpus 0)
else
    echo "warning: one CPU only; server and load generator share it" >&2
    SERVER=(); LOADGEN=(); SERVER_CPUS=()
fi

# --- Redis, for the peers that use it ---------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
"${SERVER[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --loglevel warning > "$OUT/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null || true; [ -n "${PEER_PID:-}" ] && kill $PEER_PID 2>/dev/null || true' EXIT

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2; return 1
}
wait_port "$REDIS_PORT"

# --- Running ------------------------------------------------------------------
: > "$RESULTS"
PEER_PID=""

# start_peer LABEL: starts a peer on a free port; sets PORT, PEER_PID, TARGET
# and EXTRA (more processes whose CPU counts as the server's).
start_peer() {
    PORT=$(free_port); EXTRA=()
    local cmd
    case "$1" in
        bare-relay) TARGET=relay; cmd=(target/release/haven-bare-relay --listen "127.0.0.1:$PORT") ;;
        node-ws) TARGET=relay; cmd=(node loadtest/peers/node/ws.js --listen "127.0.0.1:$PORT") ;;
        uws) TARGET=relay; cmd=(node loadtest/peers/node/uws.js --listen "127.0.0.1:$PORT") ;;
        socketio) TARGET=socketio; cmd=(node loadtest/peers/node/socketio.js --listen "127.0.0.1:$PORT") ;;
        socketio-redis) TARGET=socketio; EXTRA=(--server-pid "$REDIS_PID")
            cmd=(node loadtest/peers/node/socketio.js --listen "127.0.0.1:$PORT"
                 --redis "redis://127.0.0.1:$REDIS_PORT") ;;
        centrifuge) TARGET=centrifuge; cmd=("$OUT/centrifuge-peer" -listen "127.0.0.1:$PORT") ;;
        centrifuge-redis) TARGET=centrifuge; EXTRA=(--server-pid "$REDIS_PID")
            cmd=("$OUT/centrifuge-peer" -listen "127.0.0.1:$PORT" -redis "127.0.0.1:$REDIS_PORT") ;;
    esac
    "${SERVER[@]}" "${cmd[@]}" > "$OUT/peer-$1.log" 2>&1 &
    PEER_PID=$!
    wait_port "$PORT"
}

stop_peer() {
    kill "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
    PEER_PID=""
}

# run LABEL SCENARIO ARGS...: one measurement, appended to the results.
run() {
    local label=$1 scenario=$2; shift 2
    printf '  %-17s %-6s %s\n' "$label" "$scenario" "$*" >&2
    local line
    if [ "$label" = haven ]; then
        line=$("${LOADGEN[@]}" "$LT" "$scenario" --spawn target/release/haven "${SERVER_CPUS[@]}" \
            --label haven --json "$@" || true)
    else
        start_peer "$label"
        line=$("${LOADGEN[@]}" "$LT" "$scenario" --target "$TARGET" --url "ws://127.0.0.1:$PORT" \
            --server-pid "$PEER_PID" "${EXTRA[@]}" --label "$label" --json "$@" || true)
        stop_peer
    fi
    if [ -n "$line" ]; then
        echo "$line" >> "$RESULTS"
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("    %s µs/msg, %.0f msg/s, p99 %.2f ms, %s KiB/socket, lost %d, errors %d%s" % (
            "%.1f" % r["server_cpu_us_per_msg"] if r.get("server_cpu_us_per_msg") else "-", r["msgs_per_s"], r["rtt"]["p99"],
            "%.1f" % r["server_rss_kb_per_conn"] if r.get("server_rss_kb_per_conn") else "-", r["lost"], r["errors"],
            "  (" + "; ".join(r["warnings"]) + ")" if r["warnings"] else ""))' "$line" >&2
    else
        echo "    (the run failed; see above)" >&2
    fi
}

PEERS=(haven bare-relay node-ws uws socketio socketio-redis centrifuge centrifuge-redis)
if [ -n "$QUICK" ]; then
    CHAT_LOADS=("1000 5"); IDLE_PEERS=3000; IDLE_HAVEN=3000; BIG=3000; DURATION=5s
else
    CHAT_LOADS=("1000 5" "2000 5"); IDLE_PEERS=9000; IDLE_HAVEN=10000; BIG=10000; DURATION=10s
fi

for rep in $(seq "$REPS"); do
    step "repetition $rep of $REPS"
    for load in "${CHAT_LOADS[@]}"; do
        set -- $load
        for peer in "${PEERS[@]}"; do
            run "$peer" chat --sessions "$1" --rate "$2" --duration "$DURATION"
        done
    done
    # Idle memory: as many sessions as fit under the open-file limit of
    # 20,000 per process. Haven's counsellor bots take two sessions each.
    for peer in "${PEERS[@]}"; do
        if [ "$peer" = haven ]; then
            run haven idle --sessions "$IDLE_HAVEN" --capacity 2 --duration 5s
        else
            run "$peer" idle --sessions "$IDLE_PEERS" --duration 5s
        fi
    done
    # Haven alone: many sessions at once, connections coming and going,
    # and a queue.
    run haven chat --sessions "$BIG" --capacity 2 --rate 1 --duration "$DURATION"
    run haven churn --sessions 1000 --rate 5 --churn-rate 200 --duration "$DURATION"
    run haven queue --sessions 2000 --counsellors 20 --capacity 3 --messages 3 --rate 5 --duration 60s
done

# --- The page ------------------------------------------------------------------
step "writing docs/benchmarks.md"
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
    echo "Measured on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\` with"
    echo "\`loadtest/bench.sh${QUICK:+ --quick}\` ($REPS repetitions; each row is their median)."
    echo
    echo "Machine: $(nproc) × $CPU_MODEL, $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)."
    echo "Every server runs pinned to CPU 0 (one core: Tokio runs single-threaded,"
    echo "Node and Go on one thread); the load generator runs pinned to CPU 1. Loopback, 100-byte"
    echo "messages. Peers: $(node --version) with ws $(node -p 'require("./loadtest/peers/node/node_modules/ws/package.json").version'),"
    echo "uWebSockets.js (npm uwebsockets $(node -p 'require("./loadtest/peers/node/node_modules/uwebsockets/package.json").version')),"
    echo "socket.io $(node -p 'require("./loadtest/peers/node/node_modules/socket.io/package.json").version')"
    echo "(and its Redis adapter), Centrifuge from Debian's Go packages built with $(go version | awk '{print $3}'),"
    echo "$(redis-server --version | awk '{print $1, $2, $3}')."
    echo
    cat loadtest/BENCHMARK-NOTES.md
    # The transcripts' figures come from their own script.
    if [ -f loadtest/TRANSCRIPTS.md ]; then echo; cat loadtest/TRANSCRIPTS.md; fi
} > "$OUT/preamble.md"
"$LT" report --results "$RESULTS" --out docs/benchmarks.md --plot docs/benchmarks.svg --preamble "$OUT/preamble.md"
step "done: docs/benchmarks.md ($(wc -l < "$RESULTS") runs in $RESULTS)"
