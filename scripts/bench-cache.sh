#!/usr/bin/env bash
# What the HTTP cache (#6) buys: ringway's hit path against its miss path on
# the same caching route, and against nginx's proxy_cache hit path, one
# worker each, pinned to the same CPU, measured alternately at maximum
# throughput.
#
#   origin   nginx, worker_processes 1, a static file of BODY_SIZE bytes
#            (ETag and Last-Modified from the file):               CPU 1
#              /hit/...   Cache-Control: max-age=3600 (storable)
#              /miss/...  Cache-Control: no-store
#   proxy A  ringway, workers = 1, started under `taskset -c 0`: it pins
#            its one worker to CPU 0; [cache] size = "64MiB" and one route
#            with a [routes.cache] table forwarding everything       CPU 0
#   proxy B  nginx, worker_processes 1, proxy_cache with its cache
#            directory on tmpfs (/dev/shm), proxy_pass to an upstream
#            block with `keepalive 64`; open_file_cache on (sendfile
#            off, see NGINX_SENDFILE), as it serves small bodies
#            fastest                                                 CPU 0
#   load     ringway-load -c $CONNECTIONS -t 1 --cpus 1 -d $DURATION,
#            closed loop (each connection sends its next request as
#            soon as the previous response ends)                    CPU 1
#
# Three scenarios, each one URL (the hit path of one hot key):
#   rw-hit   ringway, GET /hit/a: looked up in the worker's shard and
#            answered from memory, the origin never asked;
#   rw-miss  ringway, GET /miss/a on the same route: looked up, missed,
#            forwarded, relayed and not stored (no-store), every time. Once
#            a key's response was not stored, its misses skip collapsing
#            (they go upstream at once instead of waiting for each other's
#            fetch), so only the first few requests of a run may collapse;
#            the "collapsed" column counts them.
#   ng-hit   nginx, GET /hit/a: a proxy_cache hit. nginx keeps only the keys
#            in shared memory (keys_zone); it serves the response from its
#            cache file, here on tmpfs, so from the page cache: an open (or
#            an open_file_cache lookup), the stored header and body read
#            back from the file and written to the client. That is its
#            normal hit path: proxy_cache has no in-memory body store.
#
# Both proxies run for the whole benchmark: the one not being measured sits
# idle (no traffic, so it uses no CPU). Before measuring, curl checks every
# scenario's URL: ringway's first /hit/a is `Cache-Status: ringway;
# fwd=miss; fwd-status=200; stored` and the next ones `ringway; hit`; every
# /miss/a is `ringway; fwd=miss; fwd-status=200; detail=no-store`; nginx's
# X-Cache-Status ($upstream_cache_status) is MISS, then HIT, for /hit/a; every
# body is BODY_SIZE bytes. After the runs the hit URLs are checked again.
#
# After a warm-up run per scenario (WARMUP; not in the medians), ROUNDS
# rounds each run every scenario once, the order rotating by one per round
# (rw-hit rw-miss ng-hit, rw-miss ng-hit rw-hit, ...), so slow drift on a
# shared machine hits every scenario alike. Per run: responses per second,
# p50 and p99 latency (ringway-load --json; closed loop: send to response
# end), and the proxy's CPU time per response: utime+stime from
# /proc/PID/stat (fields 14 and 15, clock ticks) before and after the run,
# summed over the proxy's processes (nginx: master + worker; ringway: its
# one process, which covers all of its threads, the idle main and admin
# threads included), over the responses. "cpu%" is that CPU time over the
# run's duration: near 100% means the proxy's CPU was the bottleneck; well
# below it, CPU 1 (origin and generator) was, and the req/s ratio understates
# the difference, so read the cpu/req ratio too. For ringway runs, the
# deltas of its admin API's GET /cache counters (hits, misses, collapsed,
# stored) show which path every request took: a hit run must count no
# miss, a miss run no hit and nothing stored. (The admin API listens on a
# free loopback port; it is idle during the runs.)
#
# Then the medians per scenario and two targets on the req/s medians:
#   rw-hit / rw-miss >= 2   (the cache's hit path is worth having)
#   rw-hit / ng-hit  >= 1   (at least as fast as nginx's proxy_cache hit)
# printed as PASS or FAIL.
#
# Exit status: 1 when any measured request failed or got another status than
# 200, a run took another cache path than its scenario's, a check failed, or
# ringway's /status shows 4xx, 5xx or panics during the measured runs; a
# FAILed target does not change the exit status (on a shared 2-vCPU machine
# one run can miss it by chance).
#
# Environment:
#   DURATION     ringway-load duration per run, like 10s    (default 10s)
#   ROUNDS       rounds, each one run per scenario           (default 5)
#   CONNECTIONS  generator connections                       (default 64)
#   WARMUP       warm-up run duration per scenario           (default 2s)
#   BODY_SIZE    response body bytes, 1..1048576 (ringway's
#                default max-entry-size)                     (default 1024)
#   NGINX_SENDFILE  on or off, for both nginx (origin and proxy); on may
#                suit large BODY_SIZE                        (default off)
#   LOCK_TIMEOUT ringway's [cache] lock-timeout, like 5s; "0s" turns
#                collapsing off, to see the miss path without the waits
#                                              (default: unset, ringway's 5s)
#   REBUILD      1: cargo build --release -p ringway -p ringway-loadtest
#                first (quick when nothing changed); 0: use the binaries
#                as they are                                 (default 1)
#   KEEP_TMP=1   keep the temp dir (configs, logs, JSON reports) and the
#                nginx cache directory under /dev/shm
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
BODY_SIZE=${BODY_SIZE:-1024}
LOCK_TIMEOUT=${LOCK_TIMEOUT:-}
NGINX_SENDFILE=${NGINX_SENDFILE:-off}
REBUILD=${REBUILD:-1}
TARGET_HIT_MISS=2   # req/s, rw-hit over rw-miss (medians)
TARGET_HIT_NGINX=1  # req/s, rw-hit over ng-hit (medians)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY=$REPO/target/release/ringway
LOADGEN=$REPO/target/release/ringway-load

log() { printf '[cache] %s\n' "$*" >&2; }
die() { printf '[cache] error: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $BODY_SIZE =~ ^[0-9]+$ && $BODY_SIZE -ge 1 && $BODY_SIZE -le 1048576 ]] || die "BODY_SIZE must be 1..1048576"
[[ $REBUILD == 0 || $REBUILD == 1 ]] || die "REBUILD must be 0 or 1"
[[ $NGINX_SENDFILE == on || $NGINX_SENDFILE == off ]] || die "NGINX_SENDFILE must be on or off"
[[ -z $LOCK_TIMEOUT || $LOCK_TIMEOUT =~ ^[0-9]+(ms|s)$ ]] || die "LOCK_TIMEOUT must look like 5s, 500ms or 0s"
secs() {   # "10s" or "2m" -> seconds
    [[ $1 =~ ^([0-9]+)(s|m)$ ]] || die "durations must look like 10s or 2m (got '$1')"
    if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
(($(secs "$DURATION") >= 1 && $(secs "$DURATION") <= 3600)) || die "DURATION must be 1s..60m"
(($(secs "$WARMUP") >= 1 && $(secs "$WARMUP") <= 600)) || die "WARMUP must be 1s..10m"

SCENARIOS=(rw-hit rw-miss ng-hit)
HIT_PATH=/hit/a
MISS_PATH=/miss/a

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

if ((REBUILD)); then
    command -v cargo >/dev/null 2>&1 || die "no cargo to build with; rerun with REBUILD=0 to use the binaries as they are"
    log "cargo build --release -p ringway -p ringway-loadtest"
    (cd "$REPO" && cargo build --release -p ringway -p ringway-loadtest) || die "build failed"
fi
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"
[[ -x $LOADGEN ]] || die "no ringway-load binary at $LOADGEN"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"
CLK_TCK=$(getconf CLK_TCK)
[[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] || die "/dev/shm is not a tmpfs; nginx's cache directory goes there"

TMP=$(mktemp -d /tmp/ringway-cache.XXXXXX)
chmod 755 "$TMP"
NG_CACHE=$(mktemp -d /dev/shm/ringway-cache-nginx.XXXXXX)
chmod 755 "$NG_CACHE"
PIDS=()   # long-lived: the nginx origin, ringway, the nginx proxy
CUR=()    # the load generator while a run is on

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    local pid
    for pid in "${CUR[@]}" "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CUR[@]}" "${PIDS[@]}"; do
        # bounded wait: at most ~5 s per process, then SIGKILL
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept $TMP and $NG_CACHE"
    else
        rm -rf "$TMP" "$NG_CACHE"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Four free loopback ports, held open together so they are distinct: the
# origin, ringway's listener and admin API, and the nginx proxy.
read -r ORIGIN_PORT RW_PORT ADMIN_PORT NG_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ------------------------------------------------------------------ configs

# The body: BODY_SIZE printable bytes ending in a newline.
mkdir -p "$TMP/www"
python3 - "$TMP/www/body" "$BODY_SIZE" <<'EOF'
import sys
path, n = sys.argv[1], int(sys.argv[2])
line = b"ringway cache benchmark body 0123456789 abcdefghijklmnopqrstuvwxyz\n"
data = (line * (n // len(line) + 1))[:n - 1] + b"\n"
open(path, "wb").write(data)
EOF
chmod 644 "$TMP/www/body"

# keepalive_requests is raised everywhere so that neither nginx closes a
# keep-alive connection after its default 1000 requests (ringway has no such
# limit); otherwise the generator and the proxies would reconnect throughout.
# keepalive_timeout outlasts the idle gaps between one proxy's runs.
# open_file_cache spares both nginx an open() and fstat() per request of the
# body file (origin) or the cache file (proxy); with a 1 KiB body sendfile
# (one more system call after the header's write) made nginx's hit path
# slower here (about 100k req/s against 135k without it), so it stays off
# unless NGINX_SENDFILE=on.
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
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    sendfile $NGINX_SENDFILE;
    open_file_cache max=1000 inactive=1h;
    open_file_cache_valid 1h;
EOF
}

{
    nginx_common origin
    cat <<EOF
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $TMP/www;
        location /hit/ {
            add_header Cache-Control "max-age=3600" always;
            try_files /body =404;
        }
        location /miss/ {
            add_header Cache-Control "no-store" always;
            try_files /body =404;
        }
        location = /up { return 200 "up\n"; }
    }
}
EOF
} >"$TMP/origin.conf"

# The cache key is nginx's default ($scheme$proxy_host$request_uri); the
# freshness comes from the origin's max-age (no proxy_cache_valid).
{
    nginx_common proxy
    cat <<EOF
    proxy_cache_path $NG_CACHE levels=1:2 keys_zone=bench:10m max_size=64m inactive=1h use_temp_path=off;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NG_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
EOF
} >"$TMP/nginx-proxy.conf"

cat >"$TMP/ringway.toml" <<EOF
workers = 1

# On a free port (the default, 127.0.0.1:9901, may be taken): the script
# reads GET /cache and GET /status from it between runs.
[admin]
address = "127.0.0.1:$ADMIN_PORT"

[cache]
size = "64MiB"
$([[ -n $LOCK_TIMEOUT ]] && echo "lock-timeout = \"$LOCK_TIMEOUT\"")

[[listeners]]
address = "127.0.0.1:$RW_PORT"

[[upstreams]]
name = "origin"
servers = ["127.0.0.1:$ORIGIN_PORT"]

[[routes]]
name = "cached"
upstream = "origin"

[routes.cache]
EOF

"$NGINX" -t -q -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" || die "origin config invalid"
"$NGINX" -t -q -p "$TMP" -e "$TMP/proxy-error.log" -c "$TMP/nginx-proxy.conf" || die "nginx proxy config invalid"
"$RINGWAY" validate "$TMP/ringway.toml" >"$TMP/validate.out" 2>&1 \
    || die "ringway rejects $TMP/ringway.toml (a binary without the cache? rebuild with" \
        "cargo build --release -p ringway):"$'\n'"$(cat "$TMP/validate.out")"

# ------------------------------------------------------------------ start

log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
log "origin :$ORIGIN_PORT (CPU 1), ringway :$RW_PORT admin :$ADMIN_PORT (CPU 0)," \
    "nginx proxy :$NG_PORT (CPU 0), ringway-load (CPU 1); body $BODY_SIZE bytes"

taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" -g 'daemon off;' \
    >"$TMP/origin.out" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")

taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/ringway.log" 2>&1 &
RW_PID=$!; PIDS+=("$RW_PID")

taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/proxy-error.log" -c "$TMP/nginx-proxy.conf" -g 'daemon off;' \
    >"$TMP/proxy.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")

# Wait (bounded: 10 s) until a URL answers 200. Neither cache stores any of
# the URLs polled.
wait_200() {
    local url=$1 name=$2 pid=$3 code=""
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see logs in $TMP; rerun with KEEP_TMP=1)"
        if code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url") && [[ $code == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer 200 at $url within 10 s (last status: '${code:-none}')"
}
wait_200 "http://127.0.0.1:$ORIGIN_PORT/up" origin "$ORIGIN_PID"
wait_200 "http://127.0.0.1:$ADMIN_PORT/readyz" ringway "$RW_PID"
pinned=$(grep -o 'worker started worker=[0-9]* cpu=[0-9]*' "$TMP/ringway.log" | sed 's/worker started //' | paste -sd, -)
[[ $pinned == "worker=0 cpu=0" ]] || die "expected ringway's one worker on CPU 0, its log says: '${pinned:-nothing}'"
# /up on the origin has no Cache-Control, so nginx does not store it.
wait_200 "http://127.0.0.1:$NG_PORT/up" "nginx proxy" "$NG_PID"
log "all up; ringway $pinned"

# ------------------------------------------------------------------ checks

# probe PORT PATH HEADER: GET it; prints "STATUS BODY_BYTES HEADER-VALUE".
probe() {
    local port=$1 path=$2 header=$3 out value
    : >"$TMP/probe.headers"
    out=$(curl -s -o /dev/null -D "$TMP/probe.headers" -w '%{http_code} %{size_download}' --max-time 5 \
        "http://127.0.0.1:$port$path") || out="no-answer 0"
    value=$(tr -d '\r' <"$TMP/probe.headers" | grep -i "^$header:" | head -1 | sed 's/^[^:]*:[[:space:]]*//')
    echo "$out ${value:-<no $header>}"
}

# expect PORT PATH HEADER PATTERN WHAT: the answer must be 200 with a body
# of BODY_SIZE bytes and HEADER matching PATTERN (an extended regex).
expect() {
    local port=$1 path=$2 header=$3 pattern=$4 what=$5 code size value
    read -r code size value < <(probe "$port" "$path" "$header")
    [[ $code == 200 && $size == "$BODY_SIZE" && $value =~ $pattern ]] \
        || die "$what: GET $path answered $code with $size body bytes and '$header: $value';" \
            "expected 200, $BODY_SIZE bytes and a $header matching '$pattern'"
    printf '%s' "$value"
}

RW_HIT='^ringway; hit; ttl=[0-9]+$'
RW_STORED='^ringway; fwd=miss; fwd-status=200; stored$'
RW_NOSTORE='^ringway; fwd=miss; fwd-status=200; detail=no-store$'
seen=()
seen+=("ringway $HIT_PATH: $(expect "$RW_PORT" "$HIT_PATH" Cache-Status "$RW_STORED" "ringway's first $HIT_PATH")")
for i in 2 3; do
    seen+=("then: $(expect "$RW_PORT" "$HIT_PATH" Cache-Status "$RW_HIT" "ringway's $HIT_PATH (request $i)")")
done
for i in 1 2 3; do
    seen+=("ringway $MISS_PATH: $(expect "$RW_PORT" "$MISS_PATH" Cache-Status "$RW_NOSTORE" "ringway's $MISS_PATH (request $i)")")
done
seen+=("nginx $HIT_PATH: $(expect "$NG_PORT" "$HIT_PATH" X-Cache-Status '^MISS$' "nginx's first $HIT_PATH")")
for i in 2 3; do
    seen+=("then: $(expect "$NG_PORT" "$HIT_PATH" X-Cache-Status '^HIT$' "nginx's $HIT_PATH (request $i)")")
done
log "cache paths as expected:"
for s in "${seen[@]}"; do log "    $s"; done

admin_get() {   # admin_get PATH FILE
    curl -s --max-time 5 -o "$2" -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT$1" | grep -qx 200 \
        || die "GET $1 on ringway's admin API failed"
}

# ------------------------------------------------------------------ measure

# Processes whose CPU counts for a proxy: the pid itself plus its children
# (nginx master + worker; ringway has no children, its threads are counted
# in its own /proc/PID/stat).
proxy_pids() { echo "$1"; pgrep -P "$1" || true; }

# Sum of utime+stime in clock ticks over the given pids.
cpu_ticks() {
    local sum=0 pid line rest f
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }               # skip "pid (comm) " (comm may hold spaces)
        read -r -a f <<<"$rest"         # f[0] is field 3 (state)
        sum=$((sum + f[11] + f[12]))    # fields 14 (utime) and 15 (stime)
    done
    echo "$sum"
}

RESULTS=$TMP/results.txt
: >"$RESULTS"

# run SCENARIO ROUND DURATION: one closed-loop run; appends its figures to
# RESULTS and prints a progress line.
run() {
    local scen=$1 rnd=$2 dur=$3 pfx pid port path pids t0 t1 rc=0 line
    pfx=$TMP/$scen-$rnd
    case $scen in
        rw-hit) pid=$RW_PID port=$RW_PORT path=$HIT_PATH ;;
        rw-miss) pid=$RW_PID port=$RW_PORT path=$MISS_PATH ;;
        ng-hit) pid=$NG_PID port=$NG_PORT path=$HIT_PATH ;;
    esac
    kill -0 "$pid" 2>/dev/null || die "the proxy of $scen is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    mapfile -t pids < <(proxy_pids "$pid")
    [[ $scen != ng-* || ${#pids[@]} -ge 2 ]] || die "nginx worker process not found under master $pid"
    if [[ $scen == rw-* ]]; then admin_get /cache "$pfx.cache0.json"; else echo '{}' >"$pfx.cache0.json"; fi
    t0=$(cpu_ticks "${pids[@]}")
    taskset -c 1 "$LOADGEN" -c "$CONNECTIONS" -t 1 --cpus 1 -d "$dur" \
        --json "$pfx.load.json" "http://127.0.0.1:$port$path" >"$pfx.txt" 2>&1 &
    CUR=("$!")
    wait "${CUR[0]}" || rc=$?
    CUR=()
    t1=$(cpu_ticks "${pids[@]}")
    ((rc == 0)) || die "ringway-load exited with status $rc against $scen: $(cat "$pfx.txt")"
    kill -0 "$pid" 2>/dev/null || die "the proxy of $scen died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    if [[ $scen == rw-* ]]; then admin_get /cache "$pfx.cache1.json"; else echo '{}' >"$pfx.cache1.json"; fi
    line=$(python3 - "$pfx" "$scen" "$rnd" "$t0" "$t1" "$CLK_TCK" <<'EOF'
import json, sys
pfx, scen, rnd, t0, t1, hz = sys.argv[1:7]
d = json.load(open(pfx + ".load.json"))
st = {int(k): v for k, v in d["statuses"].items()}
other = sum(v for k, v in st.items() if k != 200)
errors = sum(d["errors"].values())
cpu_s = (int(t1) - int(t0)) / int(hz)
resp, secs = d["responses"], d["duration"]
per_req = cpu_s * 1e6 / resp if resp else float("nan")
pct = 100.0 * cpu_s / secs if secs else float("nan")
bpr = d["bytes_read"] / resp if resp else 0.0
c0, c1 = json.load(open(pfx + ".cache0.json")), json.load(open(pfx + ".cache1.json"))
def delta(field):
    if not c0:
        return "-"
    return str(sum(w[field] for w in c1["workers"]) - sum(w[field] for w in c0["workers"]))
lat = d["latency"]
print(scen, rnd, f"{d['achieved_rate']:.2f}", f"{lat['p50_us'] / 1000:.3f}", f"{lat['p99_us'] / 1000:.3f}",
      resp, f"{per_req:.3f}", f"{pct:.1f}", st.get(200, 0), other, errors, d["connects"],
      len(d.get("warnings") or []), f"{bpr:.0f}",
      delta("hits"), delta("misses"), delta("collapsed"), delta("stored"), delta("bypass"))
EOF
    )
    echo "$line" >>"$RESULTS"
    read -r _ _ rps p50 p99 _ cpu pct s200 other errors connects warns _ hits misses collapsed _ <<<"$line"
    log "  $scen: $rps req/s, p50 $p50 ms, p99 $p99 ms, $cpu us cpu/req ($pct%), 200 $s200, other $other," \
        "errors $errors, connections $connects$( ((warns)) && echo ", warnings $warns")$(
            [[ $hits != - ]] && echo "; cache hits $hits, misses $misses, collapsed $collapsed")"
}

log "warm-up: $WARMUP per scenario"
for scen in "${SCENARIOS[@]}"; do run "$scen" 0 "$WARMUP"; done
admin_get /status "$TMP/status-before.json"
for r in $(seq "$ROUNDS"); do
    first=$(((r - 1) % ${#SCENARIOS[@]}))
    order=("${SCENARIOS[@]:first}" "${SCENARIOS[@]:0:first}")
    log "round $r/$ROUNDS: ${order[*]} ($DURATION each, $CONNECTIONS connections)"
    for scen in "${order[@]}"; do run "$scen" "$r" "$DURATION"; done
done
admin_get /status "$TMP/status-after.json"

# The hot key is still stored on both (max-age=3600 outlasts any sane run).
expect "$RW_PORT" "$HIT_PATH" Cache-Status "$RW_HIT" "ringway's $HIT_PATH after the runs" >/dev/null
expect "$NG_PORT" "$HIT_PATH" X-Cache-Status '^HIT$' "nginx's $HIT_PATH after the runs" >/dev/null

# ------------------------------------------------------------------ report

echo
echo "HTTP cache, closed loop: proxy (1 worker) on CPU 0; nginx origin (1 worker) and ringway-load (1 thread)"
echo "on CPU 1; ringway-load -c$CONNECTIONS -t1 -d$DURATION, $ROUNDS rounds of ${SCENARIOS[*]} (order rotating);" \
    "body $BODY_SIZE bytes, nginx sendfile $NGINX_SENDFILE${LOCK_TIMEOUT:+, ringway lock-timeout $LOCK_TIMEOUT}"
echo "$(nproc --all) CPUs, CLK_TCK=$CLK_TCK, load average at end $(cut -d' ' -f1-3 /proc/loadavg);" \
    "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), ringway $("$RINGWAY" --version | awk '{print $2}')," \
    "$("$LOADGEN" --version)"
echo "rw-hit: ringway GET $HIT_PATH (max-age=3600, from memory); rw-miss: ringway GET $MISS_PATH (no-store:" \
    "lookup, miss, forward, not stored); ng-hit: nginx proxy_cache GET $HIT_PATH (cache file on tmpfs)"
status=0
python3 - "$RESULTS" "$TMP/status-before.json" "$TMP/status-after.json" "$TARGET_HIT_MISS" "$TARGET_HIT_NGINX" \
    "$CONNECTIONS" "$BODY_SIZE" <<'EOF' || status=$?
import json, math, statistics, sys

path, before, after, t_miss, t_nginx, conns, body = sys.argv[1:8]
t_miss, t_nginx, conns, body = float(t_miss), float(t_nginx), int(conns), int(body)
cols = ("scen", "round", "rps", "p50", "p99", "resp", "cpu", "pct", "s200", "other", "errors", "connects",
        "warns", "bpr", "hits", "misses", "collapsed", "stored", "bypass")
recs = []
for line in open(path):
    if not line.strip():
        continue
    d = dict(zip(cols, line.split()))
    for k in ("rps", "p50", "p99", "cpu", "pct", "bpr"):
        d[k] = float(d[k])
    for k in ("round", "resp", "s200", "other", "errors", "connects", "warns"):
        d[k] = int(d[k])
    for k in ("hits", "misses", "collapsed", "stored", "bypass"):
        d[k] = None if d[k] == "-" else int(d[k])
    recs.append(d)
scens = list(dict.fromkeys(d["scen"] for d in recs))
measured = [d for d in recs if d["round"] > 0]
bad = []

def opt(v, w):
    return f"{'-' if v is None else v:>{w}}"

print()
hdr = (f"{'round':>5}  {'scenario':<8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'responses':>10}"
       f" {'cpu us/req':>10} {'cpu%':>6}  {'non-200':>7} {'errors':>6}  {'hits':>9} {'misses':>9} {'collapsed':>9}")
print(hdr)
print("-" * len(hdr))
for d in recs:
    rnd = "warm" if d["round"] == 0 else str(d["round"])
    print(f"{rnd:>5}  {d['scen']:<8} {d['rps']:>9.0f} {d['p50']:>7.3f} {d['p99']:>7.3f} {d['resp']:>10}"
          f" {d['cpu']:>10.3f} {d['pct']:>6.1f}  {d['other']:>7} {d['errors']:>6}  {opt(d['hits'], 9)}"
          f" {opt(d['misses'], 9)} {opt(d['collapsed'], 9)}")
print("   req/s: responses per second; p50/p99: send to response end (closed loop); cpu us/req: the proxy's")
print("   utime+stime over the responses; cpu%: that CPU time over the run; hits/misses/collapsed: ringway's")
print("   GET /cache counters over the run. warm: warm-up, not in the medians.")

fields = ("rps", "p50", "p99", "cpu", "pct")
med = {s: {f: statistics.median(d[f] for d in measured if d["scen"] == s) for f in fields} for s in scens}
ratio = lambda a, b: a / b if b else math.nan
print()
hdr2 = f"{'median':<16} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu us/req':>10} {'cpu%':>6}"
print(hdr2)
print("-" * len(hdr2))
for s in scens:
    m = med[s]
    print(f"{s:<16} {m['rps']:>9.0f} {m['p50']:>7.3f} {m['p99']:>7.3f} {m['cpu']:>10.3f} {m['pct']:>6.1f}")
pairs = (("rw-hit", "rw-miss", t_miss), ("rw-hit", "ng-hit", t_nginx))
for a, b, _ in pairs:
    x, y = med[a], med[b]
    print(f"{a + '/' + b:<16} {ratio(x['rps'], y['rps']):>9.3f} {ratio(x['p50'], y['p50']):>7.3f}"
          f" {ratio(x['p99'], y['p99']):>7.3f} {ratio(x['cpu'], y['cpu']):>10.3f}")
print("   (req/s: higher is better for rw-hit; latency and cpu/req: lower is)")

print()
for a, b, target in pairs:
    r = ratio(med[a]["rps"], med[b]["rps"])
    ok = not math.isnan(r) and r >= target
    per_round = []
    for rnd in sorted({d["round"] for d in measured}):
        p = [d["rps"] for d in measured if d["round"] == rnd and d["scen"] == a]
        q = [d["rps"] for d in measured if d["round"] == rnd and d["scen"] == b]
        if p and q:
            per_round.append(ratio(p[0], q[0]))
    print(f"{'PASS' if ok else 'FAIL'}: {a} req/s / {b} req/s = {r:.3f}, target >= {target:g};"
          f" per round: {', '.join(f'{x:.3f}' for x in per_round)};"
          f" cpu/req {a}/{b} = {ratio(med[a]['cpu'], med[b]['cpu']):.3f}")
low = [s for s in scens if med[s]["pct"] < 90.0]
if low:
    print(f"   note: the proxy's CPU was below 90% busy in {', '.join(low)}: CPU 1 (origin and generator)")
    print("   limited those runs, so their req/s understates what the proxy could do; compare cpu/req too")

print()
for s in scens:
    rs = [d for d in measured if d["scen"] == s]
    tot = {f: sum(d[f] for d in rs) for f in ("resp", "s200", "other", "errors")}
    ok = tot["s200"] == tot["resp"] and not (tot["other"] or tot["errors"])
    line = (f"{s}: {tot['resp']} responses, 200 {tot['s200']}, other {tot['other']}, errors {tot['errors']},"
            f" {min(d['bpr'] for d in rs):.0f}..{max(d['bpr'] for d in rs):.0f} bytes read per response")
    if not ok:
        bad.append(f"{s} runs got responses other than 200 or errors")
    # Body plus head: a response shorter than the body is a wrong answer.
    if any(d["bpr"] < body for d in rs):
        bad.append(f"{s} runs read fewer bytes per response than the {body}-byte body")
    if s.startswith("rw-"):
        c = {f: sum(d[f] for d in rs) for f in ("hits", "misses", "collapsed", "stored", "bypass")}
        line += (f"; cache hits {c['hits']}, misses {c['misses']}, collapsed {c['collapsed']},"
                 f" stored {c['stored']}, bypass {c['bypass']}")
        # Requests in flight when a run stops count in ringway but not in
        # the generator: at most one per connection per run.
        slack = conns * len(rs)
        want = c["hits"] if s == "rw-hit" else c["misses"]
        wrong = c["misses"] + c["stored"] if s == "rw-hit" else c["hits"] + c["stored"]
        path_ok = not wrong and not c["bypass"] and tot["resp"] <= want <= tot["resp"] + slack
        line += ": ok" if ok and path_ok else ": FAILED"
        if not path_ok:
            bad.append(f"{s} runs did not all take the {s[3:]} path")
        if s == "rw-miss" and c["misses"]:
            line += f" ({100.0 * c['collapsed'] / c['misses']:.1f}% of misses waited for another's fetch)"
    else:
        line += ": ok" if ok else ": FAILED"
    print(line)
    reconnected = [d for d in rs if d["connects"] != conns]
    if reconnected:
        print(f"   note: {len(reconnected)} {s} run(s) opened more than {conns} connections"
              " (a connection was closed mid-run)")

s0, s1 = json.load(open(before))["totals"], json.load(open(after))["totals"]
delta = {k: s1[k] - s0[k] for k in s0 if isinstance(s0[k], int) and k != "connections_open"}
print(f"ringway /status over the measured runs: {delta['requests']} requests, 2xx {delta['responses_2xx']},"
      f" 4xx {delta['responses_4xx']}, 5xx {delta['responses_5xx']}, panics {delta['panics']},"
      f" client connections {delta['connections_accepted']}")
if delta["responses_4xx"] or delta["responses_5xx"] or delta["panics"]:
    bad.append("ringway's /status shows 4xx, 5xx or panics during the measured runs")
if bad:
    print()
    print("FAILED: " + "; ".join(bad))
    sys.exit(1)
EOF

notes=$(cat "$TMP"/*.load.json | python3 -c 'import json, sys
dec = json.JSONDecoder(); s = sys.stdin.read().strip(); i = 0
while i < len(s):
    d, i = dec.raw_decode(s, i)
    while i < len(s) and s[i].isspace(): i += 1
    for w in d.get("warnings") or []: print(d["url"] + ": " + w)' | sort | uniq -c | sed 's/^ */    /')
if [[ -n $notes ]]; then
    echo
    echo "ringway-load warnings:"
    echo "$notes"
fi
if grep -qiE 'error|warn|panic' "$TMP/ringway.log"; then
    echo
    echo "ringway log had errors or warnings:"
    grep -iE 'error|warn|panic' "$TMP/ringway.log" | tail -20 | sed 's/^/    /'
fi
for f in "$TMP/origin-error.log" "$TMP/proxy-error.log"; do
    if [[ -s $f ]] && grep -qv '\[notice\]' "$f"; then
        echo
        echo "$(basename "$f"):"
        grep -v '\[notice\]' "$f" | tail -20 | sed 's/^/    /'
    fi
done
exit "$status"
