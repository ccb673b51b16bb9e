#!/usr/bin/env bash
# The soak test of docs/ROBUSTNESS.md: builds the release binaries, starts a chat-server on
# loopback with a short idle timeout (so vanished clients are swept within the run), runs
# the soak driver against it with --server-pid and --metrics, saves the JSON report as
# docs/robustness/soak.json and stops the server.
#
#   scripts/soak.sh          # 600 s of steady load
#   scripts/soak.sh 60       # a shorter run
#   CLIENTS=1000 RATE=100 CHURN=5 MOVES=5 scripts/soak.sh 120
#
# Exits with the driver's status: 1 if a departed client got a delivery or a vanished one
# was not swept (the report is saved all the same).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_ARG="${1:-600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# One cargo call for both packages: built separately, their shared dependencies resolve
# to different feature sets and are compiled twice.
cargo build --release -p udpchat --bin chat-server -p load-tester --bins >&2
BIN="$CARGO_TARGET_DIR/release"
OUT="${OUT:-docs/robustness}"
mkdir -p "$OUT"
PORT="${PORT:-2037}"
METRICS_PORT="${METRICS_PORT:-9037}"
CHANNELS_N="${CHANNELS_N:-20}"
IDLE=10
CHECK=2
DATA=$(mktemp -d)
CHANNELS=$(mktemp)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA" "$CHANNELS"
}
trap cleanup EXIT

"$BIN/load-tester" --print-channels "$CHANNELS_N" >"$CHANNELS"
# No rate limit: the driver's clients are well-behaved, and a limit would only hide drops.
"$BIN/chat-server" --bind 127.0.0.1 --port "$PORT" --channels "$CHANNELS" \
    --idle-timeout "$IDLE" --check-interval "$CHECK" --metrics "127.0.0.1:$METRICS_PORT" \
    --rate-limit 0 --data "$DATA" 2>>"$OUT/soak-server.log" &
SERVER_PID=$!
sleep 1
kill -0 "$SERVER_PID"

status=0
"$BIN/soak" --server "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --metrics "http://127.0.0.1:$METRICS_PORT/metrics" --duration "$SECONDS_ARG" \
    --clients "${CLIENTS:-2000}" --channels "$CHANNELS_N" --rate "${RATE:-200}" \
    --churn "${CHURN:-10}" --moves "${MOVES:-10}" --sample "${SAMPLE:-30}" \
    --idle-timeout "$IDLE" --check-interval "$CHECK" --json >"$OUT/soak.json" || status=$?
python3 - "$OUT/soak.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
print("| t (s) | RSS (KiB) | threads | users | delivered / expected |")
print("|---:|---:|---:|---:|---:|")
for s in r["samples"]:
    print(f"| {s['t']:.0f} | {s['rss_kib']} | {s['threads']} | {s['users']} | {s['received']} / {s['expected']} |")
print(f"RSS first/last/max {r['rss_first_kib']}/{r['rss_last_kib']}/{r['rss_max_kib']} KiB, "
      f"threads {r['threads_first']}/{r['threads_last']}, loss {r['loss_pct']:.4f} %, "
      f"departed-but-delivered {r['departed_delivered']} (after part {r['parted_delivered']}), "
      f"vanished still there {r['vanished_still_there']} of {r['vanished_checked']} checked, clean {r['clean']}")
print(f"published after departure + {r['grace_ms']} ms but before the server confirmed it: "
      f"{r['departed_after_grace']} (logoff), {r['parted_after_grace']} (part); longest confirmation "
      f"{r['logoff_confirm_max_ms']:.0f} ms (logoff), {r['part_confirm_max_ms']:.0f} ms (part)")
PY
exit "$status"
