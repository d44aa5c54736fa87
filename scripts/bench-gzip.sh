#!/usr/bin/env bash
# gzip throughput: ringway and nginx compressing the same JSON body at the
# same gzip level, in front of the same origin, one worker each, pinned to
# the same CPU, measured alternately.
#
#   origin   nginx, worker_processes 1, serves $BODY_SIZE bytes of JSON
#            from a file (no compression of its own)                    CPU 1
#   proxy A  ringway, workers = 1, one route with [routes.compression]
#            algorithms = ["gzip"], gzip-level = $LEVEL                 CPU 0
#   proxy B  nginx, worker_processes 1, proxy_pass (keepalive 64) with
#            gzip on, gzip_comp_level $LEVEL, gzip_types application/json CPU 0
#   load     wrk -t1 -c$CONNECTIONS -H 'Accept-Encoding: gzip'          CPU 1
#
# Both compress with zlib's deflate at the same level: nginx with zlib,
# ringway with zlib-rs (flate2), each flushing as it goes. Before measuring,
# each proxy must answer with Content-Encoding: gzip and a body that gunzips
# to the origin's bytes; the compressed sizes are printed, since a proxy
# that compresses less works less. Rounds alternate A, B, A, B, ... so slow
# drift on a shared machine hits both.
#
# Per run: requests/s and p99 (wrk), identity MiB/s (requests/s times the
# body size: what was compressed per second), and the proxy's CPU time per
# request and per MiB from /proc/PID/stat (utime+stime, summed over the
# proxy's processes) before and after the run. The report has the medians
# and the ratios ringway/nginx.
#
# Environment:
#   LEVEL        gzip level for both, 1-9              (default 6)
#   BODY_SIZE    JSON body size in bytes               (default 65536)
#   DURATION     duration per run                      (default 10s)
#   ROUNDS       number of A/B rounds                  (default 5)
#   CONNECTIONS  wrk connections                       (default 64)
#   WARMUP       warm-up run duration per proxy        (default 2s)
#   KEEP_TMP=1   keep the temp dir (configs, logs, raw output)
#   RINGWAY      the ringway binary (default target/release/ringway of this
#                checkout, built if missing)
#
# Usage:
#   scripts/bench-gzip.sh
#   LEVEL=1 BODY_SIZE=16384 ROUNDS=6 scripts/bench-gzip.sh
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

LEVEL=${LEVEL:-6}
BODY_SIZE=${BODY_SIZE:-65536}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY_DEFAULT=$REPO/target/release/ringway
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}

log() { printf '[bench-gzip] %s\n' "$*" >&2; }
die() { printf '[bench-gzip] error: %s\n' "$*" >&2; exit 1; }

[[ $LEVEL =~ ^[1-9]$ ]] || die "LEVEL must be 1..9"
[[ $BODY_SIZE =~ ^[0-9]+$ && $BODY_SIZE -ge 1024 && $BODY_SIZE -le 67108864 ]] || die "BODY_SIZE must be 1024..67108864"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"

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

# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
bench_tmp gzip
read -r ORIGIN_PORT RW_PORT NG_PORT < <(free_ports 3)

# The body: JSON records with varied values (an API's list answer), which
# gzip -6 shrinks about 5:1, exactly BODY_SIZE bytes.
mkdir -p "$TMP/www"
python3 - "$TMP/www/data.json" "$BODY_SIZE" <<'EOF'
import sys
path, size = sys.argv[1], int(sys.argv[2])
parts, n, i = ["["], 1, 0
while n < size:
    x = (i * 2654435761) % 1000003
    rec = (f'{{"id":{i},"user":"user-{x}","email":"u{x}@example.com","score":{x % 977},'
           f'"active":{str(i % 3 == 0).lower()},"tags":["t{x % 13}","t{x % 29}"],'
           f'"updated":"2026-11-{1 + x % 28:02}T12:{x % 60:02}:00Z"}},')
    parts.append(rec); n += len(rec); i += 1
body = "".join(parts)[: size - 3].rstrip(",") + "{}]"
body = body + " " * (size - len(body))
open(path, "w").write(body)
EOF
[[ $(stat -c %s "$TMP/www/data.json") == "$BODY_SIZE" ]] || die "body generation failed"

# ------------------------------------------------------------------ configs

{
    nginx_common origin
    cat <<EOF
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $TMP/www;
        default_type application/json;
        etag off;
        location / { try_files /data.json =404; }
    }
}
EOF
} >"$TMP/origin.conf"

{
    nginx_common proxy
    cat <<EOF
    gzip on;
    gzip_comp_level $LEVEL;
    gzip_types application/json;
    gzip_min_length 1024;
    gzip_proxied any;
    gzip_vary on;
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

[routes.compression]
algorithms = ["gzip"]
content-types = ["application/json"]
min-size = 1024
gzip-level = $LEVEL
EOF

"$NGINX" -t -q -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" || die "origin config invalid"
"$NGINX" -t -q -p "$TMP" -e "$TMP/proxy-error.log" -c "$TMP/nginx-proxy.conf" || die "nginx proxy config invalid"
"$RINGWAY" validate "$TMP/ringway.toml" >/dev/null || die "ringway config invalid"

# ------------------------------------------------------------------ start

log "origin :$ORIGIN_PORT (CPU 1), ringway :$RW_PORT (CPU 0), nginx proxy :$NG_PORT (CPU 0)"
taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" -g 'daemon off;' \
    >"$TMP/origin.out" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")
taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/ringway.log" 2>&1 &
RW_PID=$!; PIDS+=("$RW_PID")
taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/proxy-error.log" -c "$TMP/nginx-proxy.conf" -g 'daemon off;' \
    >"$TMP/proxy.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")

# Wait (bounded: 10 s) until a proxy answers gzip that gunzips to the body;
# prints the compressed size.
wait_gzip() {
    local port=$1 name=$2 pid=$3 out=$TMP/check-$2
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (logs in $TMP; rerun with KEEP_TMP=1)"
        if curl -s --max-time 1 -H 'Accept-Encoding: gzip' -D "$out.head" -o "$out.gz" \
            "http://127.0.0.1:$port/data.json" \
            && grep -qi '^content-encoding: gzip' "$out.head" \
            && gzip -dc <"$out.gz" | cmp -s - "$TMP/www/data.json"; then
            stat -c %s "$out.gz"
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer a gzip body that decodes to the origin's within 10 s (see $out.head)"
}
RW_GZ=$(wait_gzip "$RW_PORT" ringway "$RW_PID")
NG_GZ=$(wait_gzip "$NG_PORT" nginx "$NG_PID")
log "compressed body: ringway $RW_GZ bytes, nginx $NG_GZ bytes (identity $BODY_SIZE)"

proxy_pids() { echo "$1"; pgrep -P "$1" || true; }
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

# run_one NAME PID PORT DURATION OUTFILE -> "rps p99_ms reqs secs non2xx sockerr cpu_us_per_req cpu_pct"
run_one() {
    local name=$1 pid=$2 port=$3 dur=$4 out=$5 pids t0 t1
    kill -0 "$pid" 2>/dev/null || die "$name is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    mapfile -t pids < <(proxy_pids "$pid")
    [[ $name != nginx || ${#pids[@]} -ge 2 ]] || die "nginx worker process not found under master $pid"
    t0=$(cpu_ticks "${pids[@]}")
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$dur" --latency -H 'Accept-Encoding: gzip' \
        "http://127.0.0.1:$port/data.json" >"$out" 2>&1 || die "wrk failed against $name: $(cat "$out")"
    t1=$(cpu_ticks "${pids[@]}")
    kill -0 "$pid" 2>/dev/null || die "$name died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    python3 - "$out" "$t0" "$t1" "$CLK_TCK" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
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
cpu_s = (t1 - t0) / hz
per_req = cpu_s * 1e6 / reqs if reqs else float("nan")
pct = 100.0 * cpu_s / secs if secs else float("nan")
print(f"{rps:.2f} {p99:.3f} {reqs} {secs:.3f} {non2xx} {sockerr} {per_req:.3f} {pct:.1f}")
EOF
}

log "warm-up: $WARMUP each"
run_one ringway "$RW_PID" "$RW_PORT" "$WARMUP" "$TMP/warmup-ringway.txt" >/dev/null
run_one nginx "$NG_PID" "$NG_PORT" "$WARMUP" "$TMP/warmup-nginx.txt" >/dev/null

RESULTS=$TMP/results.txt
: >"$RESULTS"
problems=0
for r in $(seq "$ROUNDS"); do
    for proxy in ringway nginx; do
        if [[ $proxy == ringway ]]; then pid=$RW_PID port=$RW_PORT; else pid=$NG_PID port=$NG_PORT; fi
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
echo "gzip level $LEVEL through ringway and nginx: 1 worker each on CPU 0; origin and wrk on CPU 1"
echo "body: $BODY_SIZE bytes of JSON; gzip: ringway $RW_GZ bytes, nginx $NG_GZ bytes"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency -H 'Accept-Encoding: gzip', $ROUNDS rounds, $(nproc --all) CPUs"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), ringway $("$RINGWAY" --version | awk '{print $2}')"
python3 - "$RESULTS" "$BODY_SIZE" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
mib = int(sys.argv[2]) / (1 << 20)
hdr = (f"{'round':>5}  {'proxy':<8} {'req/s':>9} {'MiB/s':>8} {'p99 ms':>8} {'cpu us/req':>11} "
       f"{'cpu ms/MiB':>11} {'cpu%':>6}  {'non-2xx':>7}  {'sock err':<8}")
print()
print(hdr)
print("-" * len(hdr))
by = {}
for r, proxy, rps, p99, reqs, secs, non2xx, sockerr, per_req, pct in rows:
    rps, p99, per_req = float(rps), float(p99), float(per_req)
    print(f"{r:>5}  {proxy:<8} {rps:>9.0f} {rps * mib:>8.1f} {p99:>8.3f} {per_req:>11.1f} "
          f"{per_req / mib / 1000:>11.2f} {float(pct):>6.1f}  {non2xx:>7}  {sockerr:<8}")
    by.setdefault(proxy, []).append((rps, rps * mib, p99, per_req, per_req / mib / 1000))
med = {p: [statistics.median(v[i] for v in vals) for i in range(5)] for p, vals in by.items()}
print()
hdr2 = f"{'median':<8} {'req/s':>9} {'MiB/s':>8} {'p99 ms':>8} {'cpu us/req':>11} {'cpu ms/MiB':>11}"
print(hdr2)
print("-" * len(hdr2))
for p in ("ringway", "nginx"):
    if p in med:
        a = med[p]
        print(f"{p:<8} {a[0]:>9.0f} {a[1]:>8.1f} {a[2]:>8.3f} {a[3]:>11.1f} {a[4]:>11.2f}")
if "ringway" in med and "nginx" in med:
    a, b = med["ringway"], med["nginx"]
    ratio = lambda x, y: x / y if y else float("nan")
    print(f"{'ratio':<8} {ratio(a[0], b[0]):>9.3f} {ratio(a[1], b[1]):>8.3f} {ratio(a[2], b[2]):>8.3f} "
          f"{ratio(a[3], b[3]):>11.3f} {ratio(a[4], b[4]):>11.3f}"
          "   (ringway/nginx: req/s and MiB/s higher is better for ringway; p99 and cpu lower is)")
EOF

if ((problems)); then
    echo
    echo "WARNING: $problems run(s) had non-2xx/3xx responses or socket errors (details above)"
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
