#!/usr/bin/env bash
# Reproduces the figures of docs/BENCHMARKS.md: builds the release binaries, then for each
# scenario starts a fresh chat-server on loopback (--rate-limit 0: a closed-loop publisher
# and the members sharing its address would otherwise hit the per-address request limit),
# runs the load tester against it with --server-pid, saves the JSON report under docs/bench/
# and stops the server. The `cluster` scenario starts its own redis-server and 1, 2, then 3
# chat-servers joined through it.
#
#   scripts/benchmarks.sh            # every scenario (the 10,000-member sweep takes minutes)
#   scripts/benchmarks.sh fanout     # just one: fanout | half | latency | idle20k | sweep | cluster | sealing
#   TAG=2 scripts/benchmarks.sh fanout   # a repeat, saved as fanout-1000-2.json
#   SERVER_BIN=../old/target/release/chat-server TAG=old scripts/benchmarks.sh fanout
#                                        # the same scenario against another build of the server
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
CLUSTER_PIDS=()
CHANNELS=$(mktemp)
TMP=$(mktemp -d)
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$CHANNELS" "$TMP"
    true
}
trap cleanup EXIT

start_server() {
    "$BIN/load-tester" --print-channels "$1" >"$CHANNELS"
    shift
    "${SERVER_BIN:-$BIN/chat-server}" --bind 127.0.0.1 --port "$PORT" --channels "$CHANNELS" --rate-limit 0 \
        --data "$TMP/data" "$@" 2>>"$OUT/server.log" &
    SERVER_PID=$!
    sleep 0.5
}

stop_pid() {
    # A server still sending the USER_PARTS of a big channel's log-offs drains its queues on
    # SIGTERM; give it 5 s, then stop it hard so the next scenario starts on a quiet machine.
    kill "$1"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.5
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

# The load tester against the server started by start_server, reading its CPU and memory.
lt() {
    "$BIN/load-tester" --server "127.0.0.1:$PORT" --server-pid "$SERVER_PID" "$@"
}

# Runs the load tester (arguments after the first two) while reading Redis's counters: one
# snapshot when it prints that the joins settled (publishing starts 100 ms later), one when
# the planned publishing time is over (before the drain and the log-offs). Adds them to the
# JSON report as "redis" and writes it to $2. $1: the Redis port.
lt_redis() {
    local rport=$1 out=$2
    shift 2
    python3 - "$rport" "$out" "$@" <<'PY'
import json, subprocess, sys, time
rport, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
duration = float(cmd[cmd.index("--duration") + 1])
def stats():
    txt = subprocess.run(["redis-cli", "-p", rport, "info", "stats"],
                         capture_output=True, text=True, check=True).stdout
    kv = dict(l.strip().split(":", 1) for l in txt.splitlines() if ":" in l)
    return {k: int(kv["total_" + k]) for k in ("commands_processed", "net_input_bytes", "net_output_bytes")}
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
before = after = None
for line in p.stderr:
    sys.stderr.write(line)
    if line.startswith("joined ") and before is None:
        before, t0 = stats(), time.monotonic()
        time.sleep(max(0.0, t0 + 0.1 + duration + 0.05 - time.monotonic()))
        after, t1 = stats(), time.monotonic()
report = json.loads(p.stdout.read())
if p.wait() != 0 or before is None:
    sys.exit("load tester failed")
d = {k: after[k] - before[k] for k in before}
d["window_s"] = t1 - t0
m = max(report["messages_sent"], 1)
d["per_message"] = {k: d[k] / m for k in ("commands_processed", "net_input_bytes", "net_output_bytes")}
report["redis"] = d
json.dump(report, open(out, "w"), indent=2)
PY
}

# The table of docs/BENCHMARKS.md's cluster section from docs/bench/cluster-*.json.
cluster_table() {
    python3 - "$OUT" "${TAG:+-$TAG}" <<'PY'
import json, sys
out, tag = sys.argv[1], sys.argv[2]
print("| servers | deliveries/s | ratio to 1 server | loss % | server CPU ns/delivery (sum) | Redis commands/msg | Redis bytes in/msg | Redis bytes out/msg |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
base = None
for n in (1, 2, 3):
    r = json.load(open(f"{out}/cluster-{n}{tag}.json"))
    per = r["redis"]["per_message"]
    base = base or r["deliveries_per_s"]
    cpu = (r.get("server") or {}).get("cpu_ns_per_delivery", 0)
    print(f"| {n} | {r['deliveries_per_s']:,.0f} | {r['deliveries_per_s'] / base:.2f} | {r['loss_pct']:.3f} "
          f"| {cpu:,.0f} | {per['commands_processed']:.2f} | {per['net_input_bytes']:.0f} | {per['net_output_bytes']:.0f} |")
PY
}

# The table of docs/BENCHMARKS.md's sealing section from docs/bench/sealing-*.json.
sealing_table() {
    python3 - "$OUT" "${TAG:+-$TAG}" <<'PY'
import json, sys
out, tag = sys.argv[1], sys.argv[2]
print("| run | members (protected) | deliveries/s | server CPU ns / delivery | loss % |")
print("|---|---:|---:|---:|---:|")
for name in ("guests-1000", "protected-1000", "mixed-2000"):
    r = json.load(open(f"{out}/sealing-{name}{tag}.json"))
    cpu = (r.get("server") or {}).get("cpu_ns_per_delivery", 0)
    print(f"| `sealing-{name}{tag}.json` | {r['clients']:,} ({r.get('protected', 0):,}) "
          f"| {r['deliveries_per_s']:,.0f} | {cpu:,.0f} | {r['loss_pct']:.3f} |")
PY
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
    sealing) # what sealing costs: one server process, three runs of one channel published
        # to as fast as it fans out: 1,000 guests; 1,000 protected members (password login,
        # every datagram sealed); 1,000 guests and 1,000 protected members together.
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --duration 10 --json \
            >"$OUT/sealing-guests-1000${TAG:+-$TAG}.json"
        lt --clients 1000 --protected 1000 --channels 1 --publishers 1 --rate 0 --duration 10 \
            --json >"$OUT/sealing-protected-1000${TAG:+-$TAG}.json"
        lt --clients 2000 --protected 1000 --channels 1 --publishers 1 --rate 0 --duration 10 \
            --json >"$OUT/sealing-mixed-2000${TAG:+-$TAG}.json"
        stop_server
        sealing_table ;;
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
    cluster) # one channel of 1,000 spread over 1, 2 and 3 servers joined by one Redis: each
        # server runs --redis with its own --server-id and port. The hour-long lease TTL keeps
        # the lease renewals (one pipeline of about 3 commands per user every third of the
        # TTL) out of the measured window, so Redis's counters show the messages' traffic only.
        local rport=$((PORT + 100)) n i servers pids
        "$BIN/load-tester" --print-channels 1 >"$CHANNELS"
        redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$TMP" >/dev/null &
        CLUSTER_PIDS+=($!)
        for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/secret"
        for n in 1 2 3; do
            servers=() pids=()
            for i in $(seq "$n"); do
                "$BIN/chat-server" --bind 127.0.0.1 --port $((PORT + i)) --channels "$CHANNELS" \
                    --rate-limit 0 --redis "redis://127.0.0.1:$rport" --server-id "bench$i" \
                    --cluster-secret-file "$TMP/secret" --accounts-off \
                    --lease-ttl-ms 3600000 --data "$TMP/data$i" 2>>"$OUT/server.log" &
                CLUSTER_PIDS+=($!) pids+=(--server-pid $!) servers+=(--server "127.0.0.1:$((PORT + i))")
            done
            sleep 1
            lt_redis "$rport" "$OUT/cluster-$n${TAG:+-$TAG}.json" "$BIN/load-tester" \
                "${servers[@]}" "${pids[@]}" --clients 1000 --channels 1 --publishers 1 --rate 0 \
                --duration 10 --json
            for p in "${pids[@]}"; do [ "$p" = --server-pid ] || stop_pid "$p"; done
        done
        stop_pid "${CLUSTER_PIDS[0]}"
        CLUSTER_PIDS=()
        cluster_table ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

if [ $# -eq 0 ]; then set -- fanout half latency idle20k sweep cluster sealing; fi
for s in "$@"; do
    echo "== $s" >&2
    scenario "$s"
done
