#!/bin/bash
# sse.sh: time to first SSE event through sluice (one gateway per
# nginx_config.busy_poll value) and, with --nginx, through nginx, interleaved
# with the upstream itself (direct), in layout A: gateways on cpu1, the
# upstream and the client on cpu0, as ../shared/bench/compare.sh does.
#
#   bench/sse.sh [--conns 50] [--rounds 6] [--secs 5] [--stagger 0] [--values "0"]
#                [--nginx] [--capture]
#
# --stagger D   spread the connections' starts over D (e.g. 108ms, one stream's
#               length): 0 starts them together, as the harness does, so that
#               every ~108 ms all requests arrive in one burst.
# --values V    busy_poll values, one sluice each ("0 50us 200us 1ms").
# --capture     after the rounds, one more run per gateway under tcpdump on lo:
#               where the time goes, from packet timestamps (bench/ssehops.py):
#               the gateway's hold on the request and on the first event, and
#               the upstream's answer time, against direct's.
#
# Uses bin/sluice (make build), the upstream of ../shared/bench and
# bench/sseclient. Prints one line per round (per target: ttfb p50 µs / p99 µs
# / gap p99 µs / CPU ms per s) and the medians, with the median over rounds
# of each round's p50 minus direct's. Every process it starts is stopped by
# PID on exit. Only 127.0.0.1 is used.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
CONNS=50 ROUNDS=6 SECS=5 STAGGER=0 VALUES=0 NGINX=0 CAPTURE=0
while [ $# -gt 0 ]; do
  case $1 in
    --conns) CONNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --stagger) STAGGER=$2; shift 2 ;;
    --values) VALUES=$2; shift 2 ;;
    --nginx) NGINX=1; shift ;;
    --capture) CAPTURE=1; shift ;;
    *) sed -n '6,7p' "$0" | sed 's/^# /usage: /' >&2; exit 2 ;;
  esac
done
[[ $CONNS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ ]] ||
  { echo "--conns, --rounds and --secs take whole numbers from 1" >&2; exit 2; }
[[ $STAGGER =~ ^[0-9]+(ms|s)?$ ]] || { echo "--stagger takes a duration: 0, 108ms, 1s" >&2; exit 2; }
[[ $STAGGER == 0 ]] && STAGGER=0s
[ -x "$ROOT/bin/sluice" ] || { echo "no bin/sluice: run make build" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs" >&2; exit 1; }
need() { # need CMD PACKAGE: install PACKAGE with apt-get when CMD is missing
  command -v "$1" >/dev/null && return
  echo "installing $2" >&2
  apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y "$2" >/dev/null 2>&1; } ||
    { echo "$1 is missing and apt-get could not install $2" >&2; exit 1; }
}
[ "$NGINX" = 1 ] && need nginx nginx
[ "$CAPTURE" = 1 ] && need tcpdump tcpdump

WORK=$(mktemp -d /tmp/sluice-sse.XXXXXX)
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
    tail -n 5 "$WORK"/upstream.log "$WORK"/*/*.log >&2 2>/dev/null || true
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

(cd "$SHARED/upstream" && go build -o "$WORK/upstream" .)
(cd "$ROOT" && go build -o "$WORK/sseclient" ./bench/sseclient)

# port: a free loopback port (a race with another process taking it in
# between shows as a failed start, reported below).
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

declare -A URL PID PORT
NAMES=(direct)
URL[direct]=http://127.0.0.1:$UP/chat/completions
PORT[direct]=$UP
if [ "$NGINX" = 1 ]; then # the harness's nginx peer configuration
  d=$WORK/nginx p=$(port)
  mkdir -p "$d/tmp"
  sed -e "s#@NOFILE@#4096#; s#@DIR@#$d#g; s#@WCONN@#1024#; s#@UPSTREAM@#127.0.0.1:$UP#; s#@LISTEN@#127.0.0.1:$p#" \
    "$SHARED/peers/nginx.conf.tmpl" >"$d/nginx.conf"
  taskset -c 1 nginx -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' >"$d/nginx.log" 2>&1 &
  PIDS+=($!)
  PID[nginx]=$!
  URL[nginx]=http://127.0.0.1:$p/chat/completions
  PORT[nginx]=$p
  NAMES+=(nginx)
fi
for v in $VALUES; do
  n=sluice; [ "$v" != 0 ] && n=sluice-$v
  d=$WORK/$n; p=$(port); m=$(port)
  mkdir -p "$d/conf"
  cat >"$d/conf/config.yaml" <<YAML
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
YAML
  printf 'routes:\n  - id: 1\n    uri: /chat/completions\n    upstream:\n      nodes:\n        "127.0.0.1:%s": 1\n#END\n' "$UP" >"$d/conf/apisix.yaml"
  (cd "$d" && exec taskset -c 1 "$ROOT/bin/sluice" run -c conf/config.yaml >sluice.log 2>&1) &
  PIDS+=($!)
  PID[$n]=$!
  URL[$n]=http://127.0.0.1:$p/chat/completions
  PORT[$n]=$p
  NAMES+=("$n")
done
for n in "${NAMES[@]}"; do
  hp=${URL[$n]#http://}
  listening "${hp%%/*}" || exit 1
done
# ticks NAME: CPU ticks of the gateway's processes (nginx: master and workers)
ticks() {
  local p=${PID[$1]:-} t=0 c
  [ -z "$p" ] && { echo 0; return; }
  for c in $p $(pgrep -P "$p" || true); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
run() { taskset -c 0 "$WORK/sseclient" -url "${URL[$1]}" -conns "$CONNS" -duration "$2" -stagger "$STAGGER" -events 20; }
result() { # result NAME JSON: "p50/p99/gap", or exit on failed streams
  python3 -c 'import json,sys; d=json.loads(sys.argv[1])
if d["errors"]: sys.exit("%s: %d failed streams, first: %s" % (sys.argv[2], d["errors"], d.get("first_error")))
print("%d/%d/%d" % (d["ttfb_p50_us"], d["ttfb_p99_us"], d["max_gap_p99_us"]))' "$2" "$1"
}

for n in "${NAMES[@]}"; do run "$n" 2s >/dev/null || { echo "warm-up of $n failed" >&2; exit 1; }; done
echo "conns $CONNS, stagger $STAGGER, $ROUNDS rounds of ${SECS}s; per target: ttfb p50 / p99 / gap p99 (us) / gateway cpu ms per s"
for r in $(seq 1 "$ROUNDS"); do
  line="r$r"
  for n in "${NAMES[@]}"; do
    t0=$(ticks "$n")
    res=$(run "$n" "${SECS}s" | sed -n 's/^RESULT //p') || { echo "the client against $n failed" >&2; exit 1; }
    [ -n "$res" ] || { echo "the client against $n printed no result" >&2; exit 1; }
    t1=$(ticks "$n")
    line="$line $n=$(result "$n" "$res")/$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) / SECS ))"
  done
  echo "$line" | tee -a "$WORK/rounds"
done
python3 - "$WORK/rounds" <<'PY'
import statistics as st, sys
d = {}
for line in open(sys.argv[1]):
    for f in line.split()[1:]:
        n, v = f.split("=", 1)
        d.setdefault(n, []).append([int(x) for x in v.split("/")])
print("medians (+p50: median over rounds of the round's p50 minus direct's):")
for n, v in d.items():
    add = st.median(x[0] - y[0] for x, y in zip(v, d["direct"]))
    print("  %-14s ttfb p50 %5.0f us (%+4.0f)  p99 %6.0f us  gap p99 %6.0f us  cpu %4.0f ms/s" % (
        n, st.median(x[0] for x in v), add, st.median(x[1] for x in v),
        st.median(x[2] for x in v), st.median(x[3] for x in v)))
PY
[ "$CAPTURE" = 1 ] || exit 0
echo "capture (one ${SECS}s run per target under tcpdump; medians over streams):"
for n in "${NAMES[@]}"; do
  f=$WORK/$n.pcap
  filter="tcp port ${PORT[$n]}"
  [ "$n" != direct ] && filter="$filter or tcp port $UP"
  taskset -c 0 tcpdump -i lo -s 96 -B 65536 -w "$f" "$filter" >"$WORK/tcpdump.log" 2>&1 &
  td=$!
  PIDS+=($td)
  for i in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
  res=$(run "$n" "${SECS}s" | sed -n 's/^RESULT //p')
  sleep 0.3
  kill "$td"; wait "$td" 2>/dev/null || true
  echo "  $n: client ttfb p50/p99/gap $(result "$n" "$res")"
  python3 "$ROOT/bench/ssehops.py" "$f" "${PORT[$n]}" "$UP" | sed 's/^/    /'
done
