#!/usr/bin/env bash
# Compare ringway and nginx as HTTP/1.1 reverse proxies in front of the same
# origin, one worker each, pinned to the same CPU, measured alternately.
#
# MODE=plain (the default) compares plain-HTTP proxies with wrk, as below.
# MODE=tls compares TLS-terminating proxies (HTTPS in, plain HTTP to the
# origin); see "MODE=tls" further down.
#
#   origin   nginx, worker_processes 1, `return 200 "hello world\n"`  CPU 1
#   proxy A  ringway, workers = 1, one route forwarding everything      CPU 0
#   proxy B  nginx, worker_processes 1, proxy_pass to an upstream block
#            with `keepalive 64` (keep-alive upstream connections)      CPU 0
#   load     wrk -t1 -c$CONNECTIONS --latency                           CPU 1
#
# Both proxies run for the whole benchmark: the one not being measured sits
# idle (no traffic, so it uses no CPU) while wrk drives the other. Rounds
# alternate A, B, A, B, ... so slow drift on a shared machine hits both.
#
# BASELINE=/path/to/ringway (MODE=plain only): a before/after comparison of
# two ringway builds on the same machine, in alternating rounds. A third
# proxy, "ringway-before", runs that binary with the same config (only its
# listener port differs), workers = 1, pinned to CPU 0 like the others; each
# binary checks the config with its own `validate` subcommand first. Every
# round then measures ringway, ringway-before and nginx, the order rotating
# by one place per round (round 1: ringway, ringway-before, nginx; round 2:
# ringway-before, nginx, ringway; round 3: nginx, ringway, ringway-before;
# ...), so no side always goes first; with ROUNDS a multiple of 3 each side
# runs equally often in every position. On top of today's report it prints
# the ratios ringway/ringway-before of the medians of req/s, p99 and CPU
# us/req, and PASS/FAIL for the targets of a change: req/s ratio >= 0.98 and
# CPU us/req at most 2% above ringway-before's (ratio <= 1.02). The exit
# status is 1 when one of them fails.
#
# Per run it reports requests/s and p99 latency (from wrk), and the proxy's
# CPU time per request: utime+stime from /proc/PID/stat (fields 14 and 15,
# clock ticks) before and after the run, summed over the proxy's processes
# (nginx: master + worker; ringway: its one process, which covers all of its
# threads), divided by the requests wrk completed. "cpu%" is that CPU time
# over the run's wall time: near 100% means the proxy's CPU was saturated.
#
# MODE=tls: the same origin, topology and alternation, but both proxies
# terminate TLS (TLS 1.2 and 1.3, default suites, ALPN http/1.1, no HTTP/2)
# with the SAME ECDSA P-256 certificate, generated here with openssl
# (CN and SAN bench.test, valid 30 days). The load generator is ringway-load
# (wrk has no control over TLS resumption), `-t1 --cpus 1 -k`, connecting to
# https://127.0.0.1:PORT/: an IP address carries no SNI, so both proxies
# serve their default (only) certificate. Two scenarios, each run for both
# proxies in every round:
#   keep-alive  closed loop on $CONNECTIONS keep-alive connections (their
#               handshakes happen before the timed run): HTTPS requests/s
#   handshake   `-H "Connection: close" --no-resume`: every request on a new
#               connection with a full handshake (no session ID, no ticket),
#               so requests/s = connections/s = full handshakes/s
#   proxy A  ringway, [listeners.tls] with the certificate (session cache
#            and tickets at their defaults)                             CPU 0
#   proxy B  nginx, `listen ... ssl`, ssl_session_cache shared:SSL:10m,
#            tickets at the default, same upstream keepalive as plain   CPU 0
#   load     ringway-load -t1 --cpus 1 -c$CONNECTIONS                   CPU 1
# Before measuring, each proxy must answer 200 "hello world" to
# `curl -sk https://127.0.0.1:PORT/` and to a verified request
# (`--cacert` the certificate, SNI bench.test). Per scenario it reports the
# medians of rate, p50, p99, proxy CPU per request (= per handshake in the
# handshake scenario) and cpu%, the ratio ringway/nginx, and PASS/FAIL for
# the targets: ringway >= nginx in keep-alive HTTPS requests/s and in full
# handshakes/s. The exit status is 1 when a target fails. Each handshake
# costs the generator (TCP connect, X25519 and an ECDSA verify) as much as
# the proxy or more, so with the generator on one CPU check cpu% (the
# proxy's) and gen% (ringway-load's): a proxy well below 100% was not the
# bottleneck, its rate is a lower bound, and CPU per handshake is the
# figure that compares the proxies.
#
# Environment:
#   MODE         plain or tls                      (default plain)
#   DURATION     duration per run                  (default 10s)
#   ROUNDS       number of A/B rounds              (default 5)
#   CONNECTIONS  load generator connections        (default 64)
#   WARMUP       warm-up run duration per proxy    (default 2s)
#   KEEP_TMP=1   keep the temp dir (configs, logs, certificate, raw output)
#   RINGWAY      the ringway binary under test  (default target/release/ringway
#                of this checkout, built if missing)
#   RINGWAY_LOAD the ringway-load binary, MODE=tls (default
#                target/release/ringway-load, built if missing)
#   BASELINE     a ringway binary to compare against as "ringway-before"
#                (MODE=plain only; default unset: no baseline, report as
#                without it)
#
# Usage:
#   scripts/bench-vs-nginx.sh
#   BASELINE=/path/to/old/ringway scripts/bench-vs-nginx.sh
#   RINGWAY=/path/to/new/ringway BASELINE=/path/to/old/ringway ROUNDS=6 scripts/bench-vs-nginx.sh
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

MODE=${MODE:-plain}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY_DEFAULT=$REPO/target/release/ringway
RINGWAY_LOAD_DEFAULT=$REPO/target/release/ringway-load
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}
RINGWAY_LOAD=${RINGWAY_LOAD:-$RINGWAY_LOAD_DEFAULT}
BASELINE=${BASELINE:-}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

[[ $MODE == plain || $MODE == tls ]] || die "MODE must be plain or tls"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ -z $BASELINE || $MODE == plain ]] || die "BASELINE works with MODE=plain only"
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE && ! -d $BASELINE ]] || die "BASELINE=$BASELINE is not an executable file"
    BASELINE=$(realpath "$BASELINE")
fi

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
[[ $MODE == tls ]] || command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
[[ $MODE == plain ]] || command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
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
if [[ $MODE == tls ]]; then
    if [[ ! -x $RINGWAY_LOAD && $RINGWAY_LOAD == "$RINGWAY_LOAD_DEFAULT" ]]; then
        log "building ringway-load (release)"
        (cd "$REPO" && cargo build --release -p ringway-loadtest)
    fi
    [[ -x $RINGWAY_LOAD ]] || die "no ringway-load binary at $RINGWAY_LOAD"
    "$RINGWAY_LOAD" --help | grep -q -- --no-resume || die "$RINGWAY_LOAD has no --no-resume; rebuild it"
fi

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/ringway-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=()

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

# Four free loopback ports, held open together so they are distinct (the
# fourth is ringway-before's, used only with BASELINE).
read -r ORIGIN_PORT RW_PORT NG_PORT RB_PORT < <(python3 - <<'EOF'
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

# keepalive_requests is raised everywhere so that neither nginx closes a
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

if [[ $MODE == plain ]]; then
{
    nginx_common proxy
    cat <<EOF
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NG_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$TMP/nginx-proxy.conf"

cat >"$TMP/ringway.toml" <<EOF
workers = 1

# No admin API: it would take the fixed default port 127.0.0.1:9901.
[admin]
enabled = false

[[listeners]]
address = "127.0.0.1:$RW_PORT"

[[upstreams]]
name = "origin"
servers = ["127.0.0.1:$ORIGIN_PORT"]

[[routes]]
name = "all"
path-prefix = "/"
upstream = "origin"
EOF
if [[ -n $BASELINE ]]; then
    # The same config; only the listener port differs.
    sed "s/^address = \"127.0.0.1:$RW_PORT\"\$/address = \"127.0.0.1:$RB_PORT\"/" \
        "$TMP/ringway.toml" >"$TMP/ringway-before.toml"
    grep -q "^address = \"127.0.0.1:$RB_PORT\"\$" "$TMP/ringway-before.toml" \
        || die "could not set ringway-before's port in its config"
fi
else
# One certificate for both proxies: ECDSA P-256, self-signed, for bench.test;
# valid 30 days, as ringway warns about certificates expiring within 14.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 \
    || die "openssl could not make the certificate: $(cat "$TMP/openssl.log")"

# Session cache and tickets stay at their defaults on both sides (the
# handshake scenario's client offers neither, so they cannot shortcut it).
{
    nginx_common proxy
    cat <<EOF
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$TMP/nginx-proxy.conf"

cat >"$TMP/ringway.toml" <<EOF
workers = 1

# No admin API: it would take the fixed default port 127.0.0.1:9901.
[admin]
enabled = false

[[listeners]]
address = "127.0.0.1:$RW_PORT"

# unknown-sni stays "default": the generator sends no SNI (an IP address).
[listeners.tls]
certificates = [{ cert = "$TMP/cert.pem", key = "$TMP/key.pem" }]

[[upstreams]]
name = "origin"
servers = ["127.0.0.1:$ORIGIN_PORT"]

[[routes]]
name = "all"
path-prefix = "/"
upstream = "origin"
EOF
fi

"$NGINX" -t -q -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" || die "origin config invalid"
"$NGINX" -t -q -p "$TMP" -e "$TMP/proxy-error.log" -c "$TMP/nginx-proxy.conf" || die "nginx proxy config invalid"
"$RINGWAY" validate "$TMP/ringway.toml" >/dev/null || die "ringway config invalid"
if [[ -n $BASELINE ]]; then
    "$BASELINE" validate "$TMP/ringway-before.toml" >/dev/null \
        || die "ringway-before config invalid (checked by $BASELINE validate)"
fi

# ------------------------------------------------------------------ start

log "origin :$ORIGIN_PORT (CPU 1), ringway :$RW_PORT (CPU 0), nginx proxy :$NG_PORT (CPU 0)"
[[ -z $BASELINE ]] || log "ringway-before :$RB_PORT (CPU 0): $BASELINE"

taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" -g 'daemon off;' \
    >"$TMP/origin.out" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")

taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/ringway.log" 2>&1 &
RW_PID=$!; PIDS+=("$RW_PID")

taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/proxy-error.log" -c "$TMP/nginx-proxy.conf" -g 'daemon off;' \
    >"$TMP/proxy.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")

RB_PID=""
if [[ -n $BASELINE ]]; then
    taskset -c 0 "$BASELINE" -c "$TMP/ringway-before.toml" >"$TMP/ringway-before.log" 2>&1 &
    RB_PID=$!; PIDS+=("$RB_PID")
fi

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
# HTTPS: wait (bounded: 10 s) for 200 "hello world" from `curl -sk` on the
# address the generator uses, then require the same through a verified
# connection (the certificate as the only CA, SNI bench.test), so both
# proxies are known to serve this run's certificate.
wait_https() {
    local port=$1 name=$2 pid=$3 code="" body="" verified
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see logs in $TMP; rerun with KEEP_TMP=1)"
        code=$(curl -sk --max-time 1 -o "$TMP/curl-$pid.body" -w '%{http_code}' "https://127.0.0.1:$port/") || code=000
        body=$(cat "$TMP/curl-$pid.body" 2>/dev/null || true)
        [[ $code == 200 && $body == "hello world" ]] && break
        sleep 0.1
    done
    [[ $code == 200 && $body == "hello world" ]] \
        || die "$name did not answer 200 'hello world' to curl -sk https://127.0.0.1:$port/ within 10 s (last: status $code, body '$body')"
    verified=$(curl -sS --max-time 2 --cacert "$TMP/cert.pem" --resolve "bench.test:$port:127.0.0.1" \
        "https://bench.test:$port/" 2>&1) \
        || die "$name: verified HTTPS request with the bench certificate failed: $verified"
    [[ $verified == "hello world" ]] || die "$name: verified HTTPS request answered '$verified'"
    log "$name answers over TLS: $code $body"
}
wait_hello "http://127.0.0.1:$ORIGIN_PORT/" origin "$ORIGIN_PID"
if [[ $MODE == plain ]]; then
    wait_hello "http://127.0.0.1:$RW_PORT/" ringway "$RW_PID"
    wait_hello "http://127.0.0.1:$NG_PORT/" "nginx proxy" "$NG_PID"
    [[ -z $BASELINE ]] || wait_hello "http://127.0.0.1:$RB_PORT/" ringway-before "$RB_PID"
else
    wait_https "$RW_PORT" ringway "$RW_PID"
    wait_https "$NG_PORT" "nginx proxy" "$NG_PID"
fi

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
    local name
    for name in ringway ringway-before; do
        [[ -f $TMP/$name.log ]] || continue
        if grep -qiE 'error|warn|panic' "$TMP/$name.log"; then
            echo
            echo "$name log had errors or warnings:"
            grep -iE 'error|warn|panic' "$TMP/$name.log" | tail -20 | sed 's/^/    /'
        fi
    done
    for f in "$TMP/origin-error.log" "$TMP/proxy-error.log"; do
        if [[ -s $f ]] && grep -qv '\[notice\]' "$f"; then
            echo
            echo "$(basename "$f"):"
            grep -v '\[notice\]' "$f" | tail -20 | sed 's/^/    /'
        fi
    done
}

# ------------------------------------------------------------------ MODE=tls

# The generator's arguments per TLS scenario (besides -t1 --cpus 1 -c -d -k).
tls_args() {
    case $1 in
        keepalive) ;;
        handshake) echo "--no-resume"; echo "-H"; echo "Connection: close" ;;
        *) die "unknown scenario $1" ;;
    esac
}

# run_load NAME PID PORT SCENARIO DURATION OUTFILE -> prints "rate p50_ms
# p99_ms responses secs non2xx errors connects cpu_us_per_req cpu_pct
# gen_cpu_pct" (the full report is OUTFILE, its JSON OUTFILE.json).
# gen_cpu_pct is the generator's own user+sys time (bash's `time`) over the
# run: near 100% means it, not the proxy, set the pace.
run_load() {
    local name=$1 pid=$2 port=$3 scenario=$4 dur=$5 out=$6 pids t0 t1 args gen
    local TIMEFORMAT='%3U %3S'
    kill -0 "$pid" 2>/dev/null || die "$name is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    mapfile -t pids < <(proxy_pids "$pid")
    [[ $name != nginx || ${#pids[@]} -ge 2 ]] || die "nginx worker process not found under master $pid"
    mapfile -t args < <(tls_args "$scenario")
    t0=$(cpu_ticks "${pids[@]}")
    gen=$( { time taskset -c 1 "$RINGWAY_LOAD" -t 1 --cpus 1 -c "$CONNECTIONS" -d "$dur" -k "${args[@]}" \
        --json "$out.json" "https://127.0.0.1:$port/" >"$out" 2>&1; } 2>&1 ) \
        || die "ringway-load failed against $name ($scenario): $(cat "$out")"
    t1=$(cpu_ticks "${pids[@]}")
    kill -0 "$pid" 2>/dev/null || die "$name died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    python3 - "$out.json" "$t0" "$t1" "$CLK_TCK" "$gen" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
gen_s = sum(float(x) for x in sys.argv[5].split())
cpu_s = (t1 - t0) / hz
reqs, secs = r["responses"], r["duration"]
per_req = cpu_s * 1e6 / reqs if reqs else float("nan")
pct = 100.0 * cpu_s / secs if secs else float("nan")
gen_pct = 100.0 * gen_s / secs if secs else float("nan")
non2xx = sum(n for s, n in r["statuses"].items() if not 200 <= int(s) < 400)
e = r["errors"]
errs = "c%d/r%d/t%d/m%d" % (e["connect"], e["reset"], e["timeout"], e["malformed"]) \
    if any(e[k] for k in ("connect", "reset", "timeout", "malformed")) else "0"
lat = r["latency"]
print(f"{r['achieved_rate']:.2f} {lat['p50_us'] / 1000:.3f} {lat['p99_us'] / 1000:.3f} {reqs} {secs:.3f} "
      f"{non2xx} {errs} {r['connects']} {per_req:.3f} {pct:.1f} {gen_pct:.1f}")
EOF
}

measure_tls() {
    local scenario proxy pid port out line r reqs non2xx errs connects
    log "warm-up: $WARMUP per proxy and scenario"
    for scenario in keepalive handshake; do
        run_load ringway "$RW_PID" "$RW_PORT" "$scenario" "$WARMUP" "$TMP/warmup-$scenario-ringway.txt" >/dev/null
        run_load nginx "$NG_PID" "$NG_PORT" "$scenario" "$WARMUP" "$TMP/warmup-$scenario-nginx.txt" >/dev/null
    done
    RESULTS=$TMP/results.txt
    : >"$RESULTS"
    problems=0
    for r in $(seq "$ROUNDS"); do
        for scenario in keepalive handshake; do
            for proxy in ringway nginx; do
                if [[ $proxy == ringway ]]; then pid=$RW_PID port=$RW_PORT; else pid=$NG_PID port=$NG_PORT; fi
                out=$TMP/load-$r-$scenario-$proxy.txt
                log "round $r/$ROUNDS: $scenario, $proxy ($DURATION, $CONNECTIONS connections)"
                line=$(run_load "$proxy" "$pid" "$port" "$scenario" "$DURATION" "$out")
                echo "$r $scenario $proxy $line" >>"$RESULTS"
                read -r _ _ _ reqs _ non2xx errs connects _ _ _ <<<"$line"
                if [[ $non2xx != 0 || $errs != 0 ]]; then
                    problems=$((problems + 1))
                    log "WARNING: $proxy $scenario round $r: non-2xx/3xx=$non2xx errors=$errs; ringway-load said:"
                    sed 's/^/    /' "$out" >&2
                fi
                # Each request must have had its own connection (and so its
                # own full handshake); fewer means the proxy kept it alive.
                if [[ $scenario == handshake ]] && ((connects < reqs)); then
                    problems=$((problems + 1))
                    log "WARNING: $proxy handshake round $r: $reqs responses on only $connects connections"
                fi
            done
        done
    done
}

report_tls() {
    echo
    echo "ringway vs nginx TLS-terminating reverse proxy: 1 worker each on CPU 0; origin and ringway-load on CPU 1"
    echo "same ECDSA P-256 certificate; ringway-load -t1 -c$CONNECTIONS -d$DURATION -k, $ROUNDS rounds, $(nproc --all) CPUs, CLK_TCK=$CLK_TCK"
    echo "  keep-alive: keep-alive HTTPS requests; handshake: --no-resume -H 'Connection: close' (rate = full handshakes/s)"
    echo "  p50/p99: send to end of response (a handshake is part of connecting, not of the latency);"
    echo "  cpu us/req and cpu%: the proxy's CPU time; gen%: ringway-load's, over the run, on CPU 1 (shared with the origin)"
    echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') ($("$NGINX" -V 2>&1 | grep -oE 'running with OpenSSL [^ ]+|built with OpenSSL [^ ]+' | tail -1)), $("$RINGWAY_LOAD" --version), ringway $("$RINGWAY" --version | awk '{print $2}')"
    python3 - "$RESULTS" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
names = {"keepalive": ("keep-alive HTTPS", "req/s"), "handshake": ("full handshakes", "hs/s")}
failed = 0
for scenario in ("keepalive", "handshake"):
    title, unit = names[scenario]
    print()
    print(f"== {title} ==")
    hdr = (f"{'round':>5}  {'proxy':<8} {unit:>10} {'p50 ms':>8} {'p99 ms':>8} {'responses':>10} "
           f"{'conns':>9} {'cpu us/req':>11} {'cpu%':>6} {'gen%':>6}  {'non-2xx':>7}  {'errors':<8}")
    print(hdr)
    print("-" * len(hdr))
    by = {}
    for r, sc, proxy, rate, p50, p99, reqs, secs, non2xx, errs, conns, per_req, pct, gen in rows:
        if sc != scenario:
            continue
        print(f"{r:>5}  {proxy:<8} {float(rate):>10.0f} {float(p50):>8.3f} {float(p99):>8.3f} {int(reqs):>10} "
              f"{int(conns):>9} {float(per_req):>11.2f} {float(pct):>6.1f} {float(gen):>6.1f}  {non2xx:>7}  {errs:<8}")
        by.setdefault(proxy, []).append(
            (float(rate), float(p50), float(p99), float(per_req), float(pct), float(gen)))
    med = {p: [statistics.median(v[i] for v in vals) for i in range(6)] for p, vals in by.items()}
    print()
    hdr2 = f"{'median':<8} {unit:>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>11} {'cpu%':>6} {'gen%':>6}"
    print(hdr2)
    print("-" * len(hdr2))
    for p in ("ringway", "nginx"):
        if p in med:
            rate, p50, p99, cpu, pct, gen = med[p]
            print(f"{p:<8} {rate:>10.0f} {p50:>8.3f} {p99:>8.3f} {cpu:>11.2f} {pct:>6.1f} {gen:>6.1f}")
    if "ringway" in med and "nginx" in med:
        a, b = med["ringway"], med["nginx"]
        ratio = lambda x, y: x / y if y else float("nan")
        print(f"{'ratio':<8} {ratio(a[0], b[0]):>10.3f} {ratio(a[1], b[1]):>8.3f} {ratio(a[2], b[2]):>8.3f} "
              f"{ratio(a[3], b[3]):>11.3f} {ratio(a[4], b[4]):>6.3f}"
              "   (ringway/nginx: rate higher is better for ringway; latency and cpu/req lower is)")
        r = ratio(a[0], b[0])
        verdict = "PASS" if r >= 1.0 else "FAIL"
        failed += verdict == "FAIL"
        print(f"{verdict} {title}: ringway >= nginx ({a[0]:.0f} vs {b[0]:.0f} {unit}, ratio {r:.3f})")
        idle = [p for p in ("ringway", "nginx") if med[p][4] < 90.0]
        for p in idle:
            print(f"NOTE: {p} used {med[p][4]:.0f}% of CPU 0 (median) while ringway-load used {med[p][5]:.0f}% "
                  f"of CPU 1: the generator, not {p}, set the pace, so its {unit} is a lower bound and its "
                  "latencies include the generator's own queue; compare cpu us/req as well")
sys.exit(1 if failed else 0)
EOF
}

if [[ $MODE == tls ]]; then
    measure_tls
    tls_status=0
    report_tls || tls_status=$?
    if ((problems)); then
        echo
        echo "WARNING: $problems run(s) had non-2xx/3xx responses, errors or reused connections (details above)"
    fi
    show_logs
    exit "$tls_status"
fi

# ------------------------------------------------------------------ MODE=plain

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

# run_one LABEL PID PORT DURATION OUTFILE -> prints "rps p99 reqs secs non2xx sockerr cpu_us_per_req cpu_pct"
run_one() {
    local name=$1 pid=$2 port=$3 dur=$4 out=$5 pids t0 t1 parsed
    kill -0 "$pid" 2>/dev/null || die "$name is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    mapfile -t pids < <(proxy_pids "$pid")
    [[ $name != nginx || ${#pids[@]} -ge 2 ]] || die "nginx worker process not found under master $pid"
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

# The proxies in round 1's order; with BASELINE the order rotates by one
# place per round.
if [[ -n $BASELINE ]]; then PROXIES=(ringway ringway-before nginx); else PROXIES=(ringway nginx); fi
proxy_target() {  # NAME -> sets pid and port
    case $1 in
        ringway) pid=$RW_PID port=$RW_PORT ;;
        ringway-before) pid=$RB_PID port=$RB_PORT ;;
        nginx) pid=$NG_PID port=$NG_PORT ;;
        *) die "unknown proxy $1" ;;
    esac
}

log "warm-up: $WARMUP each"
for proxy in "${PROXIES[@]}"; do
    proxy_target "$proxy"
    run_one "$proxy" "$pid" "$port" "$WARMUP" "$TMP/warmup-$proxy.txt" >/dev/null
done

RESULTS=$TMP/results.txt
: >"$RESULTS"
problems=0
for r in $(seq "$ROUNDS"); do
    order=("${PROXIES[@]}")
    if [[ -n $BASELINE ]]; then
        k=$(((r - 1) % ${#PROXIES[@]}))
        order=("${PROXIES[@]:k}" "${PROXIES[@]:0:k}")
    fi
    for proxy in "${order[@]}"; do
        proxy_target "$proxy"
        out=$TMP/wrk-$r-$proxy.txt
        log "round $r/$ROUNDS: $proxy ($DURATION, $CONNECTIONS connections)"
        line=$(run_one "$proxy" "$pid" "$port" "$DURATION" "$out")
        echo "$r $proxy $line" >>"$RESULTS"
        read -r _ _ _ _ non2xx sockerr _ _ <<<"$line"
        if [[ $non2xx != 0 || $sockerr != 0 ]]; then
            problems=$((problems + 1))
            log "WARNING: $proxy round $r: non-2xx/3xx=$non2xx socket errors=$sockerr; wrk said:"
            sed 's/^/    /' "$out" >&2
        fi
    done
done

# ------------------------------------------------------------------ report

echo
echo "ringway vs nginx reverse proxy: 1 worker each on CPU 0; origin and wrk on CPU 1"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds, $(nproc --all) CPUs, CLK_TCK=$CLK_TCK"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), ringway $("$RINGWAY" --version | awk '{print $2}')"
if [[ -n $BASELINE ]]; then
    echo "ringway:        $RINGWAY"
    echo "ringway-before: $BASELINE ($("$BASELINE" --version | awk '{print $2}')), same config on its own port, CPU 0"
    echo "same machine, alternating rounds: the order rotates each round (round 1: ${PROXIES[*]})"
fi
plain_status=0
python3 - "$RESULTS" "${BASELINE:+baseline}" <<'EOF' || plain_status=$?
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
baseline = len(sys.argv) > 2 and sys.argv[2] == "baseline"
names = ("ringway", "ringway-before", "nginx") if baseline else ("ringway", "nginx")
w = max(8, *(len(n) for n in names))
hdr = f"{'round':>5}  {'proxy':<{w}} {'req/s':>11} {'p99 ms':>9} {'requests':>10} {'cpu us/req':>11} {'cpu%':>6}  {'non-2xx':>7}  {'sock err':<8}"
print()
print(hdr)
print("-" * len(hdr))
by = {}
for r, proxy, rps, p99, reqs, secs, non2xx, sockerr, per_req, pct in rows:
    print(f"{r:>5}  {proxy:<{w}} {float(rps):>11.0f} {float(p99):>9.3f} {int(reqs):>10} {float(per_req):>11.2f} {float(pct):>6.1f}  {non2xx:>7}  {sockerr:<8}")
    by.setdefault(proxy, []).append((float(rps), float(p99), float(per_req)))
med = {p: [statistics.median(v[i] for v in vals) for i in range(3)] for p, vals in by.items()}
print()
hdr2 = f"{'median':<{w}} {'req/s':>11} {'p99 ms':>9} {'cpu us/req':>11}"
print(hdr2)
print("-" * len(hdr2))
for p in names:
    if p in med:
        rps, p99, cpu = med[p]
        print(f"{p:<{w}} {rps:>11.0f} {p99:>9.3f} {cpu:>11.2f}")
ratio = lambda x, y: x / y if y else float("nan")
if "ringway" in med and "nginx" in med:
    a, b = med["ringway"], med["nginx"]
    print(f"{'ratio':<{w}} {ratio(a[0], b[0]):>11.3f} {ratio(a[1], b[1]):>9.3f} {ratio(a[2], b[2]):>11.3f}"
          "   (ringway/nginx: req/s higher is better for ringway; p99 and cpu/req lower is)")
failed = 0
if baseline and "ringway" in med and "ringway-before" in med:
    a, b = med["ringway"], med["ringway-before"]
    if "nginx" in med:
        n = med["nginx"]
        print(f"{'ratio':<{w}} {ratio(b[0], n[0]):>11.3f} {ratio(b[1], n[1]):>9.3f} {ratio(b[2], n[2]):>11.3f}"
              "   (ringway-before/nginx)")
    rps_r, p99_r, cpu_r = ratio(a[0], b[0]), ratio(a[1], b[1]), ratio(a[2], b[2])
    print(f"{'ratio':<{w}} {rps_r:>11.3f} {p99_r:>9.3f} {cpu_r:>11.3f}"
          "   (ringway/ringway-before: after/before; req/s higher is better, p99 and cpu/req lower is)")
    print()
    verdict = "PASS" if rps_r >= 0.98 else "FAIL"
    failed += verdict == "FAIL"
    print(f"{verdict} req/s ratio >= 0.98: ringway/ringway-before = {rps_r:.3f} ({a[0]:.0f} vs {b[0]:.0f} req/s)")
    verdict = "PASS" if cpu_r <= 1.02 else "FAIL"
    failed += verdict == "FAIL"
    print(f"{verdict} CPU us/req <= +2%: ringway {a[2]:.2f} vs ringway-before {b[2]:.2f} us/req "
          f"({(cpu_r - 1) * 100:+.1f}%)")
sys.exit(1 if failed else 0)
EOF

if ((problems)); then
    echo
    echo "WARNING: $problems run(s) had non-2xx/3xx responses or socket errors (details above)"
fi
show_logs
exit "$plain_status"
