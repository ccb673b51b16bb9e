#!/usr/bin/env bash
# Reproduces the figures of docs/BENCHMARKS.md: builds the release binaries, then for each
# scenario starts a fresh chat-server on loopback, runs the load tester against it with
# --server-pid, saves the JSON report under docs/bench/ and stops the server.
#
#   scripts/benchmarks.sh            # every scenario (the 10,000-member sweep takes minutes)
#   scripts/benchmarks.sh fanout     # just one: fanout | half | latency | idle20k | sweep
#   TAG=2 scripts/benchmarks.sh fanout   # a repeat, saved as fanout-1000-2.json
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -p udpchat --bin chat-server >&2
cargo build --release -p load-tester >&2
BIN="$CARGO_TARGET_DIR/release"
OUT=docs/bench
mkdir -p "$OUT"
PORT="${PORT:-2027}"
SERVER_PID=
CHANNELS=$(mktemp)
trap 'rm -f "$CHANNELS"; [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true' EXIT

start_server() {
    "$BIN/load-tester" --print-channels "$1" >"$CHANNELS"
    shift
    "$BIN/chat-server" --bind 127.0.0.1 --port "$PORT" --channels "$CHANNELS" "$@" 2>>"$OUT/server.log" &
    SERVER_PID=$!
    sleep 0.5
}

stop_server() {
    # A server still sending the USER_PARTS of a big channel's log-offs drains its queues on
    # SIGTERM; give it 5 s, then stop it hard so the next scenario starts on a quiet machine.
    kill "$SERVER_PID"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

lt() {
    "$BIN/load-tester" --server "127.0.0.1:$PORT" --server-pid "$SERVER_PID" "$@"
}

scenario() {
    case "$1" in
    fanout) # targets 1 and 2: one channel of 1,000, publishing as fast as the server fans out
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --duration 10 --raw --json \
            >"$OUT/fanout-1000${TAG:+-$TAG}.json"
        stop_server ;;
    half) # target 3: half of the saturation rate measured by `fanout`
        local sat rate
        sat=$(python3 -c 'import json;print(json.load(open("docs/bench/fanout-1000.json"))["deliveries_per_s"])')
        rate=$(python3 -c "print(round($sat / 1000 / 2))")
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate "$rate" --duration 20 --json \
            >"$OUT/half-load-1000.json"
        stop_server ;;
    latency) # where target 3's latency comes from: a light load on the same channel, and
        # half load spread over ten channels of 100 (short bursts instead of 1,000-long ones)
        local sat
        sat=$(python3 -c 'import json;print(json.load(open("docs/bench/fanout-1000.json"))["deliveries_per_s"])')
        start_server 10
        lt --clients 1000 --channels 1 --publishers 1 --rate 10 --duration 20 --json \
            >"$OUT/light-load-1000.json"
        lt --clients 1000 --channels 10 --publishers 10 --rate "$(python3 -c "print(round($sat / 1000 / 2))")" \
            --duration 20 --json >"$OUT/half-load-10x100.json"
        stop_server ;;
    idle20k) # target 4: 20,000 clients logged in and kept alive (several processes); the
        # short idle timeout makes a missed keepalive show as `expired` within the run
        start_server 200 --idle-timeout 20 --check-interval 5
        lt --clients 20000 --channels 200 --publishers 0 --duration 40 --keepalive 10 --json \
            >"$OUT/idle-20000.json"
        stop_server ;;
    sweep) # target 5 and the chart: one channel of 100, 1,000 and 10,000 members
        start_server 3
        lt --sweep 100,1000,10000 --publishers 1 --rate 0 --duration 10 --raw --json \
            --chart docs/fanout.svg >"$OUT/sweep.json"
        stop_server ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

if [ $# -eq 0 ]; then set -- fanout half latency idle20k sweep; fi
for s in "$@"; do
    echo "== $s" >&2
    scenario "$s"
done
