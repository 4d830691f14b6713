#!/bin/bash
# busypoll.sh: time to first SSE event through sluice with several
# nginx_config.busy_poll values, interleaved with the upstream itself
# (direct), in layout A (gateways on cpu1; upstream and client on cpu0).
#
#   bench/busypoll.sh [--conns 1] [--rounds 8] [--secs 4] [--values "0 50us 200us 1ms"]
#
# Uses bin/sluice (make build) and builds the upstream and the ttfb client of
# ../shared/bench. Prints one line per round (ttfb p50 µs / gap p99 µs / the
# gateway's CPU in ms per second) and the medians. Every process it starts is
# stopped by PID on exit. Only 127.0.0.1 is used.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
CONNS=1 ROUNDS=8 SECS=4 VALUES="0 50us 200us 1ms"
while [ $# -gt 0 ]; do
  case $1 in
    --conns) CONNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --values) VALUES=$2; shift 2 ;;
    *) echo "usage: $0 [--conns N] [--rounds N] [--secs S] [--values \"0 50us ...\"]" >&2; exit 2 ;;
  esac
done
[[ $CONNS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ ]] ||
  { echo "--conns, --rounds and --secs take whole numbers from 1" >&2; exit 2; }
[ -x "$ROOT/bin/sluice" ] || { echo "no bin/sluice: run make build" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sluice-busypoll.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? p i
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 50); do # 5 s for a graceful stop, then SIGKILL
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; p=; done
    [ -z "${p:-}" ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "failed; logs kept in $WORK:" >&2
    tail -n 5 "$WORK"/upstream.log "$WORK"/*/sluice.log >&2 2>/dev/null || true
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

(cd "$SHARED/upstream" && go build -o "$WORK/upstream" .)
(cd "$SHARED/ttfb" && go build -o "$WORK/ttfb" .)

# port: a free loopback port (sluice's listeners; a race with another
# process taking it in between shows as a failed start, reported below).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# listening HOST:PORT: wait up to 10 s until it accepts connections.
listening() {
  local i
  for i in $(seq 100); do
    python3 -c 'import socket,sys; h,p=sys.argv[1].rsplit(":",1); socket.create_connection((h,int(p)),0.2)' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
: >"$WORK/upstream.log"
taskset -c 0 "$WORK/upstream" -addr 127.0.0.1:0 -delay 5 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
UP=
for i in $(seq 100); do
  UP=$(sed -n 's#.*listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$WORK/upstream.log")
  [ -n "$UP" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || break # the upstream died
  sleep 0.1
done
[ -n "$UP" ] || { echo "the upstream did not start" >&2; exit 1; }

declare -A URL PID
NAMES=(direct)
URL[direct]=http://127.0.0.1:$UP/chat/completions
for v in $VALUES; do
  d=$WORK/bp-$v; p=$(port); m=$(port)
  mkdir -p "$d/conf"
  cat >"$d/conf/config.yaml" <<EOF
apisix:
  node_listen:
    - ip: 127.0.0.1
      port: $p
  enable_admin: false
deployment:
  role: traditional
  role_traditional:
    config_provider: yaml
nginx_config:
  busy_poll: $v
plugin_attr:
  prometheus:
    export_addr: {ip: 127.0.0.1, port: $m}
EOF
  printf 'routes:\n  - id: 1\n    uri: /chat/completions\n    upstream:\n      nodes:\n        "127.0.0.1:%s": 1\n#END\n' "$UP" >"$d/conf/apisix.yaml"
  (cd "$d" && exec taskset -c 1 "$ROOT/bin/sluice" run -c conf/config.yaml >sluice.log 2>&1) &
  PIDS+=($!)
  PID[$v]=$!
  URL[$v]=http://127.0.0.1:$p/chat/completions
  NAMES+=("$v")
done
for n in "${NAMES[@]}"; do
  hp=${URL[$n]#http://}
  listening "${hp%%/*}" || exit 1
done
ticks() {
  if [ -z "${PID[$1]:-}" ]; then echo 0; return; fi
  awk '{print $14+$15}' "/proc/${PID[$1]}/stat" 2>/dev/null || { echo "sluice with busy_poll $1 is gone" >&2; return 1; }
}
run() { taskset -c 0 "$WORK/ttfb" -url "${URL[$1]}" -conns "$CONNS" -duration "$2" -events 20; }

for n in "${NAMES[@]}"; do run "$n" 2s >/dev/null || { echo "warm-up of $n failed" >&2; exit 1; }; done
echo "conns $CONNS, $ROUNDS rounds of ${SECS}s; per target: ttfb p50 us / gap p99 us / gateway cpu ms per s"
for r in $(seq 1 "$ROUNDS"); do
  line="r$r"
  for n in "${NAMES[@]}"; do
    t0=$(ticks "$n")
    res=$(run "$n" "${SECS}s" | sed -n 's/^RESULT //p') || { echo "ttfb against $n failed" >&2; exit 1; }
    [ -n "$res" ] || { echo "ttfb against $n printed no result" >&2; exit 1; }
    t1=$(ticks "$n")
    cpu=$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) / SECS ))
    v=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1])
if d["errors"]: sys.exit("%s: %d failed streams, first: %s" % (sys.argv[2], d["errors"], d.get("first_error")))
print("%d/%d" % (d["ttfb_p50_us"], d["max_gap_p99_us"]))' "$res" "$n")
    line="$line $n=$v/$cpu"
  done
  echo "$line" | tee -a "$WORK/rounds"
done
python3 - "$WORK/rounds" <<'EOF'
import statistics as st, sys
d = {}
for line in open(sys.argv[1]):
    for f in line.split()[1:]:
        n, v = f.split("=", 1)
        d.setdefault(n, []).append([int(x) for x in v.split("/")])
base = st.median(x[0] for x in d["direct"])
print("medians:")
for n, v in d.items():
    m = st.median(x[0] for x in v)
    print("  %-7s ttfb p50 %5.0f us (%+4.0f)  gap p99 %5.0f us  cpu %4.0f ms/s" % (
        n, m, m - base, st.median(x[1] for x in v), st.median(x[2] for x in v)))
EOF
