#!/usr/bin/env bash
# What traffic policies cost a request through ringway: throughput of a route
# with API-key authentication plus one rate limit (and, with JWT=1, of a route
# with ES256 JWT authentication plus the same limit) against the same route
# with no policies, in one ringway, measured alternately at maximum
# throughput.
#
#   origin   nginx, worker_processes 1, `return 200 "hello world\n"`  CPU 1
#   gateway  ringway, workers = 1, started under `taskset -c 0`: it pins
#            its one worker to CPU 0, the only CPU it is allowed         CPU 0
#   load     ringway-load -c $CONNECTIONS -t 1 --cpus 1 -d $DURATION,
#            closed loop (each connection sends its next request as
#            soon as the previous response ends)                        CPU 1
#
# One config, with every route proxying to the same origin:
#   /plain/    no policies
#   /policed/  auth = ["keys"]: an api-key authenticator reading x-api-key;
#              the one consumer, "bench", holds the key as
#              api-keys = ["sha256:HEX"]; and one rate limit, key =
#              "consumer", rate = "100000000/s" (its bucket never runs dry,
#              so it never rejects, but every request is counted in it)
#   /jwt/      (JWT=1) auth = ["sso"]: a jwt authenticator, algorithms =
#              ["ES256"], issuer and audience checked, the default
#              cache-size (4096 verified tokens per worker); and the same
#              rate limit
# Every run sends the same header fields whatever the route: x-api-key with
# the consumer's key and, with JWT=1, `Authorization: Bearer TOKEN`, so the
# requests differ only in their path and the measured difference is the
# route's policy work: finding the credential, the key's SHA-256 and lookup
# (or the token cache's SHA-256, probe and compare), the rate limit's
# bucket, removing the route's credential field before forwarding and adding
# x-consumer (the plain route forwards both fields as they came). The token
# is signed once: its first request verifies the signature (≈60 µs, see
# `cargo bench -p ringway-benches --bench auth`), every later one is a cache
# hit, as for a client that reuses its token.
#
# The key is random per run. For JWT=1 the script makes a P-256 key pair with
# openssl and a token for "bench" (exp ten years ahead): python3 (standard
# library only) builds the JWS signing input, `openssl dgst -sha256 -sign`
# signs it, and the DER ECDSA-Sig-Value (RFC 3279 §2.2.3) it returns is
# converted to the fixed-width r||s form JWS requires (RFC 7518 §3.4); the
# conversion is checked by re-encoding r and s to the same DER bytes.
#
# Before measuring, curl checks that the policies are in force: /plain/
# answers 200 without credentials; /policed/ answers 401 without a key and
# with a wrong one and 200 with the key; /jwt/ answers 401 without a token
# and with one whose signature was altered, and 200 with the token.
#
# After a warm-up run per route (WARMUP; not in the medians), ROUNDS rounds
# each run every route once, the order rotating by one route per round
# (plain policed jwt, policed jwt plain, jwt plain policed, ...; with JWT=0:
# plain policed, policed plain, ...), so that slow drift on a shared machine
# hits every route alike instead of always favouring the one run first.
# Per run: responses per second and p99 latency (from ringway-load's --json
# report; closed loop: send to response end), and ringway's CPU time per
# response: utime+stime of the ringway process from /proc/PID/stat (fields 14
# and 15, clock ticks; the process's figure covers all of its threads, the
# idle main and admin threads included) before and after the run, over the
# responses. "cpu%"
# is that CPU time over the run's duration: near 100% means ringway's CPU was
# the bottleneck; well below it, CPU 1 (origin and generator) was, and the
# req/s ratio understates what the policies cost, so read the CPU ratio.
# Then the medians per route and the ratios policed/plain and jwt/plain
# (target: req/s ratio >= 0.95), and the count of each status the policed
# runs got: every response must be a 200 (no 401 or 429).
#
# Exit status: 1 when any measured request failed or got another status than
# 200, or ringway's /status shows 4xx, 5xx or panics during the measured
# runs; a missed 0.95 target is printed as "NOT met" without changing the
# exit status (on a shared 2-vCPU machine one run can miss it by chance).
#
# Environment:
#   DURATION     ringway-load duration per run, like 10s    (default 10s)
#   ROUNDS       rounds, each one run per route              (default 5)
#   CONNECTIONS  generator connections                       (default 64)
#   WARMUP       warm-up run duration per route              (default 2s)
#   JWT          1: also measure the ES256 JWT route; 0: skip it (default 1)
#   REBUILD      1: rebuild ringway and ringway-load (cargo build --release)
#                when a source is newer than the binaries; 0: only warn
#                                                            (default 1)
#   KEEP_TMP=1   keep the temp dir (config, keys, token, logs, JSON reports)
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
JWT=${JWT:-1}
REBUILD=${REBUILD:-1}
TARGET_RATIO=0.95      # req/s, policed over plain (medians)
LIMIT_RATE=100000000/s # the rate limit's rate: far above what one worker serves

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY=$REPO/target/release/ringway
LOADGEN=$REPO/target/release/ringway-load

log() { printf '[policies] %s\n' "$*" >&2; }
die() { printf '[policies] error: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $JWT == 0 || $JWT == 1 ]] || die "JWT must be 0 or 1"
[[ $REBUILD == 0 || $REBUILD == 1 ]] || die "REBUILD must be 0 or 1"
secs() {   # "10s" or "2m" -> seconds
    [[ $1 =~ ^([0-9]+)(s|m)$ ]] || die "durations must look like 10s or 2m (got '$1')"
    if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
(($(secs "$DURATION") >= 1 && $(secs "$DURATION") <= 3600)) || die "DURATION must be 1s..60m"
(($(secs "$WARMUP") >= 1 && $(secs "$WARMUP") <= 600)) || die "WARMUP must be 1s..10m"

KINDS=(plain policed)
((JWT)) && KINDS+=(jwt)

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
((JWT)) && { command -v openssl >/dev/null 2>&1 || need_apt+=(openssl); }
if ((${#need_apt[@]})); then
    log "installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# The first of the given sources (crate folders) newer than binary $1, "the
# binary is missing", or nothing. A changed Cargo.lock need not relink a
# binary, so cargo may then find nothing to do; that costs a fraction of a
# second.
stale_source() {
    local bin=$1 crate paths=("$REPO/Cargo.toml" "$REPO/Cargo.lock")
    shift
    [[ -x $bin ]] || { echo "the binary is missing"; return; }
    for crate in "$@"; do paths+=("$REPO/$crate/src" "$REPO/$crate/Cargo.toml"); done
    { find "${paths[@]}" -type f -newer "$bin" -print -quit 2>/dev/null || true; } | sed "s|^$REPO/||; s|\$| is newer|"
}
stale=""
s=$(stale_source "$RINGWAY" engine config)
[[ -n $s ]] && stale+="ringway: $s"
s=$(stale_source "$LOADGEN" loadtest)
[[ -n $s ]] && stale+="${stale:+; }ringway-load: $s"
if [[ -n $stale ]]; then
    if ((REBUILD)); then
        command -v cargo >/dev/null 2>&1 \
            || die "binaries out of date ($stale) and no cargo to rebuild them; run: cargo build --release -p ringway -p ringway-loadtest"
        log "sources newer than the binaries ($stale):" \
            "cargo build --release -p ringway -p ringway-loadtest"
        (cd "$REPO" && cargo build --release -p ringway -p ringway-loadtest) || die "build failed"
    else
        log "WARNING: binaries out of date ($stale); measuring them anyway (REBUILD=0)." \
            "Rebuild with: cargo build --release -p ringway -p ringway-loadtest"
    fi
fi
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"
[[ -x $LOADGEN ]] || die "no ringway-load binary at $LOADGEN"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/ringway-policies.XXXXXX)
chmod 755 "$TMP"
PIDS=()   # long-lived: nginx, ringway
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
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Three free loopback ports, held open together so they are distinct: the
# origin, ringway's listener and its admin API.
read -r ORIGIN_PORT RW_PORT ADMIN_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ------------------------------------------------------------------ credentials

# The API key: 24 random bytes as hex; the config holds only its SHA-256.
read -r API_KEY API_KEY_SHA256 < <(python3 -c 'import hashlib, secrets
k = secrets.token_hex(24)
print(k, hashlib.sha256(k.encode()).hexdigest())')

ISSUER=https://sso.bench.invalid/
AUDIENCE=ringway-bench
if ((JWT)); then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/es256.key.pem" 2>"$TMP/openssl.err" \
        || die "openssl could not make a P-256 key: $(cat "$TMP/openssl.err")"
    openssl pkey -in "$TMP/es256.key.pem" -pubout -out "$TMP/es256.pub.pem" 2>"$TMP/openssl.err" \
        || die "openssl could not write the public key: $(cat "$TMP/openssl.err")"
    # Prints the token, or fails with the reason.
    python3 - "$TMP/es256.key.pem" bench "$ISSUER" "$AUDIENCE" >"$TMP/token" <<'EOF' || die "could not sign the token"
import base64, json, subprocess, sys, time

key, sub, iss, aud = sys.argv[1:5]

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def compact(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())

now = int(time.time())
header = {"alg": "ES256", "typ": "JWT", "kid": "bench"}
claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "nbf": now - 60,
          "exp": now + 10 * 365 * 86400}
signing_input = compact(header) + "." + compact(claims)
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                     input=signing_input.encode(), capture_output=True, check=True).stdout

# ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, DER (RFC 3279 §2.2.3).
def read_len(b, i):
    n = b[i]
    if n < 0x80:
        return n, i + 1
    width = n & 0x7F
    if not 1 <= width <= 2:
        raise ValueError("bad DER length")
    return int.from_bytes(b[i + 1:i + 1 + width], "big"), i + 1 + width

def read_int(b, i):
    if b[i] != 0x02:
        raise ValueError("expected INTEGER")
    n, i = read_len(b, i + 1)
    return int.from_bytes(b[i:i + n], "big", signed=True), i + n

if der[0] != 0x30:
    raise SystemExit("signature is not a DER SEQUENCE: %s" % der.hex())
n, i = read_len(der, 1)
if i + n != len(der):
    raise SystemExit("DER SEQUENCE length %d does not match %d bytes" % (n, len(der) - i))
r, i = read_int(der, i)
s, i = read_int(der, i)
if i != len(der) or not (0 < r < 1 << 256 and 0 < s < 1 << 256):
    raise SystemExit("unexpected ECDSA signature: %s" % der.hex())

# Check the reading: r and s must encode back to exactly the same DER.
def enc_int(v):
    body = v.to_bytes((v.bit_length() + 8) // 8, "big")  # room for a sign bit
    return b"\x02" + bytes([len(body)]) + body
seq = enc_int(r) + enc_int(s)
if b"\x30" + bytes([len(seq)]) + seq != der:
    raise SystemExit("r and s do not re-encode to the signature openssl gave")

# JWS ES256 (RFC 7518 §3.4): r and s as 32-byte big-endian, concatenated.
print(signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
EOF
    TOKEN=$(cat "$TMP/token")
    # The same token with a character inside its signature changed (not the
    # last one, whose low bits are padding: changing those would make the
    # token malformed rather than wrongly signed).
    c=${TOKEN: -10:1}
    BAD_TOKEN=${TOKEN:0:${#TOKEN}-10}$([[ $c == A ]] && echo B || echo A)${TOKEN: -9}
fi

# ------------------------------------------------------------------ configs

mkdir -p "$TMP/origin"
cat >"$TMP/origin.conf" <<EOF
worker_processes 1;
pid $TMP/origin.pid;
error_log $TMP/origin-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/origin/body;
    proxy_temp_path $TMP/origin/proxy;
    fastcgi_temp_path $TMP/origin/fastcgi;
    uwsgi_temp_path $TMP/origin/uwsgi;
    scgi_temp_path $TMP/origin/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        location / { return 200 "hello world\n"; }
    }
}
EOF

{
    cat <<EOF
workers = 1

[admin]
address = "127.0.0.1:$ADMIN_PORT"

[[listeners]]
address = "127.0.0.1:$RW_PORT"

[[upstreams]]
name = "origin"
servers = ["127.0.0.1:$ORIGIN_PORT"]

[[consumers]]
name = "bench"
api-keys = ["sha256:$API_KEY_SHA256"]

[[authenticators]]
name = "keys"
type = "api-key"
header = "x-api-key"
EOF
    if ((JWT)); then
        cat <<EOF

[[authenticators]]
name = "sso"
type = "jwt"
algorithms = ["ES256"]
issuer = "$ISSUER"
audience = ["$AUDIENCE"]

[[authenticators.keys]]
kid = "bench"
pem = """
$(cat "$TMP/es256.pub.pem")
"""
EOF
    fi
    cat <<EOF

[[routes]]
name = "plain"
path-prefix = "/plain/"
upstream = "origin"

[[routes]]
name = "policed"
path-prefix = "/policed/"
upstream = "origin"
auth = ["keys"]

[[routes.rate-limits]]
key = "consumer"
rate = "$LIMIT_RATE"
EOF
    if ((JWT)); then
        cat <<EOF

[[routes]]
name = "jwt"
path-prefix = "/jwt/"
upstream = "origin"
auth = ["sso"]

[[routes.rate-limits]]
key = "consumer"
rate = "$LIMIT_RATE"
EOF
    fi
} >"$TMP/ringway.toml"

"$NGINX" -t -q -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" || die "origin config invalid"
"$RINGWAY" validate "$TMP/ringway.toml" >"$TMP/validate.out" 2>&1 \
    || die "ringway rejects $TMP/ringway.toml (a binary without traffic policies? rebuild with" \
        "cargo build --release -p ringway):"$'\n'"$(cat "$TMP/validate.out")"

# ------------------------------------------------------------------ start

log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
log "origin :$ORIGIN_PORT (CPU 1), ringway :$RW_PORT admin :$ADMIN_PORT (CPU 0), ringway-load (CPU 1)"

taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/origin-error.log" -c "$TMP/origin.conf" -g 'daemon off;' \
    >"$TMP/origin.out" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")

taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/ringway.log" 2>&1 &
RW_PID=$!; PIDS+=("$RW_PID")

# Wait (bounded: 10 s) until a URL answers exactly "hello world".
wait_hello() {
    local url=$1 name=$2 pid=$3 body=""
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see logs in $TMP; rerun with KEEP_TMP=1)"
        if body=$(curl -s --max-time 1 "$url") && [[ $body == "hello world" ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer 'hello world' at $url within 10 s (last body: '${body:-}')"
}
wait_hello "http://127.0.0.1:$ORIGIN_PORT/" origin "$ORIGIN_PID"
wait_hello "http://127.0.0.1:$RW_PORT/plain/" ringway "$RW_PID"
pinned=$(grep -o 'worker started worker=[0-9]* cpu=[0-9]*' "$TMP/ringway.log" | sed 's/worker started //' | paste -sd, -)
[[ $pinned == "worker=0 cpu=0" ]] || die "expected ringway's one worker on CPU 0, its log says: '${pinned:-nothing}'"
log "ringway answers; $pinned"

# ------------------------------------------------------------------ checks

# expect STATUS PATH [CURL ARGS...]: the request must get STATUS.
expect() {
    local want=$1 path=$2 got
    shift 2
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "http://127.0.0.1:$RW_PORT$path") || got="no answer"
    [[ $got == "$want" ]] || die "GET $path ${*:+with $* }answered $got, expected $want"
}
expect 200 /plain/
expect 401 /policed/
expect 401 /policed/ -H "x-api-key: not-the-key-$API_KEY"
expect 200 /policed/ -H "x-api-key: $API_KEY"
checked="/plain/ 200 without credentials; /policed/ 401 without a key and with a wrong one, 200 with it"
HEADERS=(-H "x-api-key: $API_KEY")
if ((JWT)); then
    expect 401 /jwt/
    expect 401 /jwt/ -H "Authorization: Bearer $BAD_TOKEN"
    expect 200 /jwt/ -H "Authorization: Bearer $TOKEN"
    checked+="; /jwt/ 401 without a token and with a bad signature, 200 with the token (${#TOKEN} bytes)"
    HEADERS+=(-H "Authorization: Bearer $TOKEN")
fi
log "policies in force: $checked"

admin_status() {
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status" >"$1" || die "GET /status on the admin API failed"
}

# ------------------------------------------------------------------ measure

# Sum of utime+stime in clock ticks of one process (all its threads).
cpu_ticks() {
    local line rest f
    line=$(cat "/proc/$1/stat") || die "cannot read /proc/$1/stat"
    rest=${line##*) }               # skip "pid (comm) " (comm may hold spaces)
    read -r -a f <<<"$rest"         # f[0] is field 3 (state)
    echo $((f[11] + f[12]))         # fields 14 (utime) and 15 (stime)
}

RESULTS=$TMP/results.txt
: >"$RESULTS"

# run KIND ROUND DURATION: one closed-loop run against /KIND/; appends its
# figures to RESULTS and prints a progress line.
run() {
    local kind=$1 rnd=$2 dur=$3 pfx t0 t1 rc=0 line
    pfx=$TMP/$kind-$rnd
    kill -0 "$RW_PID" 2>/dev/null || die "ringway is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    t0=$(cpu_ticks "$RW_PID")
    taskset -c 1 "$LOADGEN" -c "$CONNECTIONS" -t 1 --cpus 1 -d "$dur" "${HEADERS[@]}" \
        --json "$pfx.json" "http://127.0.0.1:$RW_PORT/$kind/" >"$pfx.txt" 2>&1 &
    CUR=("$!")
    wait "${CUR[0]}" || rc=$?
    CUR=()
    t1=$(cpu_ticks "$RW_PID")
    ((rc == 0)) || die "ringway-load exited with status $rc: $(cat "$pfx.txt")"
    kill -0 "$RW_PID" 2>/dev/null || die "ringway died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    line=$(python3 - "$pfx.json" "$kind" "$rnd" "$t0" "$t1" "$CLK_TCK" <<'EOF'
import json, sys
path, kind, rnd, t0, t1, hz = sys.argv[1:7]
d = json.load(open(path))
st = {int(k): v for k, v in d["statuses"].items()}
other = sum(v for k, v in st.items() if k not in (200, 401, 429))
errors = sum(d["errors"].values())
cpu_s = (int(t1) - int(t0)) / int(hz)
resp, secs = d["responses"], d["duration"]
per_req = cpu_s * 1e6 / resp if resp else float("nan")
pct = 100.0 * cpu_s / secs if secs else float("nan")
print(kind, rnd, f"{d['achieved_rate']:.2f}", f"{d['latency']['p99_us'] / 1000:.3f}", resp,
      f"{per_req:.3f}", f"{pct:.1f}", st.get(200, 0), st.get(401, 0), st.get(429, 0), other, errors,
      d["connects"], len(d.get("warnings") or []))
EOF
    )
    echo "$line" >>"$RESULTS"
    read -r _ _ rps p99 _ cpu pct s200 s401 s429 other errors connects warns <<<"$line"
    log "  $kind: $rps req/s, p99 $p99 ms, $cpu us cpu/req ($pct%), 200 $s200, 401 $s401, 429 $s429," \
        "other $other, errors $errors, connections $connects$( ((warns)) && echo ", warnings $warns")"
}

log "warm-up: $WARMUP per route"
for kind in "${KINDS[@]}"; do run "$kind" 0 "$WARMUP"; done
admin_status "$TMP/status-before.json"
for r in $(seq "$ROUNDS"); do
    first=$(((r - 1) % ${#KINDS[@]}))
    order=("${KINDS[@]:first}" "${KINDS[@]:0:first}")
    log "round $r/$ROUNDS: ${order[*]} ($DURATION each, $CONNECTIONS connections)"
    for kind in "${order[@]}"; do run "$kind" "$r" "$DURATION"; done
done
admin_status "$TMP/status-after.json"

# ------------------------------------------------------------------ report

echo
echo "ringway traffic policies, closed loop: 1 worker on CPU 0; nginx origin (1 worker) and ringway-load"
echo "(1 thread) on CPU 1; ringway-load -c$CONNECTIONS -t1 -d$DURATION, $ROUNDS rounds of ${KINDS[*]}" \
    "(order rotating)"
echo "$(nproc --all) CPUs, CLK_TCK=$CLK_TCK, load average at end $(cut -d' ' -f1-3 /proc/loadavg);" \
    "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), ringway $("$RINGWAY" --version | awk '{print $2}')," \
    "$("$LOADGEN" --version)"
line="policed: api-key (x-api-key) + rate limit per consumer $LIMIT_RATE"
((JWT)) && line+="; jwt: ES256 bearer token (${#TOKEN} bytes, cached after its first request) + the same limit"
echo "$line"
status=0
python3 - "$RESULTS" "$TMP/status-before.json" "$TMP/status-after.json" "$TARGET_RATIO" "$CONNECTIONS" \
    <<'EOF' || status=$?
import json, math, statistics, sys

path, before, after, target, conns = sys.argv[1:6]
target, conns = float(target), int(conns)
rows = [l.split() for l in open(path) if l.strip()]
cols = ("kind", "round", "rps", "p99", "resp", "cpu", "pct", "s200", "s401", "s429", "other", "errors",
        "connects", "warns")
recs = []
for r in rows:
    d = dict(zip(cols, r))
    for k in ("rps", "p99", "cpu", "pct"):
        d[k] = float(d[k])
    for k in ("round", "resp", "s200", "s401", "s429", "other", "errors", "connects", "warns"):
        d[k] = int(d[k])
    recs.append(d)
kinds = list(dict.fromkeys(d["kind"] for d in recs))
measured = [d for d in recs if d["round"] > 0]
bad = []

print()
hdr = (f"{'round':>5}  {'route':<8} {'req/s':>9} {'p99 ms':>8} {'responses':>10} {'cpu us/req':>11} {'cpu%':>6}"
       f"  {'200':>9} {'401':>5} {'429':>5} {'other':>5} {'errors':>6}")
print(hdr)
print("-" * len(hdr))
for d in recs:
    rnd = "warm" if d["round"] == 0 else str(d["round"])
    print(f"{rnd:>5}  {d['kind']:<8} {d['rps']:>9.0f} {d['p99']:>8.3f} {d['resp']:>10} {d['cpu']:>11.3f}"
          f" {d['pct']:>6.1f}  {d['s200']:>9} {d['s401']:>5} {d['s429']:>5} {d['other']:>5} {d['errors']:>6}")
print("   req/s: responses per second; p99: send to response end (closed loop); cpu us/req: ringway's")
print("   utime+stime over the responses; cpu%: that CPU time over the run. warm: warm-up, not in the medians.")

med = {k: [statistics.median(d[f] for d in measured if d["kind"] == k) for f in ("rps", "p99", "cpu", "pct")]
       for k in kinds}
print()
hdr2 = f"{'median':<16} {'req/s':>9} {'p99 ms':>8} {'cpu us/req':>11} {'cpu%':>6}"
print(hdr2)
print("-" * len(hdr2))
for k in kinds:
    rps, p99, cpu, pct = med[k]
    print(f"{k:<16} {rps:>9.0f} {p99:>8.3f} {cpu:>11.3f} {pct:>6.1f}")
ratio = lambda a, b: a / b if b else math.nan
for k in kinds[1:]:
    a, b = med[k], med["plain"]
    print(f"{k + '/plain':<16} {ratio(a[0], b[0]):>9.3f} {ratio(a[1], b[1]):>8.3f} {ratio(a[2], b[2]):>11.3f}")
print("   (req/s: higher is better; p99 and cpu/req: lower is)")
print()
for k in kinds[1:]:
    r = ratio(med[k][0], med["plain"][0])
    met = not math.isnan(r) and r >= target
    per_round = []
    for rnd in sorted({d["round"] for d in measured}):
        p = [d["rps"] for d in measured if d["round"] == rnd and d["kind"] == "plain"]
        q = [d["rps"] for d in measured if d["round"] == rnd and d["kind"] == k]
        if p and q:
            per_round.append(ratio(q[0], p[0]))
    print(f"target: {k} req/s / plain req/s >= {target:.2f}: {'met' if met else 'NOT met'} ({r:.3f});"
          f" per round: {', '.join(f'{x:.3f}' for x in per_round)}")
    print(f"   {k} adds {med[k][2] - med['plain'][2]:.3f} us of ringway CPU per request (median cpu/req difference)")
sat = [k for k in kinds if med[k][3] < 90.0]
if sat:
    print(f"   note: ringway's CPU was below 90% busy on {', '.join(sat)}: CPU 1 (origin and generator) limited")
    print("   those runs, so their req/s ratio understates the policies' cost; the cpu/req ratio does not")

print()
for k in kinds:
    rs = [d for d in measured if d["kind"] == k]
    tot = {f: sum(d[f] for d in rs) for f in ("resp", "s200", "s401", "s429", "other", "errors")}
    ok = tot["s200"] == tot["resp"] and not (tot["s401"] or tot["s429"] or tot["other"] or tot["errors"])
    print(f"statuses, {k} runs: {tot['resp']} responses: 200 {tot['s200']}, 401 {tot['s401']},"
          f" 429 {tot['s429']}, other {tot['other']}; errors {tot['errors']}: {'ok' if ok else 'FAILED'}")
    if not ok:
        bad.append(f"{k} runs got responses other than 200 or errors")
    reconnected = [d for d in rs if d["connects"] != conns]
    if reconnected:
        print(f"   note: {len(reconnected)} {k} run(s) opened more than {conns} connections"
              " (a connection was closed mid-run)")

s0, s1 = json.load(open(before))["totals"], json.load(open(after))["totals"]
delta = {k: s1[k] - s0[k] for k in s0 if isinstance(s0[k], int) and k != "connections_open"}
print(f"ringway /status over the measured runs: {delta['requests']} requests, 2xx {delta['responses_2xx']},"
      f" 4xx {delta['responses_4xx']}, 5xx {delta['responses_5xx']} (upstream 502/503/504"
      f" {delta['upstream_502']}/{delta['upstream_503']}/{delta['upstream_504']}), panics {delta['panics']},"
      f" client connections {delta['connections_accepted']}")
if delta["responses_4xx"] or delta["responses_5xx"] or delta["panics"]:
    bad.append("ringway's /status shows 4xx, 5xx or panics during the measured runs")
if bad:
    print()
    print("FAILED: " + "; ".join(bad))
    sys.exit(1)
EOF

notes=$(cat "$TMP"/*-[0-9]*.json | python3 -c 'import json, sys
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
if [[ -s $TMP/origin-error.log ]] && grep -qv '\[notice\]' "$TMP/origin-error.log"; then
    echo
    echo "nginx error log:"
    grep -v '\[notice\]' "$TMP/origin-error.log" | tail -20 | sed 's/^/    /'
fi
exit "$status"
