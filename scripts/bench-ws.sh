#!/usr/bin/env bash
# WebSocket echo through ringway and through nginx, in front of the same
# WebSocket echo server, side by side: throughput and round-trip latency.
#
#   server   ringway-ws-load server (tungstenite, a thread per connection)
#                                                                   CPU 1
#   proxy A  ringway, workers = 1, one route with upgrades = ["websocket"]
#                                                                   CPU 0
#   proxy B  nginx, worker_processes 1, proxy_pass with Upgrade and
#            Connection "upgrade" set, proxy_read_timeout 1h        CPU 0
#   load     ringway-ws-load load -c$CONNECTIONS (closed loop: each
#            WebSocket sends a message and waits for its echo)      CPU 2,
#            or CPU 1 (beside the server) on a 2-CPU machine
#
# Two scenarios per round: "small" ($SMALL-byte messages: message rate and
# latency) and "large" ($LARGE-byte messages: bytes per second). Each round
# measures three targets, the order rotating by one place per round so no
# side always goes first: ringway, nginx, and "direct" (the client straight
# at the server, no proxy): what the client and server manage alone. A
# proxy's figures close to direct's mean the load, not the proxy, set the
# pace; the proxy's cpu% tells the same (near 100%: the proxy was the
# bottleneck).
#
# Per run: messages/s, MiB/s (each way), p50 and p99 of the round trip in
# microseconds (from ringway-ws-load), and the proxy's CPU time per message
# (utime+stime from /proc/PID/stat, summed over nginx's master and worker,
# ringway's one process) and cpu% over the run. Then per scenario the
# medians and the ratios ringway/nginx.
#
# Environment:
#   DURATION     seconds per run                   (default 10)
#   WARMUP       unmeasured seconds before each    (default 1)
#   ROUNDS       rounds                            (default 5)
#   CONNECTIONS  WebSockets open at once           (default 64)
#   SMALL, LARGE message sizes in bytes            (default 64, 65536)
#   KEEP_TMP=1   keep the temp dir (configs, logs, raw output)
#   RINGWAY      the ringway binary   (default target/release/ringway,
#                built if missing)
#   WS_LOAD      the ringway-ws-load binary (default
#                target/release/ringway-ws-load, built if missing)
#
# Usage:
#   scripts/bench-ws.sh
#   ROUNDS=1 DURATION=3 scripts/bench-ws.sh     # a quick sanity run
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
SMALL=${SMALL:-64}
LARGE=${LARGE:-65536}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RINGWAY_DEFAULT=$TARGET_DIR/release/ringway
WS_LOAD_DEFAULT=$TARGET_DIR/release/ringway-ws-load
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}
WS_LOAD=${WS_LOAD:-$WS_LOAD_DEFAULT}

log() { printf '[bench-ws] %s\n' "$*" >&2; }
die() { printf '[bench-ws] error: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 5000 ]] || die "CONNECTIONS must be 1..5000"
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ && $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DURATION and WARMUP are seconds"
[[ $SMALL =~ ^[0-9]+$ && $LARGE =~ ^[0-9]+$ && $SMALL -ge 1 && $LARGE -ge 1 ]] || die "SMALL and LARGE are byte counts"

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if ((${#need_apt[@]})); then
    log "installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ ! -x $RINGWAY && $RINGWAY == "$RINGWAY_DEFAULT" ]]; then
    log "building ringway (release)"
    (cd "$REPO" && cargo build --release -p ringway)
fi
if [[ ! -x $WS_LOAD && $WS_LOAD == "$WS_LOAD_DEFAULT" ]]; then
    log "building ringway-ws-load (release)"
    (cd "$REPO" && cargo build --release -p ringway-loadtest --bin ringway-ws-load)
fi
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"
[[ -x $WS_LOAD ]] || die "no ringway-ws-load binary at $WS_LOAD"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs, found $NCPU"
SERVER_CPU=1
LOAD_CPU=$((NCPU >= 3 ? 2 : 1))
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
bench_tmp ws
read -r WS_PORT RW_PORT NG_PORT < <(free_ports 3)

# ------------------------------------------------------------------ configs

{
    nginx_common nginx 8192
    cat <<EOF
    upstream ws {
        server 127.0.0.1:$WS_PORT;
    }
    server {
        listen 127.0.0.1:$NG_PORT;
        location / {
            proxy_pass http://ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
EOF
} >"$TMP/nginx.conf"

cat >"$TMP/ringway.toml" <<EOF
workers = 1

# No admin API: it would take the fixed default port 127.0.0.1:9901.
[admin]
enabled = false

[[listeners]]
address = "127.0.0.1:$RW_PORT"

[[upstreams]]
name = "ws"
servers = ["127.0.0.1:$WS_PORT"]

[[routes]]
name = "ws"
path-prefix = "/"
upstream = "ws"
upgrades = ["websocket"]
tunnel-idle-timeout = "1h"
EOF

"$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" || die "nginx config invalid"
"$RINGWAY" validate "$TMP/ringway.toml" >/dev/null || die "ringway config invalid"

# ------------------------------------------------------------------ start

log "server :$WS_PORT (CPU $SERVER_CPU), ringway :$RW_PORT (CPU 0), nginx :$NG_PORT (CPU 0), load on CPU $LOAD_CPU"

taskset -c "$SERVER_CPU" "$WS_LOAD" server "127.0.0.1:$WS_PORT" >"$TMP/server.log" 2>&1 &
WS_PID=$!; PIDS+=("$WS_PID")
taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/ringway.log" 2>&1 &
RW_PID=$!; PIDS+=("$RW_PID")
taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")

# Wait (bounded: 10 s) until a WebSocket echo works at the URL.
wait_ws() {
    local url=$1 name=$2 pid=$3
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see logs in $TMP; rerun with KEEP_TMP=1)"
        if "$WS_LOAD" load "$url" -c 1 -d 0.05 -w 0 -s 8 >/dev/null 2>&1; then
            log "$name echoes"
            return 0
        fi
        sleep 0.1
    done
    die "$name did not echo at $url within 10 s"
}
wait_ws "ws://127.0.0.1:$WS_PORT/" server "$WS_PID"
wait_ws "ws://127.0.0.1:$RW_PORT/" ringway "$RW_PID"
wait_ws "ws://127.0.0.1:$NG_PORT/" nginx "$NG_PID"

# ------------------------------------------------------------------ measure

proxy_pids() { echo "$1"; pgrep -P "$1" || true; }

# Sum of utime+stime in clock ticks over the given pids.
cpu_ticks() {
    local sum=0 pid line rest
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }
        read -r -a f <<<"$rest"
        sum=$((sum + f[11] + f[12]))
    done
    echo "$sum"
}

# run TARGET SIZE -> "msgs_per_s mib_per_s p50_us p99_us cpu_us_per_msg cpu_pct"
run() {
    local target=$1 size=$2 port pid pids t0 t1 out
    case $target in
        direct) port=$WS_PORT pid="" ;;
        ringway) port=$RW_PORT pid=$RW_PID ;;
        nginx) port=$NG_PORT pid=$NG_PID ;;
    esac
    pids=()
    [[ -z $pid ]] || mapfile -t pids < <(proxy_pids "$pid")
    t0=$(cpu_ticks "${pids[@]}")
    out=$(taskset -c "$LOAD_CPU" "$WS_LOAD" load "ws://127.0.0.1:$port/" -c "$CONNECTIONS" \
        -d "$DURATION" -w "$WARMUP" -s "$size" 2>&1) || die "load against $target failed: $out"
    t1=$(cpu_ticks "${pids[@]}")
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || die "$target died during the run (logs in $TMP)"
    python3 - "$out" "$t0" "$t1" "$CLK_TCK" "$DURATION" "${WARMUP}" "$pid" <<'EOF'
import sys
kv = dict(p.split("=") for p in sys.argv[1].split())
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
dur, warm, proxied = float(sys.argv[5]), float(sys.argv[6]), sys.argv[7] != ""
rate = float(kv["msgs_per_s"])
# The CPU window covers warm-up and measured time alike; so does the rate
# it is divided by (the closed loop runs at one pace throughout).
cpu_s = (t1 - t0) / hz
per_msg = cpu_s * 1e6 / (rate * (dur + warm)) if proxied and rate else float("nan")
pct = 100.0 * cpu_s / (dur + warm) if proxied else float("nan")
print(f"{rate:.0f} {float(kv['mib_per_s']):.2f} {kv['p50_us']} {kv['p99_us']} {per_msg:.2f} {pct:.1f}")
EOF
}

RESULTS=$TMP/results.txt
: >"$RESULTS"
TARGETS=(ringway nginx direct)
for r in $(seq "$ROUNDS"); do
    for scenario in small large; do
        size=$SMALL
        [[ $scenario == small ]] || size=$LARGE
        for i in 0 1 2; do
            target=${TARGETS[$(((i + r - 1) % 3))]}
            log "round $r/$ROUNDS: $scenario ($size B), $target (${DURATION}s, $CONNECTIONS connections)"
            line=$(run "$target" "$size")
            echo "$r $scenario $target $line" >>"$RESULTS"
        done
    done
done

# ------------------------------------------------------------------ report

echo
echo "WebSocket echo: ringway vs nginx (1 worker each on CPU 0) in front of one tungstenite echo server (CPU $SERVER_CPU);"
echo "ringway-ws-load -c$CONNECTIONS closed loop on CPU $LOAD_CPU, ${DURATION}s runs after ${WARMUP}s warm-up, $ROUNDS rounds, $NCPU CPUs"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), ringway $("$RINGWAY" --version | awk '{print $2}')"
python3 - "$RESULTS" "$SMALL" "$LARGE" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
sizes = {"small": sys.argv[2], "large": sys.argv[3]}
for scenario in ("small", "large"):
    print()
    print(f"== {scenario}: {sizes[scenario]}-byte messages ==")
    hdr = f"{'round':>5}  {'target':<8} {'msgs/s':>10} {'MiB/s':>9} {'p50 us':>8} {'p99 us':>8} {'cpu us/msg':>11} {'cpu%':>6}"
    print(hdr)
    print("-" * len(hdr))
    by = {}
    for r, sc, target, rate, mib, p50, p99, per, pct in rows:
        if sc != scenario:
            continue
        print(f"{r:>5}  {target:<8} {float(rate):>10.0f} {float(mib):>9.2f} {int(p50):>8} {int(p99):>8} {per:>11} {pct:>6}")
        by.setdefault(target, []).append([float(x) for x in (rate, mib, p50, p99, per, pct)])
    med = {t: [statistics.median(v[i] for v in vals) for i in range(6)] for t, vals in by.items()}
    print()
    print("medians:")
    for t in ("direct", "ringway", "nginx"):
        if t in med:
            m = med[t]
            print(f"  {t:<8} {m[0]:>10.0f} msgs/s {m[1]:>9.2f} MiB/s  p50 {m[2]:>7.0f} us  p99 {m[3]:>7.0f} us"
                  f"  cpu {m[4]:>7.2f} us/msg {m[5]:>6.1f}%")
    if "ringway" in med and "nginx" in med:
        a, b = med["ringway"], med["nginx"]
        ratio = lambda x, y: x / y if y else float("nan")
        print(f"  ringway/nginx: msgs/s {ratio(a[0], b[0]):.3f}  p50 {ratio(a[2], b[2]):.3f}  "
              f"p99 {ratio(a[3], b[3]):.3f}  cpu/msg {ratio(a[4], b[4]):.3f}")
EOF

for f in "$TMP/ringway.log" "$TMP/nginx-error.log"; do
    if [[ -s $f ]] && grep -qiE 'error|warn|panic|\[crit\]|\[alert\]' "$f"; then
        echo
        echo "$(basename "$f") had errors or warnings:"
        grep -iE 'error|warn|panic|\[crit\]|\[alert\]' "$f" | tail -20 | sed 's/^/    /'
    fi
done
