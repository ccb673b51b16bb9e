#!/usr/bin/env bash
# Measures the Redis traffic of one public message in a cluster: starts redis-server and
# three chat-servers on loopback, puts one member of channel Pets on each, sends N public
# messages from the first, and reads Redis's counters before and after.
# Usage: scripts/cluster-traffic.sh [N] [path to chat-server]
set -euo pipefail
N=${1:-1000}
BIN=${2:-target/release/chat-server}
RPORT=$((20000 + RANDOM % 10000))
BASE=$((30000 + RANDOM % 10000))
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --dir "$tmp" >/dev/null &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/secret"
for i in 1 2 3; do
    "$BIN" --bind 127.0.0.1 --port $((BASE + i)) --redis "redis://127.0.0.1:$RPORT" \
        --cluster-secret-file "$tmp/secret" --accounts-off \
        --server-id "t$i" --data "$tmp/d$i" --workers 1 --senders 1 2>"$tmp/s$i.log" &
    pids+=($!)
done
sleep 1

python3 - "$BASE" "$N" "$RPORT" <<'PY'
import socket, struct, subprocess, sys, time
base, n, rport = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def dgram(code, text): return struct.pack(">H", code) + text.encode()
def stats():
    out = subprocess.run(["redis-cli", "-p", rport, "info", "stats"], capture_output=True, text=True).stdout
    kv = dict(l.strip().split(":", 1) for l in out.splitlines() if ":" in l)
    return {k: int(kv[k]) for k in ("total_commands_processed", "total_net_input_bytes", "total_net_output_bytes")}
peers = []
for i in (1, 2, 3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0)); s.settimeout(2)
    srv = ("127.0.0.1", base + i)
    s.sendto(dgram(20, f"user{i}"), srv); s.recv(2048)
    s.sendto(dgram(50, "Pets"), srv); s.recv(2048)
    peers.append((s, srv))
time.sleep(0.5)
for s, _ in peers:
    s.settimeout(0.05)
    try:
        while True: s.recv(2048)
    except OSError: pass
text = "x" * 40
before = stats(); t0 = time.time()
got = [0, 0, 0]
for k in range(n):
    peers[0][0].sendto(dgram(90, text), peers[0][1])
    if k % 50 == 49: time.sleep(0.005)
end = time.time() + 3
for i, (s, _) in enumerate(peers):
    s.settimeout(0.3)
    try:
        while got[i] < n: s.recv(2048); got[i] += 1
    except OSError: pass
after = stats(); t = time.time() - t0
d = {k: after[k] - before[k] for k in before}
print(f"messages sent: {n}, delivered per member (server 1, 2, 3): {got}")
print(f"Redis over {t:.1f} s: commands {d['total_commands_processed']}, bytes in {d['total_net_input_bytes']}, bytes out {d['total_net_output_bytes']}")
print(f"per public message: {d['total_commands_processed']/n:.2f} commands, {d['total_net_input_bytes']/n:.0f} bytes in, {d['total_net_output_bytes']/n:.0f} bytes out")
PY
