#!/usr/bin/env bash
# What observability costs: ringway with metrics and a JSON access log against
# ringway without either, and ringway's access log against nginx's, all as
# HTTP/1.1 reverse proxies in front of the same origin, one worker each,
# pinned to the same CPU, measured in alternating rounds.
#
#   origin       nginx, worker_processes 1, `return 200 "hello world\n"`   CPU 1
#   ringway-off  ringway, workers = 1, one route forwarding everything to
#                the origin upstream, [metrics] enabled = false, no
#                access log                                              CPU 0
#   ringway-on   the same config with [metrics] enabled = true and
#                [access-log] enabled = true, format = "json", path =
#                $TMP/ringway-access.log                                 CPU 0
#   nginx-nolog  nginx, worker_processes 1, proxy_pass to an upstream
#                block with `keepalive 64`, `access_log off;`             CPU 0
#   nginx-log    the same with `access_log $TMP/nginx-access.log json_fmt
#                buffer=64k flush=1s;`                                    CPU 0
#   load         wrk -t1 -c$CONNECTIONS --latency                         CPU 1
#
# Both ringway configs have an admin listener on a free loopback port of its
# own ([admin] address), so they differ only in [metrics] and [access-log];
# ringway-on's admin port serves GET /metrics for the dropped-record count
# below. Idle sides use no CPU while wrk drives another.
#
# nginx's log_format json_fmt (escape=json) holds, as far as nginx has them,
# the fields of ringway's JSON log under the same names: time
# ($time_iso8601; whole seconds, so msec adds $msec), request_id, client_ip,
# client_port, listener ($server_addr:$server_port), tls_version, tls_sni
# ($ssl_protocol, $ssl_server_name: empty here, plain HTTP), method, host,
# path ($uri), query ($args), protocol, status, bytes_in ($request_length),
# bytes_out ($bytes_sent), duration ($request_time), upstream_connect
# ($upstream_connect_time), upstream_head ($upstream_header_time), upstream
# ($proxy_host), upstream_server ($upstream_addr), cache
# ($upstream_cache_status: empty, no cache), user_agent, referer. nginx has
# no equivalent of ringway's trace_id, first_byte, route, consumer,
# error_kind and error_side. The upstream times are strings in nginx's log
# (they may be "-" or a list), numbers or null in ringway's.
#
# Buffering: ringway's access log is written by a thread of its own that
# buffers lines and flushes at least every ~100 ms; nginx-log therefore uses
# `buffer=64k flush=1s`, nginx's recommended high-throughput setting, so
# both sides batch their writes (nginx's default unbuffered access_log would
# issue one write(2) per request).
#
# Rounds: every round runs each side for DURATION after all sides had one
# WARMUP run; the order rotates by one place per round (round 1:
# ringway-off, ringway-on, nginx-nolog, nginx-log; round 2: ringway-on,
# nginx-nolog, nginx-log, ringway-off; ...), so with ROUNDS a multiple of 4
# each side runs equally often in every position, and slow drift on a shared
# machine hits all sides.
#
# Per run it reports requests/s and p99 latency (from wrk), and the proxy's
# CPU time per request: utime+stime from /proc/PID/stat (fields 14 and 15,
# clock ticks) before and after the run, summed over the proxy's processes
# (nginx: master + worker; ringway: its one process, which covers all of its
# threads, the access-log writer's included), divided by the requests wrk
# completed. "cpu%" is that CPU time over the run's wall time: near 100%
# means the proxy's CPU was saturated.
#
# Output: the runs, then per side the medians of req/s, p99, CPU us/req and
# cpu%, then two tables:
#   1. observability on vs off (ringway): ringway-on / ringway-off ratios of
#      req/s and CPU us/req, PASS/FAIL for the targets req/s ratio >= 0.95
#      and CPU us/req ratio <= 1.08 (with nginx-log / nginx-nolog alongside,
#      for reference: what its access log costs nginx)
#   2. ringway with access log vs nginx with access log: ringway-on against
#      nginx-log in req/s, p99 and CPU us/req, PASS/FAIL for ringway-on's CPU
#      per request <= nginx-log's
# then sanity checks: the ringway access log holds at least as many lines as
# wrk counted responses from ringway-on (warm-up included), less the records
# ringway_access_log_dropped_total (GET /metrics on ringway-on's admin port)
# says were dropped, which is reported; the nginx log has lines; both files'
# sizes, and that each file's last line parses as JSON. The exit status is 1
# when a target or a sanity check fails.
#
# Disk: each log grows by a few hundred bytes per request, a GB or more at
# the defaults; the temp dir is made under TMPDIR (default /tmp).
#
# Environment:
#   DURATION     duration per run                  (default 10s)
#   ROUNDS       number of rounds                  (default 4)
#   CONNECTIONS  wrk connections                   (default 64)
#   WARMUP       warm-up run duration per side     (default 2s)
#   KEEP_TMP=1   keep the temp dir (configs, access logs, server logs, wrk output)
#   RINGWAY      the ringway binary under test  (default target/release/ringway
#                of this checkout, built if missing)
#   ACCESS_LOG   1 (default) or 0. ACCESS_LOG=0 is a debugging aid only: it
#                drops the [access-log] table from ringway-on (which then
#                differs from ringway-off in [metrics] alone) and skips the
#                ringway access-log checks, so table 2 then compares ringway
#                WITHOUT an access log against nginx with one. Not a result.
#
# Usage:
#   scripts/bench-observability.sh
#   ROUNDS=8 DURATION=20s scripts/bench-observability.sh
#   RINGWAY=/path/to/ringway KEEP_TMP=1 scripts/bench-observability.sh
#   ACCESS_LOG=0 ROUNDS=1 DURATION=2s WARMUP=1s scripts/bench-observability.sh   # script check only
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-4}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
ACCESS_LOG=${ACCESS_LOG:-1}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY_DEFAULT=$REPO/target/release/ringway
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $ACCESS_LOG == 0 || $ACCESS_LOG == 1 ]] || die "ACCESS_LOG must be 0 or 1"

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
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
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringway-obs.XXXXXX")
chmod 755 "$TMP"
PIDS=()

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # bounded wait: at most ~5 s per process, then SIGKILL
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The access logs take a few hundred bytes per request.
avail_kb=$(df -Pk "$TMP" | awk 'NR == 2 {print $4}')
if [[ $avail_kb =~ ^[0-9]+$ ]] && ((avail_kb < 4 * 1024 * 1024)); then
    log "WARNING: only $((avail_kb / 1024)) MiB free under $TMP; the access logs may need several GB (set TMPDIR)"
fi

# Seven free loopback ports, held open together so they are distinct: the
# origin, the four proxies' listeners and the two ringway admin listeners.
read -r ORIGIN_PORT OFF_PORT ON_PORT NGN_PORT NGL_PORT OFF_ADMIN ON_ADMIN < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(7):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

RW_LOG_FILE=$TMP/ringway-access.log
NG_LOG_FILE=$TMP/nginx-access.log

# ------------------------------------------------------------------ configs

# keepalive_requests is raised everywhere so that no nginx closes a
# keep-alive connection after its default 1000 requests (ringway has no such
# limit); otherwise wrk and the proxies would reconnect throughout.
nginx_common() {
    local name=$1
    mkdir -p "$TMP/$name"
    cat <<EOF
worker_processes 1;
pid $TMP/$name.pid;
error_log $TMP/$name-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/$name/body;
    proxy_temp_path $TMP/$name/proxy;
    fastcgi_temp_path $TMP/$name/fastcgi;
    uwsgi_temp_path $TMP/$name/uwsgi;
    scgi_temp_path $TMP/$name/scgi;
    keepalive_requests 1000000;
EOF
}

{
    nginx_common origin
    cat <<EOF
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        location / { return 200 "hello world\n"; }
    }
}
EOF
} >"$TMP/origin.conf"

# nginx_proxy NAME PORT ACCESS_LOG_DIRECTIVE
nginx_proxy() {
    local name=$1 port=$2 access=$3
    nginx_common "$name"
    cat <<'EOF'
    log_format json_fmt escape=json
        '{"time":"$time_iso8601","msec":$msec,"request_id":"$request_id",'
        '"client_ip":"$remote_addr","client_port":$remote_port,'
        '"listener":"$server_addr:$server_port",'
        '"tls_version":"$ssl_protocol","tls_sni":"$ssl_server_name",'
        '"method":"$request_method","host":"$host","path":"$uri","query":"$args",'
        '"protocol":"$server_protocol","status":$status,'
        '"bytes_in":$request_length,"bytes_out":$bytes_sent,"duration":$request_time,'
        '"upstream_connect":"$upstream_connect_time","upstream_head":"$upstream_header_time",'
        '"upstream":"$proxy_host","upstream_server":"$upstream_addr",'
        '"cache":"$upstream_cache_status",'
        '"user_agent":"$http_user_agent","referer":"$http_referer"}';
EOF
    cat <<EOF
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        $access
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}
nginx_proxy nginx-nolog "$NGN_PORT" "access_log off;" >"$TMP/nginx-nolog.conf"
nginx_proxy nginx-log "$NGL_PORT" "access_log $NG_LOG_FILE json_fmt buffer=64k flush=1s;" >"$TMP/nginx-log.conf"

# ringway_config PORT ADMIN_PORT METRICS(true|false) ACCESS_LOG(0|1)
ringway_config() {
    local port=$1 admin=$2 metrics=$3 access=$4
    cat <<EOF
workers = 1

[admin]
address = "127.0.0.1:$admin"

[metrics]
enabled = $metrics
EOF
    if [[ $access == 1 ]]; then
        cat <<EOF

[access-log]
enabled = true
path = "$RW_LOG_FILE"
format = "json"
EOF
    fi
    cat <<EOF

[[listeners]]
address = "127.0.0.1:$port"

[[upstreams]]
name = "origin"
servers = ["127.0.0.1:$ORIGIN_PORT"]

[[routes]]
name = "all"
path-prefix = "/"
upstream = "origin"
EOF
}
ringway_config "$OFF_PORT" "$OFF_ADMIN" false 0 >"$TMP/ringway-off.toml"
ringway_config "$ON_PORT" "$ON_ADMIN" true "$ACCESS_LOG" >"$TMP/ringway-on.toml"

"$NGINX" -t -q -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" || die "origin config invalid"
for name in nginx-nolog nginx-log; do
    "$NGINX" -t -q -p "$TMP" -e "$TMP/$name-error.log" -c "$TMP/$name.conf" || die "$name config invalid"
done
"$RINGWAY" validate "$TMP/ringway-off.toml" >"$TMP/validate-off.txt" 2>&1 \
    || die "ringway-off config invalid: $(cat "$TMP/validate-off.txt")"
if ! "$RINGWAY" validate "$TMP/ringway-on.toml" >"$TMP/validate-on.txt" 2>&1; then
    if grep -q 'access-log' "$TMP/validate-on.txt"; then
        die "$RINGWAY has no access log: its validate refuses the [access-log] table ($(head -1 "$TMP/validate-on.txt")). Use a ringway binary with the access log (ACCESS_LOG=0 only checks this script)"
    fi
    die "ringway-on config invalid: $(cat "$TMP/validate-on.txt")"
fi

# ------------------------------------------------------------------ start

log "origin :$ORIGIN_PORT (CPU 1); on CPU 0: ringway-off :$OFF_PORT (admin :$OFF_ADMIN)," \
    "ringway-on :$ON_PORT (admin :$ON_ADMIN), nginx-nolog :$NGN_PORT, nginx-log :$NGL_PORT"
((ACCESS_LOG)) || log "ACCESS_LOG=0: ringway-on has NO access log (debugging aid; not a result)"

taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" -g 'daemon off;' \
    >"$TMP/origin.out" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")

taskset -c 0 "$RINGWAY" -c "$TMP/ringway-off.toml" >"$TMP/ringway-off.log" 2>&1 &
OFF_PID=$!; PIDS+=("$OFF_PID")

taskset -c 0 "$RINGWAY" -c "$TMP/ringway-on.toml" >"$TMP/ringway-on.log" 2>&1 &
ON_PID=$!; PIDS+=("$ON_PID")

taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/nginx-nolog-error.log" -c "$TMP/nginx-nolog.conf" -g 'daemon off;' \
    >"$TMP/nginx-nolog.out" 2>&1 &
NGN_PID=$!; PIDS+=("$NGN_PID")

taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/nginx-log-error.log" -c "$TMP/nginx-log.conf" -g 'daemon off;' \
    >"$TMP/nginx-log.out" 2>&1 &
NGL_PID=$!; PIDS+=("$NGL_PID")

# Wait (bounded: 10 s) until a URL answers exactly "hello world".
wait_hello() {
    local url=$1 name=$2 pid=$3 body
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see logs in $TMP; rerun with KEEP_TMP=1)"
        if body=$(curl -s --max-time 1 "$url") && [[ $body == "hello world" ]]; then
            log "$name answers: $body"
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer 'hello world' at $url within 10 s (last body: '${body:-}')"
}
wait_hello "http://127.0.0.1:$ORIGIN_PORT/" origin "$ORIGIN_PID"
wait_hello "http://127.0.0.1:$OFF_PORT/" ringway-off "$OFF_PID"
wait_hello "http://127.0.0.1:$ON_PORT/" ringway-on "$ON_PID"
wait_hello "http://127.0.0.1:$NGN_PORT/" nginx-nolog "$NGN_PID"
wait_hello "http://127.0.0.1:$NGL_PORT/" nginx-log "$NGL_PID"
curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$ON_ADMIN/metrics" \
    || die "ringway-on's GET /metrics on admin port $ON_ADMIN failed"

# ------------------------------------------------------------------ measure

# Processes whose CPU counts for a proxy: the pid itself plus its children
# (nginx master + worker; ringway has no children, its threads are counted
# in its own /proc/PID/stat).
proxy_pids() { echo "$1"; pgrep -P "$1" || true; }

# Sum of utime+stime in clock ticks over the given pids.
cpu_ticks() {
    local sum=0 pid line rest
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }               # skip "pid (comm) " (comm may hold spaces)
        read -r -a f <<<"$rest"         # f[0] is field 3 (state)
        sum=$((sum + f[11] + f[12]))    # fields 14 (utime) and 15 (stime)
    done
    echo "$sum"
}

# Errors and warnings the servers logged during the benchmark.
show_logs() {
    local name f
    for name in ringway-off ringway-on; do
        [[ -f $TMP/$name.log ]] || continue
        if grep -qiE 'error|warn|panic' "$TMP/$name.log"; then
            echo
            echo "$name log had errors or warnings:"
            grep -iE 'error|warn|panic' "$TMP/$name.log" | tail -20 | sed 's/^/    /'
        fi
    done
    for f in "$TMP/origin-error.log" "$TMP/nginx-nolog-error.log" "$TMP/nginx-log-error.log"; do
        if [[ -s $f ]] && grep -qv '\[notice\]' "$f"; then
            echo
            echo "$(basename "$f"):"
            grep -v '\[notice\]' "$f" | tail -20 | sed 's/^/    /'
        fi
    done
}

# Parse wrk output into: reqs_per_s p99_ms requests seconds non2xx sockerr
parse_wrk() {
    python3 - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
rps = float(m.group(1)) if m else float("nan")
m = re.search(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
p99 = ms(*m.groups()) if m else float("nan")
m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
reqs, secs = (int(m.group(1)), ms(m.group(2), m.group(3)) / 1000.0) if m else (0, 0.0)
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
non2xx = int(m.group(1)) if m else 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
sockerr = "c%s/r%s/w%s/t%s" % m.groups() if m and any(int(x) for x in m.groups()) else "0"
print(f"{rps:.2f} {p99:.3f} {reqs} {secs:.3f} {non2xx} {sockerr}")
EOF
}

# run_one SIDE PID PORT DURATION OUTFILE -> prints "rps p99 reqs secs non2xx sockerr cpu_us_per_req cpu_pct"
run_one() {
    local name=$1 pid=$2 port=$3 dur=$4 out=$5 pids t0 t1 parsed
    kill -0 "$pid" 2>/dev/null || die "$name is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    mapfile -t pids < <(proxy_pids "$pid")
    [[ $name != nginx* || ${#pids[@]} -ge 2 ]] || die "$name: nginx worker process not found under master $pid"
    t0=$(cpu_ticks "${pids[@]}")
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$dur" --latency "http://127.0.0.1:$port/" >"$out" 2>&1 \
        || die "wrk failed against $name: $(cat "$out")"
    t1=$(cpu_ticks "${pids[@]}")
    kill -0 "$pid" 2>/dev/null || die "$name died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    parsed=$(parse_wrk "$out")
    python3 - "$parsed" "$t0" "$t1" "$CLK_TCK" <<'EOF'
import sys
rps, p99, reqs, secs, non2xx, sockerr = sys.argv[1].split()
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu_s = (t1 - t0) / hz
reqs, secs = int(reqs), float(secs)
per_req = cpu_s * 1e6 / reqs if reqs else float("nan")
pct = 100.0 * cpu_s / secs if secs else float("nan")
print(rps, p99, reqs, secs, non2xx, sockerr, f"{per_req:.3f}", f"{pct:.1f}")
EOF
}

# The sides in round 1's order; the order rotates by one place per round.
SIDES=(ringway-off ringway-on nginx-nolog nginx-log)
side_target() {  # SIDE -> sets pid and port
    case $1 in
        ringway-off) pid=$OFF_PID port=$OFF_PORT ;;
        ringway-on) pid=$ON_PID port=$ON_PORT ;;
        nginx-nolog) pid=$NGN_PID port=$NGN_PORT ;;
        nginx-log) pid=$NGL_PID port=$NGL_PORT ;;
        *) die "unknown side $1" ;;
    esac
}

# Responses wrk counted from ringway-on and nginx-log, warm-up included:
# each one should be a line in that side's access log.
ON_REQS=0
NGL_REQS=0
count_reqs() {  # SIDE RESULT_LINE
    local reqs
    read -r _ _ reqs _ <<<"$2"
    case $1 in
        ringway-on) ON_REQS=$((ON_REQS + reqs)) ;;
        nginx-log) NGL_REQS=$((NGL_REQS + reqs)) ;;
    esac
}

log "warm-up: $WARMUP each"
for side in "${SIDES[@]}"; do
    side_target "$side"
    line=$(run_one "$side" "$pid" "$port" "$WARMUP" "$TMP/warmup-$side.txt")
    count_reqs "$side" "$line"
done

RESULTS=$TMP/results.txt
: >"$RESULTS"
problems=0
for r in $(seq "$ROUNDS"); do
    k=$(((r - 1) % ${#SIDES[@]}))
    order=("${SIDES[@]:k}" "${SIDES[@]:0:k}")
    position=0
    for side in "${order[@]}"; do
        position=$((position + 1))
        side_target "$side"
        out=$TMP/wrk-$r-$side.txt
        log "round $r/$ROUNDS, #$position: $side ($DURATION, $CONNECTIONS connections)"
        line=$(run_one "$side" "$pid" "$port" "$DURATION" "$out")
        echo "$r $position $side $line" >>"$RESULTS"
        count_reqs "$side" "$line"
        read -r _ _ _ _ non2xx sockerr _ _ <<<"$line"
        if [[ $non2xx != 0 || $sockerr != 0 ]]; then
            problems=$((problems + 1))
            log "WARNING: $side round $r: non-2xx/3xx=$non2xx socket errors=$sockerr; wrk said:"
            sed 's/^/    /' "$out" >&2
        fi
    done
done

# ------------------------------------------------------------------ report

echo
echo "observability cost: ringway-off / ringway-on / nginx-nolog / nginx-log, 1 worker each on CPU 0; origin and wrk on CPU 1"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds (order rotating by one per round), warm-up $WARMUP, $(nproc --all) CPUs, CLK_TCK=$CLK_TCK"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), ringway $("$RINGWAY" --version | awk '{print $2}') ($RINGWAY)"
if ((ACCESS_LOG)); then
    echo "ringway-on: [metrics] enabled, JSON access log to a file; nginx-log: JSON access log, buffer=64k flush=1s"
else
    echo "ACCESS_LOG=0 (debugging aid): ringway-on has [metrics] enabled but NO access log; table 2 is not a like-for-like comparison"
fi
report_status=0
python3 - "$RESULTS" "$ACCESS_LOG" <<'EOF' || report_status=$?
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
access_log = sys.argv[2] == "1"
names = ("ringway-off", "ringway-on", "nginx-nolog", "nginx-log")
w = 11
hdr = (f"{'round':>5} {'#':>2}  {'side':<{w}} {'req/s':>11} {'p99 ms':>9} {'requests':>10} "
       f"{'cpu us/req':>11} {'cpu%':>6}  {'non-2xx':>7}  {'sock err':<8}")
print()
print(hdr)
print("-" * len(hdr))
by = {}
for r, pos, side, rps, p99, reqs, secs, non2xx, sockerr, per_req, pct in rows:
    print(f"{r:>5} {pos:>2}  {side:<{w}} {float(rps):>11.0f} {float(p99):>9.3f} {int(reqs):>10} "
          f"{float(per_req):>11.2f} {float(pct):>6.1f}  {non2xx:>7}  {sockerr:<8}")
    by.setdefault(side, []).append((float(rps), float(p99), float(per_req), float(pct)))
med = {p: [statistics.median(v[i] for v in vals) for i in range(4)] for p, vals in by.items()}
print()
hdr2 = f"{'median':<{w}} {'req/s':>11} {'p99 ms':>9} {'cpu us/req':>11} {'cpu%':>6}"
print(hdr2)
print("-" * len(hdr2))
for p in names:
    if p in med:
        rps, p99, cpu, pct = med[p]
        print(f"{p:<{w}} {rps:>11.0f} {p99:>9.3f} {cpu:>11.2f} {pct:>6.1f}")
ratio = lambda x, y: x / y if y else float("nan")
failed = 0

def verdict(ok):
    global failed
    failed += not ok
    return "PASS" if ok else "FAIL"

# Table 1
on, off = med["ringway-on"], med["ringway-off"]
print()
print("Table 1: observability on vs off (ringway)" + ("" if access_log else "   [ACCESS_LOG=0: metrics only, no access log]"))
hdr3 = f"{'':<26} {'req/s':>11} {'p99 ms':>9} {'cpu us/req':>11}"
print(hdr3)
print("-" * len(hdr3))
print(f"{'ringway-off':<26} {off[0]:>11.0f} {off[1]:>9.3f} {off[2]:>11.2f}")
print(f"{'ringway-on':<26} {on[0]:>11.0f} {on[1]:>9.3f} {on[2]:>11.2f}")
rps_r, p99_r, cpu_r = ratio(on[0], off[0]), ratio(on[1], off[1]), ratio(on[2], off[2])
print(f"{'ratio ringway-on/off':<26} {rps_r:>11.3f} {p99_r:>9.3f} {cpu_r:>11.3f}")
nl, nn = med["nginx-log"], med["nginx-nolog"]
print(f"{'ratio nginx-log/nolog':<26} {ratio(nl[0], nn[0]):>11.3f} {ratio(nl[1], nn[1]):>9.3f} "
      f"{ratio(nl[2], nn[2]):>11.3f}   (for reference: what its access log costs nginx)")
print(f"{verdict(rps_r >= 0.95)} req/s ratio >= 0.95: ringway-on/ringway-off = {rps_r:.3f} "
      f"({on[0]:.0f} vs {off[0]:.0f} req/s)")
print(f"{verdict(cpu_r <= 1.08)} CPU us/req ratio <= 1.08: ringway-on/ringway-off = {cpu_r:.3f} "
      f"({on[2]:.2f} vs {off[2]:.2f} us/req, {(cpu_r - 1) * 100:+.1f}%)")

# Table 2
print()
print("Table 2: ringway with access log vs nginx with access log"
      + ("" if access_log else "   [ACCESS_LOG=0: ringway-on writes NO access log here]"))
print(hdr3)
print("-" * len(hdr3))
print(f"{'ringway-on':<26} {on[0]:>11.0f} {on[1]:>9.3f} {on[2]:>11.2f}")
print(f"{'nginx-log':<26} {nl[0]:>11.0f} {nl[1]:>9.3f} {nl[2]:>11.2f}")
c2 = ratio(on[2], nl[2])
print(f"{'ratio ringway-on/nginx-log':<26} {ratio(on[0], nl[0]):>11.3f} {ratio(on[1], nl[1]):>9.3f} {c2:>11.3f}"
      "   (req/s higher is better for ringway; p99 and cpu/req lower is)")
print(f"{verdict(on[2] <= nl[2])} CPU us/req: ringway-on <= nginx-log ({on[2]:.2f} vs {nl[2]:.2f} us/req, ratio {c2:.3f})")

idle = [p for p in names if p in med and med[p][3] < 90.0]
if idle:
    print()
    print(f"NOTE: {', '.join(idle)} used under 90% of CPU 0 (median cpu%): wrk or the origin on CPU 1, "
          "not the proxy, set the pace there, so req/s is a lower bound; compare cpu us/req")
sys.exit(1 if failed else 0)
EOF

# ------------------------------------------------------------------ sanity checks

# Lines in a file (0 when missing).
lines_of() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
size_of() { if [[ -f $1 ]]; then stat -c %s "$1"; else echo 0; fi; }
human() { python3 -c 'import sys; n = int(sys.argv[1]); print(f"{n} bytes ({n / 1048576:.1f} MiB)")' "$1"; }
# Whether FILE's last line is one JSON object.
last_line_json() {
    tail -n 1 "$1" | python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); sys.exit(0 if isinstance(d, dict) else 1)' 2>/dev/null
}

echo
echo "Sanity checks"
echo "-------------"
check_status=0
if ((ACCESS_LOG)); then
    metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$ON_ADMIN/metrics") \
        || die "ringway-on's GET /metrics on admin port $ON_ADMIN failed after the runs"
    if grep -q '^ringway_access_log_dropped_total' <<<"$metrics"; then
        dropped=$(awk '/^ringway_access_log_dropped_total/ {s += $NF} END {printf "%d", s}' <<<"$metrics")
        dropped_note="$dropped (ringway_access_log_dropped_total)"
    else
        dropped=0
        dropped_note="unknown: GET /metrics has no ringway_access_log_dropped_total (counted as 0)"
    fi
    want=$((ON_REQS - dropped))
    # The writer flushes at least every ~100 ms; allow it (bounded) 5 s.
    for _ in $(seq 50); do
        got=$(lines_of "$RW_LOG_FILE")
        ((got >= want)) && break
        sleep 0.1
    done
    got=$(lines_of "$RW_LOG_FILE")
    echo "ringway access log: $got lines, $(human "$(size_of "$RW_LOG_FILE")"); wrk counted $ON_REQS responses from ringway-on (warm-up included); dropped records: $dropped_note"
    if ((got >= want)); then
        echo "PASS ringway access log lines >= responses - dropped ($got >= $want)"
    else
        echo "FAIL ringway access log lines >= responses - dropped ($got < $want: $((want - got)) lines missing)"
        check_status=1
    fi
    if ((dropped > 0)); then
        echo "WARNING: ringway dropped $dropped access-log records (queue full): ringway-on's CPU per request leaves out formatting and writing them"
    fi
    if ((got > 0)) && last_line_json "$RW_LOG_FILE"; then
        echo "PASS ringway access log's last line is a JSON object"
    else
        echo "FAIL ringway access log's last line is not a JSON object"
        check_status=1
    fi
else
    echo "ringway access log: skipped (ACCESS_LOG=0)"
fi
# nginx flushes its 64k buffer at least every second; allow it (bounded) 3 s.
for _ in $(seq 30); do
    [[ -s $NG_LOG_FILE ]] && break
    sleep 0.1
done
sleep 1.5
got=$(lines_of "$NG_LOG_FILE")
echo "nginx access log: $got lines, $(human "$(size_of "$NG_LOG_FILE")"); wrk counted $NGL_REQS responses from nginx-log (warm-up included)"
if ((got > 0)); then
    echo "PASS nginx access log has lines"
else
    echo "FAIL nginx access log has no lines"
    check_status=1
fi
if ((got > 0)) && last_line_json "$NG_LOG_FILE"; then
    echo "PASS nginx access log's last line is a JSON object"
else
    echo "FAIL nginx access log's last line is not a JSON object"
    check_status=1
fi

if ((problems)); then
    echo
    echo "WARNING: $problems run(s) had non-2xx/3xx responses or socket errors (details above)"
fi
show_logs
((report_status == 0 && check_status == 0)) || exit 1
exit 0
