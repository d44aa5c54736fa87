#!/usr/bin/env bash
# Compare the load generator ringway-load with wrk against the same server,
# measured alternately, one generator thread each.
#
#   server  nginx, worker_processes 1, `return 200 "hello world\n"`     CPU 0
#   load    ringway-load -t 1 --cpus 1, or wrk -t1                       CPU 1
#
# Part 1, closed loop (maximum rate): for each round
#   ringway-load -c$CONNECTIONS -t 1 --cpus 1 -d$DURATION --json FILE URL
#   wrk -t1 -c$CONNECTIONS -d$DURATION --latency URL
# req/s and p99 per run, then medians and the ratio ringway-load/wrk.
# ringway-load's figures come from its --json report (achieved_rate,
# latency.p99_us), wrk's from its text output.
#
# Part 2, fixed rate of $RATE req/s: for each round
#   ringway-load --rate $RATE -c$CONNECTIONS ...   (open loop, fixed schedule)
#   wrk -t1 -c$C -s delay.lua ...                   (paced, see below)
# with each generator's own CPU time (user+sys from /usr/bin/time, which
# covers all of its threads) as % of one CPU over the run and as µs per
# response, and the p99 latencies:
#   - ringway-load "corrected": from each request's intended send time
#     (coordinated-omission corrected; includes the generator's own ~1 ms
#     timer lateness, see loadtest/README.md);
#   - ringway-load "service" and wrk: from the actual send, uncorrected.
# wrk has no fixed-rate mode. Its Lua hook `function delay() return D end`
# makes each connection wait D ms (whole milliseconds) after each response
# before sending the next, so C connections give about C / (D ms + service
# time + timer oversleep). C starts at RATE*D/1000*1.05 and is then
# calibrated with up to four short runs (scaled by RATE / achieved rate);
# after each measured round C is rescaled the same way for the next one
# (when the achieved rate was more than 2% off). The pacing stays
# approximate and bursty; C and the achieved rates of both generators are
# printed per round so the reader can see whether the loads matched.
#
# The nginx worker's CPU use (utime+stime from /proc/PID/stat, fields 14
# and 15) is shown for the closed-loop runs: near 100% means the server,
# not the generator, was the limit.
#
# Environment:
#   DURATION        duration of each measured run          (default 10s)
#   ROUNDS          rounds per part (both tools each)      (default 5)
#   CONNECTIONS     connections (closed loop, and ringway-load at RATE)
#                                                          (default 64)
#   RATE            fixed rate for part 2, req/s           (default 50000)
#   WRK_DELAY_MS    wrk delay() per connection, ms (>= 1)  (default 1)
#   WRK_PACED_CONNECTIONS  wrk connections in part 2, fixed; set it to skip
#                   the calibration and the per-round rescaling
#                                                          (default: calibrate)
#   CALIBRATE       duration of each calibration run      (default 3s)
#   WARMUP          warm-up run duration per tool          (default 2s)
#   KEEP_TMP=1      keep the temp dir (config, JSON reports, raw outputs)
#
# Only 127.0.0.1 is used; the port is picked by asking the OS for a free one.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
RATE=${RATE:-50000}
WRK_DELAY_MS=${WRK_DELAY_MS:-1}
WRK_PACED_CONNECTIONS=${WRK_PACED_CONNECTIONS:-}
CALIBRATE=${CALIBRATE:-3s}
WARMUP=${WARMUP:-2s}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOADGEN=$REPO/target/release/ringway-load

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 && $RATE -le 10000000 ]] || die "RATE must be 1..10000000"
[[ $WRK_DELAY_MS =~ ^[0-9]+$ && $WRK_DELAY_MS -ge 1 && $WRK_DELAY_MS -le 10000 ]] || die "WRK_DELAY_MS must be 1..10000"
[[ -z $WRK_PACED_CONNECTIONS || ($WRK_PACED_CONNECTIONS =~ ^[0-9]+$ && $WRK_PACED_CONNECTIONS -ge 1 && $WRK_PACED_CONNECTIONS -le 10000) ]] \
    || die "WRK_PACED_CONNECTIONS must be 1..10000"
for d in "$DURATION" "$CALIBRATE" "$WARMUP"; do
    [[ $d =~ ^[0-9]+(s|m)$ ]] || die "durations must look like 10s or 2m (got '$d')"
done

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
[[ -x /usr/bin/time ]] || need_apt+=(time)
if ((${#need_apt[@]})); then
    log "installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ ! -x $LOADGEN ]]; then
    log "building ringway-load (release)"
    (cd "$REPO" && cargo build --release -p ringway-loadtest)
fi
[[ -x $LOADGEN ]] || die "no ringway-load binary at $LOADGEN"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/ringway-loadgen-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=()
CUR=""   # the generator running right now, if any

cleanup() {
    local pid
    if [[ -n $CUR ]]; then
        # the generator is a child of /usr/bin/time (which is $CUR): stop both
        for pid in $(pgrep -P "$CUR" || true); do kill -TERM "$pid" 2>/dev/null || true; done
        kill -TERM "$CUR" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$CUR" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CUR" 2>/dev/null || true
        wait "$CUR" 2>/dev/null || true
    fi
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

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT/

# ------------------------------------------------------------------ server

# keepalive_requests is raised so that nginx does not close a keep-alive
# connection after its default 1000 requests: both generators keep theirs
# open for the whole run.
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "hello world\n"; }
    }
}
EOF
"$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" || die "nginx config invalid"

printf 'function delay()\n    return %d\nend\n' "$WRK_DELAY_MS" >"$TMP/delay.lua"

log "nginx :$PORT (CPU 0), generators on CPU 1"
taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")

# Wait (bounded: 10 s) until the URL answers exactly "hello world".
body=""
for _ in $(seq 100); do
    kill -0 "$NG_PID" 2>/dev/null || die "nginx exited during startup (see $TMP; rerun with KEEP_TMP=1)"
    if body=$(curl -s --max-time 1 "$URL") && [[ $body == "hello world" ]]; then break; fi
    body=""
    sleep 0.1
done
[[ $body == "hello world" ]] || die "nginx did not answer 'hello world' at $URL within 10 s"
log "nginx answers: $body"

NG_WORKER=$(pgrep -P "$NG_PID" | head -1 || true)
[[ -n $NG_WORKER ]] || die "nginx worker process not found under master $NG_PID"

# ------------------------------------------------------------------ measure

# utime+stime of one pid in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() {
    local line rest f
    line=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    rest=${line##*) }               # skip "pid (comm) " (comm may hold spaces)
    read -r -a f <<<"$rest"         # f[0] is field 3 (state)
    echo $((f[11] + f[12]))
}

# Parses one run into a JSON line (stdout), and the report at the end.
cat >"$TMP/parse.py" <<'EOF'
import json, math, re, statistics, sys

def time_file(path):
    # /usr/bin/time -f '%U %S %e': the last line (a "Command exited with
    # non-zero status" line may precede it)
    lines = [l for l in open(path).read().splitlines() if l.strip()]
    u, s, e = (float(x) for x in lines[-1].split())
    return u + s, e

def wrk(path):
    text = open(path).read()
    def ms(v, unit):
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    rps = float(m.group(1)) if m else math.nan
    m = re.search(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99 = ms(*m.groups()) if m else math.nan
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    reqs, secs = (int(m.group(1)), ms(m.group(2), m.group(3)) / 1000.0) if m else (0, math.nan)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errs = sum(int(x) for x in m.groups()) if m else 0
    notes = []
    if m and errs:
        notes.append("socket errors connect %s read %s write %s timeout %s" % m.groups())
    return dict(rate=rps, sent_rate=None, p99=p99, p99_send=p99, responses=reqs, secs=secs,
                non2xx=non2xx, errors=errs, warnings=notes)

def loadgen(path):
    d = json.load(open(path))
    errs = sum(d.get("errors", {}).values())
    non2xx = sum(n for code, n in d.get("statuses", {}).items() if not str(code).startswith("2"))
    notes = list(d.get("warnings") or [])
    if d.get("schedule_held") is False:
        notes.append("schedule not held")
    if d.get("unsent"):
        notes.append("%d scheduled but never sent" % d["unsent"])
    if d.get("stopped_early"):
        notes.append("stopped early")
    for kind, n in d.get("errors", {}).items():
        if n:
            notes.append("%d %s errors" % (n, kind))
    svc = d.get("service_time")
    gen = d.get("generator_lag")
    lat = d["latency"]
    return dict(rate=d["achieved_rate"], sent_rate=d.get("sent_rate"),
                p99=lat["p99_us"] / 1000.0,
                p99_send=(svc["p99_us"] / 1000.0) if svc else lat["p99_us"] / 1000.0,
                gen_p99=(gen["p99_us"] / 1000.0) if gen else None,
                responses=d["responses"], secs=d["duration"],
                non2xx=non2xx, errors=errs, warnings=notes)

def record(argv):
    part, rnd, tool, conns, out, tfile, ng0, ng1, hz = argv
    r = wrk(out) if tool == "wrk" else loadgen(out)
    cpu, wall = time_file(tfile)
    secs = r["secs"] if r["secs"] and not math.isnan(r["secs"]) else wall
    r.update(part=part, round=int(rnd), tool=tool, conns=int(conns), cpu_s=cpu, wall=wall,
             cpu_pct=100.0 * cpu / secs if secs else math.nan,
             us_per_req=cpu * 1e6 / r["responses"] if r["responses"] else math.nan,
             nginx_pct=100.0 * (int(ng1) - int(ng0)) / int(hz) / secs if secs else math.nan)
    print(json.dumps(r))

def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]
    return statistics.median(vals) if vals else math.nan

def ratio(a, b):
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan

def k(v):
    return "%.1fk" % (v / 1000.0) if not math.isnan(v) else "-"

def f(v, spec):
    return format(v, spec) if v is not None and not math.isnan(v) else "-"

def flag(r):
    return "%d/%d" % (r["errors"], r["non2xx"])

def report(argv):
    path, conns, dur, rate, delay = argv
    rows = [json.loads(l) for l in open(path) if l.strip()]
    p1 = [r for r in rows if r["part"] == "closed"]
    p2 = [r for r in rows if r["part"] == "rate"]
    tools = ("ringway-load", "wrk")
    warns = []

    print()
    print(f"== 1. closed loop, maximum rate: {conns} connections, 1 generator thread, {dur} per run")
    print(f"   ringway-load -c {conns} -t 1 --cpus 1 -d {dur} URL   vs   wrk -t1 -c{conns} -d{dur} --latency URL")
    hdr = f"{'round':>5}  {'generator':<12} {'req/s':>10} {'p99 ms':>8} {'gen cpu%':>9} {'nginx cpu%':>11}  {'err/non-2xx':>11}"
    print(hdr)
    print("-" * len(hdr))
    for r in p1:
        print(f"{r['round']:>5}  {r['tool']:<12} {r['rate']:>10.0f} {f(r['p99'], '.3f'):>8} "
              f"{r['cpu_pct']:>9.1f} {r['nginx_pct']:>11.1f}  {flag(r):>11}")
        warns += [(1, r['round'], r['tool'], w) for w in r["warnings"]]
    print()
    hdr = f"{'median':<14} {'req/s':>10} {'p99 ms':>8} {'gen cpu%':>9} {'nginx cpu%':>11}"
    print(hdr)
    print("-" * len(hdr))
    m = {t: [med([r for r in p1 if r["tool"] == t], key) for key in ("rate", "p99", "cpu_pct", "nginx_pct")]
         for t in tools}
    for t in tools:
        print(f"{t:<14} {m[t][0]:>10.0f} {f(m[t][1], '.3f'):>8} {f(m[t][2], '.1f'):>9} {f(m[t][3], '.1f'):>11}")
    a, b = m["ringway-load"], m["wrk"]
    print(f"{'ringway/wrk':<14} {f(ratio(a[0], b[0]), '.3f'):>10} {f(ratio(a[1], b[1]), '.3f'):>8} "
          f"{f(ratio(a[2], b[2]), '.3f'):>9} {f(ratio(a[3], b[3]), '.3f'):>11}")
    print("   (p99 here is closed-loop latency: neither tool can correct it; use it as a sanity check only."
          "\n    nginx cpu% near 100 means the server on CPU 0, not the generator, set the maximum rate.)")

    print()
    print(f"== 2. fixed rate {int(rate)} req/s, {dur} per run")
    print(f"   ringway-load -c {conns} -t 1 --cpus 1 --rate {rate} -d {dur} URL  (open loop, fixed schedule)")
    print(f"   wrk -t1 -cC -d{dur} --latency -s delay.lua URL  (delay() returns {delay} ms: paced, approximate;"
          " C per round below)")
    hdr = (f"{'round':>5}  {'generator':<12} {'conns':>5} {'sent/s':>8} {'achieved':>9} {'p99 corr':>9} {'p99 send':>9} "
           f"{'cpu% 1 CPU':>10} {'us/req':>7}  {'err/non-2xx':>11}")
    print(hdr)
    print("-" * len(hdr))
    for r in p2:
        sent = k(r["sent_rate"]) if r["sent_rate"] is not None else "-"
        corr = f(r["p99"], ".3f") if r["tool"] == "ringway-load" else "-"
        print(f"{r['round']:>5}  {r['tool']:<12} {r['conns']:>5} {sent:>8} {k(r['rate']):>9} {corr:>9} {f(r['p99_send'], '.3f'):>9} "
              f"{r['cpu_pct']:>10.1f} {r['us_per_req']:>7.2f}  {flag(r):>11}")
        warns += [(2, r['round'], r['tool'], w) for w in r["warnings"]]
    print()
    hdr = f"{'median':<14} {'achieved':>9} {'p99 corr':>9} {'p99 send':>9} {'cpu% 1 CPU':>10} {'us/req':>7}"
    print(hdr)
    print("-" * len(hdr))
    m = {t: [med([r for r in p2 if r["tool"] == t], key) for key in ("rate", "p99", "p99_send", "cpu_pct", "us_per_req")]
         for t in tools}
    m["wrk"][1] = math.nan
    for t in tools:
        print(f"{t:<14} {k(m[t][0]):>9} {f(m[t][1], '.3f'):>9} {f(m[t][2], '.3f'):>9} "
              f"{f(m[t][3], '.1f'):>10} {f(m[t][4], '.2f'):>7}")
    a, b = m["ringway-load"], m["wrk"]
    print(f"{'ringway/wrk':<14} {f(ratio(a[0], b[0]), '.3f'):>9} {'-':>9} {f(ratio(a[2], b[2]), '.3f'):>9} "
          f"{f(ratio(a[3], b[3]), '.3f'):>10} {f(ratio(a[4], b[4]), '.3f'):>7}")
    gl = med([r for r in p2 if r["tool"] == "ringway-load"], "gen_p99")
    print("   latencies in ms. p99 corr: ringway-load from each request's intended send time (coordinated-")
    print("   omission corrected; includes its own timer lateness, median generator-alone send lag p99 "
          f"{f(gl, '.3f')} ms).")
    print("   p99 send: from the actual send, UNCORRECTED - ringway-load's service time, and wrk's only figure;")
    print("   wrk has no corrected latency. wrk's pacing is approximate (each connection waits")
    print(f"   {delay} ms after each response; whole-ms timer, bursty), so compare the achieved rates before")
    print("   the latencies. cpu%: the generator's user+sys CPU over the run's duration, % of one CPU;")
    print("   us/req: that CPU time per response (both include process start-up and connecting).")

    if warns:
        print()
        print("warnings and errors reported by the generators:")
        for part, rnd, tool, w in warns:
            print(f"   part {part} round {rnd} {tool}: {w}")
    return 1 if warns else 0

if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "record":
        record(rest)
    else:
        sys.exit(report(rest))
EOF

# run_gen PART ROUND TOOL DURATION CONNS [ARGS...]: runs one generator on CPU 1
# under /usr/bin/time and appends its parsed figures to $RESULTS (when
# PART is not "-"); prints nothing. ARGS go to the generator before the URL.
RESULTS=$TMP/results.jsonl
: >"$RESULTS"
LAST=""   # parsed JSON line of the last run
run_gen() {
    local part=$1 rnd=$2 tool=$3 dur=$4 conns=$5 pfx out rc=0 ng0 ng1
    shift 5
    pfx=$TMP/$part-$rnd-$tool
    kill -0 "$NG_PID" 2>/dev/null || die "nginx is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    ng0=$(cpu_ticks "$NG_WORKER")
    if [[ $tool == wrk ]]; then
        out=$pfx.txt
        taskset -c 1 /usr/bin/time -o "$pfx.time" -f '%U %S %e' \
            wrk -t1 -c"$conns" -d"$dur" --latency "$@" "$URL" >"$out" 2>&1 &
    else
        out=$pfx.json
        taskset -c 1 /usr/bin/time -o "$pfx.time" -f '%U %S %e' \
            "$LOADGEN" -c "$conns" -t 1 --cpus 1 -d "$dur" --json "$out" "$@" "$URL" >"$pfx.txt" 2>&1 &
    fi
    CUR=$!
    wait "$CUR" || rc=$?
    CUR=""
    ng1=$(cpu_ticks "$NG_WORKER")
    ((rc == 0)) || die "$tool exited with status $rc: $(cat "$pfx.txt")"
    kill -0 "$NG_PID" 2>/dev/null || die "nginx died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    LAST=$(python3 "$TMP/parse.py" record "$part" "$rnd" "$tool" "$conns" "$out" "$pfx.time" "$ng0" "$ng1" "$CLK_TCK")
    [[ $part == warmup || $part == cal* ]] || echo "$LAST" >>"$RESULTS"
    python3 - "$LAST" >&2 <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
print(f"[bench]   {r['tool']}: {r['rate']:.0f} req/s, p99 {r['p99']:.3f} ms, cpu {r['cpu_pct']:.1f}%,"
      f" errors {r['errors']}, non-2xx {r['non2xx']}" + ("; " + "; ".join(r["warnings"]) if r["warnings"] else ""))
EOF
}

log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
log "warm-up: $WARMUP each"
run_gen warmup 0 ringway-load "$WARMUP" "$CONNECTIONS"
run_gen warmup 0 wrk "$WARMUP" "$CONNECTIONS"

# From the last run ($LAST, with $WRK_C connections): the connection count
# scaled by RATE/achieved, and 1 when the achieved rate was within 2%.
rescale() {
    python3 - "$LAST" "$WRK_C" "$RATE" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); c = int(sys.argv[2]); rate = float(sys.argv[3])
got = r["rate"]
if not got or got != got:
    print(c, 1)
else:
    print(min(10000, max(1, round(c * rate / got))), int(abs(got - rate) <= 0.02 * rate))
EOF
}

# Calibrate wrk's paced connection count: start at RATE*D/1000*1.05, then
# scale by RATE/achieved, at most four runs, stopping within 2%. (The rate
# is not quite proportional to the connection count: wrk's event loop
# oversleeps its millisecond timers by varying amounts.)
if [[ -n $WRK_PACED_CONNECTIONS ]]; then
    WRK_C=$WRK_PACED_CONNECTIONS
    log "wrk paced connections: $WRK_C (from WRK_PACED_CONNECTIONS)"
else
    WRK_C=$(python3 -c "import math; print(max(1, math.ceil($RATE * $WRK_DELAY_MS / 1000 * 1.05)))")
    for cal in 1 2 3 4; do
        log "calibrating wrk pacing ($cal/4): -c$WRK_C, delay $WRK_DELAY_MS ms, $CALIBRATE"
        run_gen "cal$cal" 0 wrk "$CALIBRATE" "$WRK_C" -s "$TMP/delay.lua"
        read -r next done_ < <(rescale)
        if ((done_)); then break; fi
        WRK_C=$next
    done
    log "wrk paced connections: $WRK_C"
fi

for r in $(seq "$ROUNDS"); do
    log "part 1 round $r/$ROUNDS: ringway-load closed loop ($DURATION, $CONNECTIONS connections)"
    run_gen closed "$r" ringway-load "$DURATION" "$CONNECTIONS"
    log "part 1 round $r/$ROUNDS: wrk closed loop ($DURATION, $CONNECTIONS connections)"
    run_gen closed "$r" wrk "$DURATION" "$CONNECTIONS"
done
for r in $(seq "$ROUNDS"); do
    log "part 2 round $r/$ROUNDS: ringway-load --rate $RATE ($DURATION, $CONNECTIONS connections)"
    run_gen rate "$r" ringway-load "$DURATION" "$CONNECTIONS" --rate "$RATE"
    log "part 2 round $r/$ROUNDS: wrk paced ($DURATION, $WRK_C connections, delay $WRK_DELAY_MS ms)"
    run_gen rate "$r" wrk "$DURATION" "$WRK_C" -s "$TMP/delay.lua"
    if [[ -z $WRK_PACED_CONNECTIONS ]]; then
        read -r next done_ < <(rescale)
        if ((!done_)) && ((r < ROUNDS)); then
            log "wrk paced connections for the next round: $WRK_C -> $next"
            WRK_C=$next
        fi
    fi
done

# ------------------------------------------------------------------ report

echo
echo "ringway-load vs wrk: nginx return 200 (1 worker) on CPU 0; generator (1 thread) on CPU 1"
echo "$ROUNDS round(s) per part, alternating ringway-load, wrk; $(nproc --all) CPUs, CLK_TCK=$CLK_TCK," \
    "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')," \
    "$("$LOADGEN" --version)"
status=0
python3 "$TMP/parse.py" report "$RESULTS" "$CONNECTIONS" "$DURATION" "$RATE" "$WRK_DELAY_MS" || status=$?

if [[ -s $TMP/nginx-error.log ]] && grep -qv '\[notice\]' "$TMP/nginx-error.log"; then
    echo
    echo "nginx error log:"
    grep -v '\[notice\]' "$TMP/nginx-error.log" | tail -20 | sed 's/^/    /'
fi
if ((status)); then
    echo
    echo "WARNING: some runs reported errors, non-2xx responses or warnings (listed above)"
fi
