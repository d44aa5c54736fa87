#!/usr/bin/env bash
# One cache for all workers (#17): ringway's cache hit path with one worker
# and with two, and (with BASELINE) against a ringway build whose workers
# each keep their own cache, measured alternately at maximum throughput.
#
#   origin   nginx, worker_processes 1: /k/N answers BODY_SIZE bytes with
#            Cache-Control: max-age=3600                            CPU 1
#   proxy    ringway with [cache] size = "64MiB" and one caching route,
#            started afresh for every run (an empty cache):
#              rw-1w     workers = 1, under taskset -c 0           CPU 0
#              rw-2w     workers = 2, under taskset -c 0,1         CPU 0-1
#              base-2w   BASELINE's binary, workers = 2           CPU 0-1
#   load     ringway-load -t 1 --cpus 1 -c $CONNECTIONS, closed loop, a
#            scenario of KEYS distinct URLs taken round-robin       CPU 1
#
# Each run fills the cache (one miss per key, or, with a cache per worker,
# one per key per worker) and then hits. Per run: responses per second,
# p50 and p99, the hit rate from the admin API's GET /cache deltas (hits
# over hits plus misses, and the origin fetches it implies), the proxy's
# CPU time per response (utime+stime of its process over the responses),
# and the origin's request count from its access log.
#
# On a 2-CPU machine the load generator and the origin share CPU 1 with
# the second worker, so two workers cannot double the requests per second
# there; the CPU per response says what a worker's hit costs, and whether
# it grows when two workers share one cache (the entries' reference counts
# and hit counters are then written from two cores).
#
# LAYOUT=per-cpu measures scaling on such a machine instead: every CPU the
# gateway uses also runs one load thread with CONNECTIONS connections, and
# the gateway runs with connection-balance = "cpu", so each load thread's
# connections go to the worker on its CPU: each worker brings its own
# share of load, and what the workers share is the cache (every key is
# requested on both, so hits on one entry come from both cores).
#              rw-1w     worker CPU 0; load 1 thread on CPU 0,
#                        CONNECTIONS connections
#              rw-2w     workers CPUs 0,1; load 2 threads on CPUs 0,1,
#                        2 x CONNECTIONS connections
#              base-2w   as rw-2w with BASELINE's binary (which must know
#                        connection-balance)
#   origin   on CPU 0 in every mode (it serves only the misses).
# rw-2w/rw-1w is then how requests per second scale with workers.
#
# Rounds run every mode once, the order rotating by one per round; the
# medians per mode follow, then the ratios rw-2w/rw-1w and rw-2w/base-2w.
#
# Environment:
#   DURATION     per run, like 10s                               (default 10s)
#   ROUNDS       rounds                                          (default 5)
#   CONNECTIONS  generator connections                           (default 64)
#   KEYS         distinct URLs                                   (default 2000)
#   BODY_SIZE    response body bytes                             (default 1024)
#   BASELINE     path to another ringway binary to run as base-2w (default:
#                none; e.g. one built from the commit before the shared
#                cache)
#   LAYOUT       split: load and origin on CPU 1; per-cpu: a load thread
#                beside every worker, as above                   (default split)
#   REBUILD      1: cargo build --release first                  (default 1)
#   KEEP_TMP=1   keep the temp dir
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
KEYS=${KEYS:-2000}
BODY_SIZE=${BODY_SIZE:-1024}
BASELINE=${BASELINE:-}
REBUILD=${REBUILD:-1}
LAYOUT=${LAYOUT:-split}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY=$REPO/target/release/ringway
LOADGEN=$REPO/target/release/ringway-load

log() { printf '[cache-workers] %s\n' "$*" >&2; }
die() { printf '[cache-workers] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $KEYS =~ ^[0-9]+$ && $KEYS -ge 1 && $KEYS -le 100000 ]] || die "KEYS must be 1..100000"
[[ $BODY_SIZE =~ ^[0-9]+$ && $BODY_SIZE -ge 1 && $BODY_SIZE -le 65536 ]] || die "BODY_SIZE must be 1..65536"
[[ -z $BASELINE || -x $BASELINE ]] || die "BASELINE is not an executable: $BASELINE"
[[ $LAYOUT == split || $LAYOUT == per-cpu ]] || die "LAYOUT must be split or per-cpu"
ORIGIN_CPU=1
[[ $LAYOUT == per-cpu ]] && ORIGIN_CPU=0

command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nginx >/dev/null
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ((REBUILD)); then
    (cd "$REPO" && cargo build --release -p ringway -p ringway-loadtest) || die "build failed"
fi
(($(nproc --all) >= 2)) || die "needs CPUs 0 and 1"
CLK_TCK=$(getconf CLK_TCK)

bench_tmp cache-workers
read -r ORIGIN_PORT RW_PORT ADMIN_PORT < <(free_ports 3)

mkdir -p "$TMP/www"
head -c "$BODY_SIZE" /dev/zero | tr '\0' 'c' >"$TMP/www/body"
{
    nginx_common origin
    cat <<EOF
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        # Each line one origin fetch.
        access_log $TMP/origin-access.log;
        root $TMP/www;
        location /k/ {
            add_header Cache-Control "max-age=3600" always;
            try_files /body =404;
        }
    }
}
EOF
} >"$TMP/origin.conf"
taskset -c "$ORIGIN_CPU" "$NGINX" -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" -g 'daemon off;' \
    >"$TMP/origin.out" 2>&1 &
PIDS+=("$!")

python3 - "$TMP/scenario.toml" "$KEYS" <<'EOF'
import sys
path, keys = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write('pick = "round-robin"\n')
    for i in range(keys):
        f.write(f'[[requests]]\npath = "/k/{i}"\n')
EOF

# Only per-cpu names the key, so that a split run may take a baseline
# from before it.
BALANCE=
[[ $LAYOUT == per-cpu ]] && BALANCE='connection-balance = "cpu"'
config() {   # workers
    cat <<EOF
workers = $1
$BALANCE
[admin]
address = "127.0.0.1:$ADMIN_PORT"
[cache]
size = "64MiB"
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
}
config 1 >"$TMP/rw-1w.toml"
config 2 >"$TMP/rw-2w.toml"
cp "$TMP/rw-2w.toml" "$TMP/base-2w.toml"

MODES=(rw-1w rw-2w)
[[ -n $BASELINE ]] && MODES+=(base-2w)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cache_counts() {   # hits misses
    curl -s "http://127.0.0.1:$ADMIN_PORT/cache" | python3 -c \
        'import json,sys; d=json.load(sys.stdin); print(d["hits"], d["misses"])'
}
wait_up() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/status" && return 0
        sleep 0.1
    done
    die "ringway did not come up"
}

run() {   # mode round
    local mode=$1 round=$2 bin=$RINGWAY cpus=0,1 pid t0 t1 counts
    [[ $mode == base-2w ]] && bin=$BASELINE
    [[ $mode == rw-1w ]] && cpus=0
    taskset -c "$cpus" "$bin" -c "$TMP/$mode.toml" >"$TMP/$mode-$round.log" 2>&1 &
    pid=$!
    wait_up
    local origin_before
    origin_before=$(wc -l <"$TMP/origin-access.log")
    t0=$(cpu_ticks "$pid")
    local load_cpus=1 threads=1
    if [[ $LAYOUT == per-cpu ]]; then
        load_cpus=$cpus
        threads=$(tr ',' '\n' <<<"$cpus" | wc -l)
    fi
    "$LOADGEN" -s "$TMP/scenario.toml" -c "$((CONNECTIONS * threads))" -t "$threads" --cpus "$load_cpus" -d "$DURATION" \
        --json "$TMP/$mode-$round.json" "http://127.0.0.1:$RW_PORT/" >/dev/null 2>&1 || true
    t1=$(cpu_ticks "$pid")
    counts=$(cache_counts)
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local fetched=$(($(wc -l <"$TMP/origin-access.log") - origin_before))
    python3 - "$TMP/$mode-$round.json" "$mode" "$round" "$((t1 - t0))" "$CLK_TCK" "$counts" "$fetched" \
        >>"$TMP/results.tsv" <<'EOF'
import json, sys
path, mode, rnd, ticks, tck, counts, fetched = sys.argv[1:8]
d = json.load(open(path))
ok = d["statuses"].get("200", 0)
if ok != d["responses"] or sum(d["errors"].values()):
    sys.exit(f"{mode} round {rnd}: {d['responses']} responses, {ok} of them 200, errors {d['errors']}")
lat = d["latency"]
hits, misses = (int(x) for x in counts.split())
cpu_us = int(ticks) / int(tck) * 1e6 / max(ok, 1)
print("\t".join(str(x) for x in [mode, rnd, d["achieved_rate"], lat["p50_us"], lat["p99_us"], hits / max(hits + misses, 1), misses, fetched, cpu_us, ok]))
EOF
}

log "load average: $(cut -d' ' -f1-3 /proc/loadavg); layout $LAYOUT; modes ${MODES[*]}; $KEYS keys, $ROUNDS rounds of $DURATION"
: >"$TMP/results.tsv"
for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < ${#MODES[@]}; i++)); do
        mode=${MODES[$(((i + round) % ${#MODES[@]}))]}
        run "$mode" "$round"
        log "round $round $mode: $(tail -1 "$TMP/results.tsv" | cut -f3-9)"
    done
done

python3 - "$TMP/results.tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["rate", "p50_us", "p99_us", "hit_rate", "misses", "origin_fetches", "cpu_us_per_resp"]
by = {}
for r in rows:
    by.setdefault(r[0], []).append([float(x) for x in r[2:9]])
med = {m: [statistics.median(v[i] for v in vs) for i in range(len(cols))] for m, vs in by.items()}
print("| mode | req/s | p50 | p99 | hit rate | misses | origin fetches | CPU/resp |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for m, v in med.items():
    print(f"| {m} | {v[0]:,.0f} | {v[1]:.0f} µs | {v[2]:.0f} µs | {v[3]*100:.2f}% | {v[4]:.0f} | {v[5]:.0f} | {v[6]:.2f} µs |")
def ratio(a, b):
    if a in med and b in med:
        x, y = med[a], med[b]
        print(f"{a} / {b}: req/s {x[0]/y[0]:.2f}x, CPU/resp {x[6]/y[6]:.2f}x, hit rate {x[3]*100:.2f}% vs {y[3]*100:.2f}%, origin fetches {x[5]:.0f} vs {y[5]:.0f}")
ratio("rw-2w", "rw-1w")
ratio("rw-2w", "base-2w")
# Per round (the modes of one round ran back to back): the spread of the
# req/s ratio, which the machine's drift between rounds leaves out.
rates = {}
for r in rows:
    rates.setdefault(r[1], {})[r[0]] = float(r[2])
def per_round(a, b):
    rs = sorted(v[a] / v[b] for v in rates.values() if a in v and b in v)
    if rs:
        print(f"{a} / {b} req/s per round: min {rs[0]:.2f}x, median {statistics.median(rs):.2f}x, max {rs[-1]:.2f}x ({len(rs)} rounds)")
per_round("rw-2w", "rw-1w")
per_round("rw-2w", "base-2w")
EOF
