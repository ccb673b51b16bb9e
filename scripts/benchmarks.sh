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
#                                    #   | batch | light | halfraw | fill | sweepbatch | sealbatch
#   BATCH_BYTES=8000 scripts/benchmarks.sh batch   # batch clients asking for 8000-byte batches
#   scripts/benchmarks.sh multicast  # multicast channels (needs root for its network namespace):
#                                    # mcast-fanout, mcast-cpu, mcast-mixed; each may run alone
#   scripts/benchmarks.sh mcast-batch   # multicast members that also ask for batches
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
BENCH_NS=
cleanup() {
    # Each kill may find its process gone already; that must not end the clean-up early
    # (under set -e) and leave the others running.
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$BENCH_NS" ]; then ip netns del "$BENCH_NS" 2>/dev/null || true; fi
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
    # A server that could not bind (another one on $PORT) must not leave the load tester
    # measuring whatever answers there.
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "chat-server did not start on port $PORT" >&2; exit 1; }
}

stop_pid() {
    # A server still sending the USER_PARTS of a big channel's log-offs drains its queues on
    # SIGTERM; give it 5 s, then stop it hard so the next scenario starts on a quiet machine.
    kill "$1" 2>/dev/null || return 0 # already gone
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
    ${LT_PREFIX:-} "$BIN/load-tester" --server "127.0.0.1:$PORT" --server-pid "$SERVER_PID" "$@"
}

# A private network namespace for the multicast CPU figures: its own loopback, whose
# receive processing RPS hands to CPU 1, while the server runs pinned to CPU 0. On
# loopback the kernel makes a multicast datagram's copies for the receiving sockets in
# softirq on the sending CPU, billed to the sender, so the server's CPU would include the
# receivers' side (as the switch and the receiving machines do it on a LAN); with RPS that
# work runs on the other CPU, and the server's CPU is its own. Prints nothing; sets
# BENCH_NS.
bench_ns() {
    BENCH_NS="udpchat-bench-$$"
    ip netns add "$BENCH_NS"
    ip -n "$BENCH_NS" link set lo up
    ip netns exec "$BENCH_NS" sh -c 'echo 2 > /sys/class/net/lo/queues/rx-0/rps_cpus'
}

# Starts a server like start_server, inside $BENCH_NS, pinned to CPU 0.
start_server_ns() {
    "$BIN/load-tester" --print-channels "$1" >"$CHANNELS"
    shift
    ip netns exec "$BENCH_NS" taskset -c 0 "$BIN/chat-server" --bind 127.0.0.1 --port "$PORT" \
        --channels "$CHANNELS" --rate-limit 0 --data "$TMP/data" "$@" 2>>"$OUT/server.log" &
    # `ip netns exec` and `taskset` exec the server in their place: $! is the server.
    SERVER_PID=$!
    sleep 0.5
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "chat-server did not start on port $PORT" >&2; exit 1; }
}

# The table of docs/BENCHMARKS.md's multicast section from docs/bench/multicast-*.json.
multicast_table() {
    python3 - "$OUT" "${TAG:+-$TAG}" <<'PY'
import json, os, sys
out, tag = sys.argv[1], sys.argv[2]
def load(name):
    path = f"{out}/{name}{tag}.json"
    return json.load(open(path)) if os.path.exists(path) else None
for name, window, what in (("multicast-1000", 4, ""), ("multicast-1000-w16", 16, ""),
                           ("multicast-batch-1000", 256, " asking for batches")):
    r = load(name)
    if not r:
        continue
    raw, rawm = r["raw"], r["raw_multicast"]
    per = r.get("events_per_datagram") or 1.0
    print(f"one channel of 1,000 multicast members{what}, flat out, window {window}: server {r['deliveries_per_s']:,.0f} events/s "
          f"({per:.2f} per datagram), raw multicast {rawm['deliveries_per_s']:,.0f}/s ({r['deliveries_per_s'] / rawm['deliveries_per_s']:.2f}x), "
          f"raw unicast {raw['deliveries_per_s']:,.0f}/s ({r['deliveries_per_s'] / raw['deliveries_per_s']:.2f}x), "
          f"loss {r['loss_pct']:.3f}%")
for where in ("rps", "loopback"):
    rows = [(n, load(f"multicast-cpu-{where}-{n}")) for n in (100, 1000, 10000)]
    rows = [(n, x) for n, x in rows if x]
    if not rows:
        continue
    base = rows[0][1]["server"]["cpu_ns_per_message"]
    print(f"server CPU per message ({where}): " + ", ".join(
        f"{n:,} members {x['server']['cpu_ns_per_message'] / 1000:,.1f} us ({x['server']['cpu_ns_per_message'] / base:.2f}x), loss {x['loss_pct']:.3f}%"
        for n, x in rows))
for name in ("multicast-mixed", "multicast-mixed-rate"):
    r = load(name)
    if r:
        m = r.get("multicast") or {}
        print(f"{name}: {r['deliveries_received']:,}/{r['deliveries_expected']:,} delivered, loss {r['loss_pct']:.4f}%, "
              f"{m.get('confirmed')}/{m.get('members')} multicast members confirmed")
PY
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

# Starts a redis-server of the script's own on $1 (for --compare-redis and the cluster).
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --dir "$TMP" >/dev/null &
    CLUSTER_PIDS+=($!)
    for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
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
    sealbatch) # sealing and batching together: one server, one channel of 1,000 clients
        # granted batch published to flat out, first guests, then protected members (each
        # member's batches sealed for it alone)
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --window 256 --duration 10 \
            --batch --rcvbuf 1048576 --json >"$OUT/sealbatch-guests-1000${TAG:+-$TAG}.json"
        lt --clients 1000 --protected 1000 --channels 1 --publishers 1 --rate 0 --window 256 \
            --duration 10 --batch --rcvbuf 1048576 --json \
            >"$OUT/sealbatch-protected-1000${TAG:+-$TAG}.json"
        stop_server ;;
    idle20k) # target 4: 20,000 clients logged in and kept alive (several processes); the
        # short idle timeout makes a missed keepalive show as `expired` within the run
        start_server 200 --idle-timeout 20 --check-interval 5
        lt --clients 20000 --channels 200 --publishers 0 --duration 40 --keepalive 10 --json \
            >"$OUT/idle-20000.json"
        stop_server ;;
    sweep) # target 5 and the chart: one channel of 100, 1,000 and 10,000 members
        # (SWEEP_SIZES=100,1000,3000 for a shorter run: 10,000 classic joins take minutes)
        local chart=()
        [ -z "${TAG:-}" ] && chart=(--chart docs/fanout.svg)
        start_server 3
        lt --sweep "${SWEEP_SIZES:-100,1000,10000}" --publishers 1 --rate 0 --duration 10 --raw \
            --json "${chart[@]}" >"$OUT/sweep${TAG:+-$TAG}.json"
        stop_server ;;
    cluster) # one channel of 1,000 spread over 1, 2 and 3 servers joined by one Redis: each
        # server runs --redis with its own --server-id and port. The hour-long lease TTL keeps
        # the lease renewals (one pipeline of about 3 commands per user every third of the
        # TTL) out of the measured window, so Redis's counters show the messages' traffic only.
        local rport=$((PORT + 100)) n i servers pids
        "$BIN/load-tester" --print-channels 1 >"$CHANNELS"
        start_redis "$rport"
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
    multicast) # all three multicast scenarios below
        scenario mcast-fanout
        scenario mcast-cpu
        scenario mcast-mixed
        multicast_table ;;
    mcast-fanout) # one channel of 1,000 multicast members, publishing flat out, beside the raw
        # unicast blaster and the raw multicast blaster (one socket sending to the group):
        # with the publisher's default window of 4 messages in flight, and with 16 (the raw
        # multicast blaster keeps the same window)
        start_server 1 --multicast 239.77.0.0/24
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --duration 10 --raw --multicast \
            --json >"$OUT/multicast-1000${TAG:+-$TAG}.json"
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --duration 10 --raw --multicast \
            --window 16 --json >"$OUT/multicast-1000-w16${TAG:+-$TAG}.json"
        stop_server ;;
    mcast-cpu) # the server's CPU per message at 100, 1,000 and 10,000 multicast members, at
        # one message rate for all (50/s: flat out, a small channel runs far more messages a
        # second, and a busier server spends less per message on waking threads). Keepalives
        # are pushed out of the measured window (their cost grows with the members). First
        # in $BENCH_NS (see bench_ns), then on the shared loopback for comparison.
        bench_ns
        for n in 100 1000 10000; do
            start_server_ns 1 --multicast 239.77.0.0/24 --idle-timeout 3600
            LT_PREFIX="ip netns exec $BENCH_NS" lt --clients "$n" --publishers 1 --rate 50 \
                --duration 10 --multicast --keepalive 3000 --json \
                >"$OUT/multicast-cpu-rps-$n${TAG:+-$TAG}.json"
            stop_server
        done
        ip netns del "$BENCH_NS"
        BENCH_NS=
        # (10,000 members on the shared loopback: every message's 10,000 copies billed to
        # the server's sender thread, and the receivers fall behind; 100 and 1,000 show it.)
        for n in 100 1000; do
            start_server 1 --multicast 239.77.0.0/24 --idle-timeout 3600
            lt --clients "$n" --publishers 1 --rate 50 --duration 10 --multicast --keepalive 3000 \
                --json >"$OUT/multicast-cpu-loopback-$n${TAG:+-$TAG}.json"
            stop_server
        done ;;
    mcast-mixed) # ten channels of 100: lt5 to lt9 `multicast = false` in the channels file,
        # and every other member of every channel a classic client; flat out, then at a
        # planned rate
        "$BIN/load-tester" --print-channels 10 | awk '
            /^title = "lt[5-9]"/ { print; print "multicast = false"; next } { print }
        ' >"$TMP/mixed.toml"
        "$BIN/chat-server" --bind 127.0.0.1 --port "$PORT" --channels "$TMP/mixed.toml" \
            --rate-limit 0 --data "$TMP/data" --multicast 239.77.0.0/24 2>>"$OUT/server.log" &
        SERVER_PID=$!
        sleep 0.5
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "chat-server did not start on port $PORT" >&2; exit 1; }
        lt --clients 1000 --channels 10 --publishers 10 --rate 0 --duration 10 --multicast \
            --multicast-share 0.5 --json >"$OUT/multicast-mixed${TAG:+-$TAG}.json"
        lt --clients 1000 --channels 10 --publishers 10 --rate 50 --duration 10 --multicast \
            --multicast-share 0.5 --json >"$OUT/multicast-mixed-rate${TAG:+-$TAG}.json"
        stop_server ;;
    mcast-batch) # multicast and batching together: one channel of 1,000 multicast members
        # that also ask for batches (the group's CHANNEL_DATA then carries BATCHes),
        # published to flat out with the `batch` scenario's window of 256, beside both raw
        # blasters (the raw multicast blaster keeps the same window)
        start_server 1 --multicast 239.77.0.0/24
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --window 256 --duration 10 \
            --batch="${BATCH_BYTES:-1200}" --rcvbuf 1048576 --raw --multicast --json \
            >"$OUT/multicast-batch-1000${TAG:+-$TAG}.json"
        stop_server
        multicast_table ;;
    batch) # issue 11, targets 1 and 6: one channel of 1,000 clients granted batch, publishing
        # as fast as the server fans out (a window of 256 messages in flight, so that
        # events can wait for the busy senders), then the raw blaster and Redis PUBLISH to
        # 1,000 TCP subscribers with the same window, all in one run. The member sockets
        # ask for 1 MiB receive buffers (raw phase included): the load tester's one
        # receiver thread, on the cores the server uses, falls behind in bursts
        local rport=$((PORT + 100)) bytes=${BATCH_BYTES:-1200}
        start_redis "$rport"
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate 0 --window 256 --duration 10 \
            --batch="$bytes" --rcvbuf 1048576 --raw --compare-redis "127.0.0.1:$rport" --json \
            >"$OUT/batch-$bytes-1000${TAG:+-$TAG}.json"
        stop_server
        stop_pid "${CLUSTER_PIDS[0]}"
        CLUSTER_PIDS=() ;;
    light) # issue 11, target 3: 10 messages/s into one channel of 1,000 where every other
        # client asks for batches: both kinds' latency from the same messages
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate 10 --duration 20 --batch --mixed \
            --json >"$OUT/light-mixed-1000${TAG:+-$TAG}.json"
        stop_server ;;
    halfraw) # issue 11, target 4: half of the classic saturation rate measured by `fanout`
        # (same TAG) into 1,000 classic clients, then the raw blaster paced at that rate;
        # RCVBUF=1048576 gives the member sockets bigger receive buffers (both phases)
        local sat rate
        sat=$(python3 -c "import json;print(json.load(open('$OUT/fanout-1000${TAG:+-$TAG}.json'))['deliveries_per_s'])")
        rate=$(python3 -c "print(round($sat / 1000 / 2))")
        start_server 1
        lt --clients 1000 --channels 1 --publishers 1 --rate "$rate" --duration 20 --raw \
            ${RCVBUF:+--rcvbuf "$RCVBUF"} --json >"$OUT/half-raw-1000${TAG:+-$TAG}.json"
        stop_server ;;
    fill) # issue 11, target 5: 10,000 clients granted batch join one channel (every member
        # hears of every later joiner); FILL_CLASSIC=1 also times classic clients (minutes)
        start_server 1
        lt --clients 10000 --channels 1 --publishers 0 --duration 1 --batch \
            --json >"$OUT/fill-10000-batch${TAG:+-$TAG}.json"
        stop_server
        if [ -n "${FILL_CLASSIC:-}" ]; then
            start_server 1
            lt --clients 10000 --channels 1 --publishers 0 --duration 1 \
                --json >"$OUT/fill-10000-classic${TAG:+-$TAG}.json"
            stop_server
        fi ;;
    sweepbatch) # issue 11's chart: the sweep of `sweep` (same SWEEP_SIZES and TAG: run
        # `sweep` first) with clients granted batch (window 256), drawn with the classic
        # sweep on one chart
        start_server 3
        lt --sweep "${SWEEP_SIZES:-100,1000,10000}" --publishers 1 --rate 0 --window 256 \
            --duration 10 --batch --rcvbuf 1048576 --raw --json \
            >"$OUT/sweep-batch${TAG:+-$TAG}.json"
        stop_server
        "$BIN/load-tester" --chart-from "$OUT/sweep${TAG:+-$TAG}.json" \
            --chart-from "$OUT/sweep-batch${TAG:+-$TAG}.json" --chart docs/fanout-batch.svg ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

if [ $# -eq 0 ]; then set -- fanout half latency idle20k sweep cluster sealing batch light halfraw fill sweepbatch; fi
for s in "$@"; do
    echo "== $s" >&2
    scenario "$s"
done
