#!/usr/bin/env bash
# Failover under load: what a proxy's clients see when one of three origins
# goes away for a while and comes back, ringway against nginx, at a fixed
# request rate.
#
#   origins  three nginx processes (1, 2, 3), each `master_process off`
#            (one process, so killing its PID takes its listener with it),
#            on its own port, `return 200 "origin N\n"`, an access log of
#            `$msec $request_uri $status` per request (unbuffered, so the
#            log holds every request up to a kill)            taskset -c 1
#   proxy A  ringway, workers = 1, one route to an upstream of the three
#            origins (round robin) with
#              [routes.retry] attempts = 2 (`on` at its default list)
#              [upstreams.health-check] interval = "1s", timeout = "500ms",
#                path = "/healthz" (other keys at their defaults: http GET,
#                expect 2xx/3xx, healthy-threshold 2, unhealthy-threshold 3)
#              passive outlier detection at its defaults (no table)
#                                                             taskset -c 0
#   proxy B  nginx, worker_processes 1, the same three origins in an
#            upstream block: `server ... max_fails=1 fail_timeout=10s`,
#            `keepalive 64`, `proxy_next_upstream error timeout http_502
#            http_503 http_504` (nginx's usual failover setup; open-source
#            nginx has no active health checks)             taskset -c 0
#   load     ringway-load --rate $RATE -c $CONNECTIONS -t 1 --cpus 1 -d
#            $DURATION --window $((DURATION/3))s (open loop, fixed schedule,
#            latency corrected from each request's intended send time), GET /
#                                                             taskset -c 1
#
# One run: fresh origins and a fresh proxy (so no health or failure state
# carries over from the previous run), a WARMUP run at RATE through the
# proxy (connections pooled, ringway's health checks passed), then the
# measured run. At one third of DURATION (10 s by default) origin 2 is
# killed (SIGKILL: its listener closes, new connections are refused, its
# open connections are reset); at two thirds (20 s) it is started again
# with the same config and port. Both are timed on ringway-load's clock:
# the script schedules them from the generator's launch plus its start-up
# time as the warm-up run measured it, and the report prints where they
# really fell (from the JSON's started_unix_s; "kill@" and "restart@").
# Rounds alternate the order: ringway then nginx, nginx then ringway, ...
#
# Per run, from ringway-load's JSON (its --window figures) and the origins'
# access logs:
#   sent       requests sent
#   failed     non-2xx responses + transport errors (connect, reset,
#              timeout, malformed), in all and per window: before (0 to
#              D/3), during (D/3 to 2D/3) and after (2D/3 to the end; what
#              ended after the schedule is counted there too)
#   p99        corrected p99 latency of each window
#   first req  time from origin 2's restart (the moment the script starts
#              it again) to the first proxied request in its access log
#              (GET /; ringway's health checks ask for /healthz and do not
#              count). "none" when it got none before the end of the run.
#              The details give when it accepted connections again (a
#              poller connecting every ms) and got its first health check.
#   o2 share   origin 2's share of the proxied requests after the restart
# The report lists every run, then the medians over rounds as a markdown
# table ringway vs nginx (a "none" counts as longer than any time).
#
# With max_fails=1 fail_timeout=10s nginx takes origin 2 out for 10 s
# after its first failure and then tries it with one request; with the
# outage also lasting 10 s, that retry lands within milliseconds of the
# restart, so nginx's "first req" is either near 0 or (retry just before
# the restart) another 10 s later: the per-run rows show which.
#
# Exit status: 1 when a run could not be measured (a proxy died, no
# responses, an origin that got no traffic before the kill, a kill or
# restart more than 250 ms off schedule); failed requests are results, not
# script failures.
#
# Environment:
#   RATE           requests/s, open loop                      (default 10000)
#   DURATION       measured run; a multiple of 3 s, 6s..30m   (default 30s)
#   ROUNDS         rounds (each: one run per proxy)           (default 3)
#   CONNECTIONS    ringway-load connections                   (default 64)
#   WARMUP         warm-up run per run; 0s for none           (default 3s)
#   KEEP_TMP=1     keep the temp dir (configs, access logs, JSON reports)
#   RINGWAY        the ringway binary   (default: target/release/ringway of
#                  this checkout, or of $CARGO_TARGET_DIR; built if missing)
#   RINGWAY_LOAD   the ringway-load binary (likewise)
#   LEGACY_CONFIG  1: when the ringway binary refuses [routes.retry] or
#                  [upstreams.health-check] (a build from before them), run
#                  it without those tables, and say so in every line of the
#                  report. A check of this script only, not a result.
#
# Usage:
#   scripts/bench-failover.sh
#   RATE=5000 ROUNDS=5 scripts/bench-failover.sh
#   DURATION=15s ROUNDS=1 WARMUP=1s KEEP_TMP=1 scripts/bench-failover.sh
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

RATE=${RATE:-10000}
DURATION=${DURATION:-30s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-3s}
LEGACY_CONFIG=${LEGACY_CONFIG:-0}
MAX_SKEW=0.25   # seconds a kill or restart may be off schedule

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
RINGWAY_DEFAULT=$TARGET/release/ringway
RINGWAY_LOAD_DEFAULT=$TARGET/release/ringway-load
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}
RINGWAY_LOAD=${RINGWAY_LOAD:-$RINGWAY_LOAD_DEFAULT}

log() { printf '[failover] %s\n' "$*" >&2; }
die() { printf '[failover] error: %s\n' "$*" >&2; exit 1; }

[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 && $RATE -le 10000000 ]] || die "RATE must be 1..10000000"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $LEGACY_CONFIG == 0 || $LEGACY_CONFIG == 1 ]] || die "LEGACY_CONFIG must be 0 or 1"
secs() {   # "30s" or "2m" -> seconds
    [[ $1 =~ ^([0-9]+)(s|m)$ ]] || die "durations must look like 30s or 2m (got '$1')"
    if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
DURATION_S=$(secs "$DURATION")
WARMUP_S=$(secs "$WARMUP")
((DURATION_S >= 6 && DURATION_S <= 1800 && DURATION_S % 3 == 0)) \
    || die "DURATION must be a multiple of 3 s from 6s to 30m (got $DURATION)"
((WARMUP_S <= 600)) || die "WARMUP must be at most 10m"
WINDOW_S=$((DURATION_S / 3))
STOP_AT=$WINDOW_S           # origin 2 killed, seconds into the run
START_AT=$((2 * WINDOW_S))  # origin 2 started again

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if ((${#need_apt[@]})); then
    log "installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; install ${need_apt[*]} by hand"
    apt-get install -y -qq "${need_apt[@]}" >/dev/null || die "could not install ${need_apt[*]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "no nginx binary (apt-get install nginx)"
for tool in curl taskset python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

build=()
[[ -x $RINGWAY || $RINGWAY != "$RINGWAY_DEFAULT" ]] || build+=(-p ringway)
[[ -x $RINGWAY_LOAD || $RINGWAY_LOAD != "$RINGWAY_LOAD_DEFAULT" ]] || build+=(-p ringway-loadtest)
if ((${#build[@]})); then
    command -v cargo >/dev/null 2>&1 || die "cargo is missing and ${build[*]} must be built"
    log "building ${build[*]} (release)"
    (cd "$REPO" && cargo build --release "${build[@]}") || die "cargo build failed"
fi
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"
[[ -x $RINGWAY_LOAD ]] || die "no ringway-load binary at $RINGWAY_LOAD"
"$RINGWAY_LOAD" --help | grep -q -- --window \
    || die "$RINGWAY_LOAD has no --window; rebuild it (cargo build --release -p ringway-loadtest)"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringway-failover.XXXXXX")
chmod 755 "$TMP"
PIDS=()   # server processes started and not yet reaped
CUR=()    # the load generator and the listener poller while a run is on

forget_pid() {
    local pid=$1 keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    # bounded wait: at most ~5 s, then SIGKILL
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local pid
    for pid in "${CUR[@]}" "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CUR[@]}" "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Five free loopback ports, held open together so they are distinct: the
# three origins and the two proxies.
read -r O1_PORT O2_PORT O3_PORT RW_PORT NG_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)
ORIGIN_PORTS=("$O1_PORT" "$O2_PORT" "$O3_PORT")

# ------------------------------------------------------------------ python

# Timing, parsing and the report (python3, standard library only).
cat >"$TMP/failover.py" <<'EOF'
import json, math, socket, statistics, sys, time

def wait_accepting(args):
    """From FROM_US (wall clock, microseconds) on, polls 127.0.0.1:PORT
    every millisecond for at most LIMIT seconds and prints the wall time
    (microseconds) at which it first accepted a connection. Started ahead
    of the server, so its own start-up is not in the figure."""
    port, start, limit = int(args[0]), int(args[1]) / 1e6, float(args[2])
    time.sleep(max(0.0, start - time.time()))
    end = time.time() + limit
    while time.time() < end:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            print(int(time.time() * 1e6))
            return 0
        except OSError:
            time.sleep(0.001)
        finally:
            s.close()
    return 1

def lead(args):
    """Microseconds from LAUNCH_US to the start of the run in a
    ringway-load JSON report, bounded to 0..2 s."""
    r = json.load(open(args[0]))
    print(min(max(int(r["started_unix_s"] * 1e6) - int(args[1]), 0), 2_000_000))

def read_log(path):
    """Access log lines `msec uri status` as (t, uri, status)."""
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                out.append((float(p[0]), p[1], int(p[2])))
    return out

def failed(w):
    non2xx = sum(n for s, n in w["statuses"].items() if not 200 <= int(s) < 300)
    e = w["errors"]
    return non2xx + e["connect"] + e["reset"] + e["timeout"] + e["malformed"]

def record(args):
    """One run's figures as a JSON line."""
    (proxy, rnd, load_json, window, killed, launched, ready, o1, o2, o3) = args
    window = int(window)
    killed, launched = int(killed) / 1e6, int(launched) / 1e6
    ready = int(ready) / 1e6 if ready != "-" else None
    r = json.load(open(load_json))
    t0 = r["started_unix_s"]
    ws = r["windows"]
    if [(w["from_s"], w["to_s"]) for w in ws] != [(0, window), (window, 2 * window), (2 * window, 3 * window)]:
        raise SystemExit(f"unexpected windows in {load_json}: {[(w['from_s'], w['to_s']) for w in ws]}")
    logs = [read_log(p) for p in (o1, o2, o3)]
    problems = []
    # Proxied requests per origin and window (GET / only; health checks
    # ask for /healthz).
    per = [[0, 0, 0] for _ in logs]
    for i, lines in enumerate(logs):
        for t, uri, _ in lines:
            if uri != "/":
                continue
            k = int((t - t0) // window)
            if 0 <= k <= 2:
                per[i][k] += 1
    for i in range(3):
        if per[i][0] == 0:
            problems.append(f"origin {i + 1} got no proxied request before the kill")
    # From the restart on: the first proxied request and the first health
    # check. Access log times are whole milliseconds.
    prox = [t for t, uri, _ in logs[1] if t >= launched - 0.001 and uri == "/"]
    checks = [t for t, uri, _ in logs[1] if t >= launched - 0.001 and uri != "/"]
    first = max(min(prox) - launched, 0.0) if prox else None
    first_check = max(min(checks) - launched, 0.0) if checks else None
    if ready is None:
        problems.append("origin 2 did not accept connections within 5 s of its restart")
    skew_kill = killed - t0 - window
    skew_start = launched - t0 - 2 * window
    total_after = sum(per[i][2] for i in range(3))
    return {
        "proxy": proxy, "round": int(rnd),
        "sent": r["sent"], "responses": r["responses"], "failed": sum(failed(w) for w in ws),
        "failed_w": [failed(w) for w in ws],
        "p99_w": [w["latency"]["p99_us"] / 1000.0 if w["latency"]["count"] else None for w in ws],
        "max_w": [w["latency"]["max_us"] / 1000.0 if w["latency"]["count"] else None for w in ws],
        "statuses": r["statuses"], "errors": r["errors"],
        "killed_at": killed - t0, "launched_at": launched - t0,
        "ready_after": (ready - launched) if ready is not None else None,
        "first": first, "first_check": first_check,
        "origin_share_after": (per[1][2] / total_after) if total_after else None,
        "per_origin": per,
        "skew": max(abs(skew_kill), abs(skew_start)),
        "schedule_held": r["schedule_held"], "unsent": r["unsent"],
        "warnings": r["warnings"], "problems": problems,
    }

def cmd_record(args):
    print(json.dumps(record(args)))

def fmt_ms(v):
    return "-" if v is None else f"{v:.2f} ms"

def fmt_s(v):
    return "none" if v is None or math.isinf(v) else f"{v:.3f} s"

def cmd_report(args):
    path, window, max_skew, legacy = args[0], int(args[1]), float(args[2]), args[3] == "1"
    rows = [json.loads(l) for l in open(path) if l.strip()]
    w = window
    names = {"before": f"{0}-{w} s", "during": f"{w}-{2 * w} s", "after": f"{2 * w}-{3 * w} s"}
    bad = []
    rw_name = "ringway (LEGACY_CONFIG)" if legacy else "ringway"
    label = lambda p: rw_name if p == "ringway" else p
    print()
    hdr = (f"{'round':>5}  {'proxy':<24} {'sent':>8} {'failed':>7} {'f before':>8} {'f during':>8} {'f after':>8}"
           f" {'p99 before':>11} {'p99 during':>11} {'p99 after':>11} {'first req':>10}"
           f" {'o2 share after':>14} {'kill@':>7} {'restart@':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        share = "-" if r["origin_share_after"] is None else f"{100 * r['origin_share_after']:.1f}%"
        print(f"{r['round']:>5}  {label(r['proxy']):<24} {r['sent']:>8} {r['failed']:>7}"
              f" {r['failed_w'][0]:>8} {r['failed_w'][1]:>8} {r['failed_w'][2]:>8}"
              f" {fmt_ms(r['p99_w'][0]):>11} {fmt_ms(r['p99_w'][1]):>11} {fmt_ms(r['p99_w'][2]):>11}"
              f" {fmt_s(r['first']):>10} {share:>14} {r['killed_at']:>6.3f}s {r['launched_at']:>7.3f}s")
    print()
    print("details per run: failures by kind; after origin 2's restart: when it accepted connections and got its")
    print("first health check (ringway); proxied requests per origin before/during/after")
    for r in rows:
        e = r["errors"]
        non2xx = {s: n for s, n in r["statuses"].items() if not 200 <= int(s) < 300}
        chk = "-" if r["first_check"] is None else f"{r['first_check']:.3f} s"
        acc = "-" if r["ready_after"] is None else f"{1000 * r['ready_after']:.1f} ms"
        per = " ".join("/".join(str(n) for n in o) for o in r["per_origin"])
        print(f"  round {r['round']} {label(r['proxy'])}: non-2xx {non2xx or 0}, connect {e['connect']},"
              f" reset {e['reset']}, timeout {e['timeout']}, malformed {e['malformed']};"
              f" accepting after {acc}, first /healthz after {chk};"
              f" origins 1 2 3: {per}")
        for p in r["problems"]:
            bad.append(f"round {r['round']} {r['proxy']}: {p}")
        for wmsg in r["warnings"]:
            print(f"    ringway-load: {wmsg}")
        if r["skew"] > max_skew:
            bad.append(f"round {r['round']} {r['proxy']}: kill/restart {r['skew']:.3f} s off schedule")
        if r["responses"] == 0:
            bad.append(f"round {r['round']} {r['proxy']}: no responses")

    def med(vals):
        vals = [math.inf if v is None else v for v in vals]
        return statistics.median(vals) if vals else None

    by = {}
    for r in rows:
        by.setdefault(r["proxy"], []).append(r)
    cols = [p for p in ("ringway", "nginx") if p in by]
    table = [
        ("requests sent", lambda rs: f"{med([r['sent'] for r in rs]):.0f}"),
        ("failed requests (non-2xx + transport errors)", lambda rs: f"{med([r['failed'] for r in rs]):.0f}"),
        (f"failed, before ({names['before']})", lambda rs: f"{med([r['failed_w'][0] for r in rs]):.0f}"),
        (f"failed, during ({names['during']})", lambda rs: f"{med([r['failed_w'][1] for r in rs]):.0f}"),
        (f"failed, after ({names['after']})", lambda rs: f"{med([r['failed_w'][2] for r in rs]):.0f}"),
        (f"p99 corrected, before ({names['before']})", lambda rs: fmt_ms(med([r['p99_w'][0] for r in rs]))),
        (f"p99 corrected, during ({names['during']})", lambda rs: fmt_ms(med([r['p99_w'][1] for r in rs]))),
        (f"p99 corrected, after ({names['after']})", lambda rs: fmt_ms(med([r['p99_w'][2] for r in rs]))),
        ("origin restart to its first proxied request", lambda rs: fmt_s(med([r['first'] for r in rs]))),
    ]
    print()
    print(f"medians over {max(len(v) for v in by.values()) if by else 0} rounds:")
    print()
    print("| | " + " | ".join(label(c) for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, f in table:
        print(f"| {name} | " + " | ".join(f(by[c]) for c in cols) + " |")
    late = [r for r in rows if not r["schedule_held"]]
    if late:
        print()
        print(f"NOTE: {len(late)} of {len(rows)} runs did not hold the schedule of {w * 3} s at the requested rate"
              f" ({sum(r['unsent'] for r in late)} requests never sent; see the details): the proxy or the"
              " generator did not get the CPU it needed (other work on the machine? see the load average),"
              " so their latencies are mostly queueing. Their failures and first-request times still count;"
              " rerun on a quiet machine for latencies.")
    if bad:
        print()
        print("FAILED: " + "; ".join(bad))
        return 1
    return 0

if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    sys.exit({"wait-accepting": wait_accepting, "lead": lead, "record": cmd_record,
              "report": cmd_report}[cmd](rest) or 0)
EOF
PYTOOL=$TMP/failover.py

# ------------------------------------------------------------------ configs

# keepalive_requests is raised everywhere so that no nginx closes a
# keep-alive connection after its default 1000 requests (ringway has no such
# limit); otherwise the generator and the proxies would reconnect throughout.
nginx_common() {
    local name=$1
    mkdir -p "$TMP/$name"
    cat <<EOF
pid $TMP/$name.pid;
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

# Each origin writes its access log into the directory of the current run
# (a symlink, re-pointed per run), so every run has its own logs.
for i in 1 2 3; do
    {
        echo "master_process off;"
        nginx_common "origin$i"
        cat <<EOF
    log_format ts '\$msec \$request_uri \$status';
    server {
        listen 127.0.0.1:${ORIGIN_PORTS[i - 1]};
        access_log $TMP/run/origin$i-access.log ts;
        location / { return 200 "origin $i\n"; }
    }
}
EOF
    } >"$TMP/origin$i.conf"
done

{
    echo "worker_processes 1;"
    nginx_common nginx-proxy
    cat <<EOF
    upstream origins {
        server 127.0.0.1:$O1_PORT max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$O2_PORT max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$O3_PORT max_fails=1 fail_timeout=10s;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NG_PORT;
        location / {
            proxy_pass http://origins;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503 http_504;
        }
    }
}
EOF
} >"$TMP/nginx-proxy.conf"

# ringway_config FAILOVER(1|0): with 1, the retry and health-check tables.
ringway_config() {
    local failover=$1
    cat <<EOF
workers = 1

# No admin API: it would take the fixed default port 127.0.0.1:9901.
[admin]
enabled = false

[[listeners]]
address = "127.0.0.1:$RW_PORT"

# Passive outlier detection stays at its defaults (no table).
[[upstreams]]
name = "origins"
servers = ["127.0.0.1:$O1_PORT", "127.0.0.1:$O2_PORT", "127.0.0.1:$O3_PORT"]
EOF
    if ((failover)); then
        cat <<EOF

# The timeout must be below the interval (its default, 2s, is not).
[upstreams.health-check]
interval = "1s"
timeout = "500ms"
path = "/healthz"
EOF
    fi
    cat <<EOF

[[routes]]
name = "all"
path-prefix = "/"
upstream = "origins"
EOF
    if ((failover)); then
        cat <<EOF

[routes.retry]
attempts = 2
EOF
    fi
}

mkdir -p "$TMP/run-check"
ln -sfn "$TMP/run-check" "$TMP/run"
for i in 1 2 3; do
    "$NGINX" -t -q -p "$TMP" -e "$TMP/origin$i-error.log" -c "$TMP/origin$i.conf" || die "origin $i config invalid"
done
"$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-proxy-error.log" -c "$TMP/nginx-proxy.conf" || die "nginx proxy config invalid"

ringway_config 1 >"$TMP/ringway.toml"
RINGWAY_SETUP="[routes.retry] attempts = 2; [upstreams.health-check] interval 1s, timeout 500ms, GET /healthz; outlier detection default"
if ! "$RINGWAY" validate "$TMP/ringway.toml" >"$TMP/validate.txt" 2>&1; then
    if grep -qE 'unknown key .(retry|health-check).' "$TMP/validate.txt"; then
        ((LEGACY_CONFIG)) || die "$RINGWAY refuses the failover keys ([routes.retry], [upstreams.health-check]):"$'\n'"$(cat "$TMP/validate.txt")"$'\n'"Use a ringway build that has them (LEGACY_CONFIG=1 runs without them, to check this script only)"
        log "LEGACY_CONFIG=1: $RINGWAY refuses the failover keys; running ringway WITHOUT [routes.retry] and [upstreams.health-check] (not a result)"
        ringway_config 0 >"$TMP/ringway.toml"
        RINGWAY_SETUP="LEGACY_CONFIG: no [routes.retry], no [upstreams.health-check] (this binary refuses them); the binary's built-in failover only"
        "$RINGWAY" validate "$TMP/ringway.toml" >"$TMP/validate.txt" 2>&1 \
            || die "ringway config invalid even without the failover keys: $(cat "$TMP/validate.txt")"
    else
        die "ringway config invalid: $(cat "$TMP/validate.txt")"
    fi
fi
rm -rf "$TMP/run-check"

# ------------------------------------------------------------------ processes

# Wait (bounded: 10 s) until a URL answers 200.
wait_ok() {
    local url=$1 name=$2 pid=$3 code=""
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see logs in $TMP; rerun with KEEP_TMP=1)"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    die "$name did not answer 200 at $url within 10 s (last status: '$code')"
}

# start_origin I: starts origin I on CPU 1; sets ORIGIN_PID.
start_origin() {
    local i=$1
    taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/run/origin$i-error.log" -c "$TMP/origin$i.conf" -g 'daemon off;' \
        >>"$TMP/run/origin$i.out" 2>&1 &
    ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")
}

# start_proxy NAME: starts ringway or the nginx proxy on CPU 0; sets PROXY_PID, PROXY_PORT.
start_proxy() {
    case $1 in
        ringway)
            taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/run/ringway.log" 2>&1 &
            PROXY_PORT=$RW_PORT ;;
        nginx)
            taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/run/nginx-proxy-error.log" -c "$TMP/nginx-proxy.conf" \
                -g 'daemon off;' >"$TMP/run/nginx-proxy.out" 2>&1 &
            PROXY_PORT=$NG_PORT ;;
        *) die "unknown proxy $1" ;;
    esac
    PROXY_PID=$!; PIDS+=("$PROXY_PID")
}

# Wall clock in microseconds, without starting a process (bash's
# EPOCHREALTIME), so the kill and the restart are not late by a fork.
now_us() {
    local t=$EPOCHREALTIME
    NOW_US=${t//[.,]/}
}
sleep_until_us() {
    local d
    now_us
    d=$(($1 - NOW_US))
    ((d > 0)) || return 0
    sleep "$((d / 1000000)).$(printf '%06d' $((d % 1000000)))"
}

# ringway-load starts its clock after a probe connection and a lead of
# 50 ms + 1 ms per connection (one thread). The kill and the restart are
# scheduled from its launch plus that lead as the warm-up measured it (the
# launch-to-start time of the warm-up run, from its JSON), or as estimated
# when there is no warm-up; the report shows where they really fell.
LEAD_ESTIMATE_US=$((20000 + (50 + CONNECTIONS > 500 ? 500 : 50 + CONNECTIONS) * 1000))
[[ $BASH_VERSION =~ ^([5-9]|[1-9][0-9]) ]] || die "needs bash 5 or later (EPOCHREALTIME)"
LOAD_ARGS=(--rate "$RATE" -c "$CONNECTIONS" -t 1 --cpus 1)

RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# run_one ROUND PROXY: one measured run with fresh origins and proxy.
run_one() {
    local rnd=$1 proxy=$2 dir o_pids=() i t0 lead killed launched ready victim rc=0 load poller
    dir=$TMP/run-$rnd-$proxy
    mkdir -p "$dir"
    ln -sfn "$dir" "$TMP/run"
    for i in 1 2 3; do
        start_origin "$i"
        o_pids+=("$ORIGIN_PID")
    done
    for i in 1 2 3; do
        wait_ok "http://127.0.0.1:${ORIGIN_PORTS[i - 1]}/healthz" "origin $i" "${o_pids[i - 1]}"
    done
    start_proxy "$proxy"
    wait_ok "http://127.0.0.1:$PROXY_PORT/" "$proxy" "$PROXY_PID"
    lead=$LEAD_ESTIMATE_US
    if ((WARMUP_S > 0)); then
        now_us
        t0=$NOW_US
        taskset -c 1 "$RINGWAY_LOAD" "${LOAD_ARGS[@]}" -d "$WARMUP" --json "$dir/warmup.json" \
            "http://127.0.0.1:$PROXY_PORT/" >"$dir/warmup.txt" 2>&1 \
            || die "warm-up against $proxy failed: $(cat "$dir/warmup.txt")"
        lead=$(python3 "$PYTOOL" lead "$dir/warmup.json" "$t0")
    fi

    log "round $rnd/$ROUNDS: $proxy, $RATE req/s for $DURATION; origin 2 down from ${STOP_AT}s to ${START_AT}s"
    now_us
    t0=$((NOW_US + lead))   # the run's estimated start
    taskset -c 1 "$RINGWAY_LOAD" "${LOAD_ARGS[@]}" -d "$DURATION" --window "${WINDOW_S}s" \
        --json "$dir/load.json" "http://127.0.0.1:$PROXY_PORT/" >"$dir/load.txt" 2>&1 &
    load=$!
    CUR=("$load")
    victim=${o_pids[1]}
    sleep_until_us $((t0 + STOP_AT * 1000000))
    kill -KILL "$victim" 2>/dev/null || die "origin 2 (pid $victim) was not running at the kill"
    now_us
    killed=$NOW_US
    wait "$victim" 2>/dev/null || true
    forget_pid "$victim"
    # The poller waits for origin 2's listener from just before the restart.
    taskset -c 1 python3 "$PYTOOL" wait-accepting "$O2_PORT" $((t0 + START_AT * 1000000 - 200000)) 5.2 \
        >"$dir/accepting.txt" 2>/dev/null &
    poller=$!
    CUR+=("$poller")
    sleep_until_us $((t0 + START_AT * 1000000))
    now_us
    launched=$NOW_US
    start_origin 2
    ready=-
    if wait "$poller"; then ready=$(cat "$dir/accepting.txt"); fi
    wait "$load" || rc=$?
    CUR=()
    ((rc == 0)) || die "ringway-load exited with status $rc against $proxy: $(cat "$dir/load.txt")"
    kill -0 "$PROXY_PID" 2>/dev/null || die "$proxy died during the run (logs in $dir; rerun with KEEP_TMP=1)"
    stop_pid "$PROXY_PID"
    stop_pid "$ORIGIN_PID"
    stop_pid "${o_pids[0]}"
    stop_pid "${o_pids[2]}"
    python3 "$PYTOOL" record "$proxy" "$rnd" "$dir/load.json" "$WINDOW_S" "$killed" "$launched" "$ready" \
        "$dir/origin1-access.log" "$dir/origin2-access.log" "$dir/origin3-access.log" >>"$RESULTS" \
        || die "could not read the results of round $rnd ($proxy); rerun with KEEP_TMP=1"
    # The access logs are read; they take a few MB per run.
    [[ ${KEEP_TMP:-0} == 1 ]] || rm -f "$dir"/origin?-access.log
}

log "origins :$O1_PORT :$O2_PORT :$O3_PORT (CPU 1), ringway :$RW_PORT / nginx :$NG_PORT (CPU 0);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then order=(ringway nginx); else order=(nginx ringway); fi
    for proxy in "${order[@]}"; do
        run_one "$r" "$proxy"
    done
done

# ------------------------------------------------------------------ report

echo
echo "failover under load: 3 nginx origins (CPU 1), origin 2 killed at ${STOP_AT} s and started again at ${START_AT} s"
echo "proxy on CPU 0 (workers = 1 / worker_processes 1); ringway-load on CPU 1; $ROUNDS rounds, alternating order;" \
    "$(nproc --all) CPUs; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ringway: round robin over the 3 origins; $RINGWAY_SETUP"
echo "nginx:   round robin, max_fails=1 fail_timeout=10s, keepalive 64,"\
    "proxy_next_upstream error timeout http_502 http_503 http_504"
echo "load:    taskset -c 1 ringway-load ${LOAD_ARGS[*]} -d $DURATION --window ${WINDOW_S}s --json FILE http://127.0.0.1:PORT/" \
    "(after a $WARMUP warm-up; fresh origins and proxy per run)"
echo "command: RATE=$RATE DURATION=$DURATION ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS WARMUP=$WARMUP" \
    "$( ((LEGACY_CONFIG)) && echo "LEGACY_CONFIG=1 ")scripts/bench-failover.sh"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), ringway $("$RINGWAY" --version | awk '{print $2}'), $("$RINGWAY_LOAD" --version)"
status=0
python3 "$PYTOOL" report "$RESULTS" "$WINDOW_S" "$MAX_SKEW" "$LEGACY_CONFIG" || status=$?

shopt -s nullglob
for f in "$TMP"/run-*/ringway.log; do
    if grep -qE 'panicked| ERROR ' "$f"; then
        echo
        echo "ringway log $(basename "$(dirname "$f")") had errors (last 5):"
        grep -E 'panicked| ERROR ' "$f" | tail -5 | sed 's/^/    /'
    fi
done
exit "$status"
