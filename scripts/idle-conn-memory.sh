#!/usr/bin/env bash
# Memory cost of an idle keep-alive client connection: ringway vs nginx
# (and, with BASELINE, vs an earlier ringway build).
#
# For each server in turn (only one runs at a time), pinned to CPU 0:
#   ringway         workers = 1, one route answered by the built-in responder
#                   ([routes.respond]), keepalive-timeout and
#                   header-read-timeout 300s
#   ringway-before  only with BASELINE=/path/to/ringway: that binary with the
#                   same config (its own port), checked by its own `validate`
#   nginx           worker_processes 1, `return 200`, keepalive_timeout 300s,
#                   worker_connections CONNS + 1024
# the script
#   1. measures RSS (VmRSS from /proc/PID/status),
#   2. opens CONNS client connections from a python3 helper pinned to CPU 1;
#      on each it sends `GET / HTTP/1.1` and reads the whole response, so each
#      is a used keep-alive connection, now idle; the helper keeps them all
#      open and prints READY,
#   3. waits SETTLE seconds, measures RSS again and reports
#      (after - before) / CONNS in bytes per idle connection,
#   4. closes all the connections at once (the helper exits), waits
#      CLOSE_SETTLE seconds, measures RSS once more ("RSS closed": how much
#      of the growth the server gives back), and stops the server.
#
# Targets for ringway (reported as met / NOT met; the other rows are
# informational):
#   - at most TARGET_BYTES (2048) bytes of RSS growth per idle connection;
#   - RSS back within 10% of its start: "RSS closed" <= 1.10 x "RSS before",
#     CLOSE_SETTLE s after the connections close.
#
# RSS for nginx is the sum over its master and its worker (the master does not
# change with connections, so the growth is the worker's). For ringway it is
# its single process (all threads share one address space).
#
# Note: nginx allocates and initialises its whole connection table
# (worker_connections entries) when the worker starts, so part of its
# per-connection cost is already in "RSS before" and not in the growth.
# Kernel socket memory is not in either process's RSS.
#
# The "held" column counts the server's open socket descriptors with the
# connections open minus before: it should equal CONNS, which shows that the
# server really kept every connection.
#
# Environment:
#   CONNS        idle connections to open             (default 10000)
#   SETTLE       seconds to wait before measuring     (default 2)
#   CLOSE_SETTLE seconds after the connections close before measuring
#                "RSS closed"                          (default 5)
#   NOFILE       open-files limit to ask for          (default 65536; capped
#                at the hard limit, which a container may set lower)
#   RINGWAY_DRIVER  ringway's I/O driver: io_uring or epoll (default io_uring)
#   KEEP_TMP=1   keep the temp dir (configs, logs)
#   RINGWAY      the ringway binary under test  (default target/release/ringway
#                of this checkout, built if missing)
#   BASELINE     a ringway binary measured as a third server, "ringway-before"
#                (default unset: not measured)
#
# Usage:
#   scripts/idle-conn-memory.sh
#   CONNS=2000 BASELINE=/path/to/old/ringway scripts/idle-conn-memory.sh
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

CONNS=${CONNS:-10000}
RINGWAY_DRIVER=${RINGWAY_DRIVER:-io_uring}
SETTLE=${SETTLE:-2}
CLOSE_SETTLE=${CLOSE_SETTLE:-5}
NOFILE=${NOFILE:-65536}
TARGET_BYTES=2048   # goal for ringway: at most this many bytes per idle connection
RETURN_PCT=10       # goal for ringway: RSS closed at most this much above RSS before

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY_DEFAULT=$REPO/target/release/ringway
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}
BASELINE=${BASELINE:-}

log() { printf '[idle-mem] %s\n' "$*" >&2; }
die() { printf '[idle-mem] error: %s\n' "$*" >&2; exit 1; }

[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le 25000 ]] || die "CONNS must be 1..25000"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SETTLE must be a number of seconds"
[[ $CLOSE_SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "CLOSE_SETTLE must be a number of seconds"
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE && ! -d $BASELINE ]] || die "BASELINE=$BASELINE is not an executable file"
    BASELINE=$(realpath "$BASELINE")
fi

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
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"

# Raise the open-files limit for this shell and so for everything it starts.
HARD=$(ulimit -Hn)
if [[ $HARD != unlimited ]] && ((NOFILE > HARD)); then
    ulimit -Hn "$NOFILE" 2>/dev/null || { log "hard open-files limit is $HARD; using it"; NOFILE=$HARD; }
fi
ulimit -n "$NOFILE" || die "cannot set ulimit -n $NOFILE"
((CONNS + 200 <= $(ulimit -n))) || die "CONNS=$CONNS needs ulimit -n of at least $((CONNS + 200)), have $(ulimit -n)"

TMP=$(mktemp -d /tmp/ringway-idlemem.XXXXXX)
chmod 755 "$TMP"
PIDS=()

stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    # bounded wait: at most ~5 s, then SIGKILL
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r RW_PORT NG_PORT RB_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ------------------------------------------------------------------ client helper

# Opens CONNS connections one after another (so no listen backlog overflows),
# sends one request on each and reads the complete response (head, then a
# Content-Length body), keeps them all open, prints "READY n", then holds them
# until it is terminated or HOLD_MAX seconds pass.
cat >"$TMP/client.py" <<'EOF'
import os, signal, socket, sys, time

port, n = int(sys.argv[1]), int(sys.argv[2])
HOLD_MAX, DEADLINE = 600.0, 300.0
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head ended")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        raise ConnectionError("unexpected status line %r" % lines[0])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"connection" and b"close" in value.lower():
            raise ConnectionError("server wants to close the connection")
    if length is None:
        raise ConnectionError("no Content-Length in response")
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    if len(body) != length:
        raise ConnectionError("more bytes than Content-Length (pipelining?)")

start = time.monotonic()
socks = []
for i in range(n):
    if time.monotonic() - start > DEADLINE:
        sys.exit("gave up after %.0f s with %d of %d connections" % (DEADLINE, i, n))
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(REQ)
        read_response(s)
    except Exception as e:
        sys.exit("connection %d: %s" % (i, e))
    socks.append(s)
print("READY %d %.2f" % (len(socks), time.monotonic() - start), flush=True)
end = time.monotonic() + HOLD_MAX
while time.monotonic() < end:
    time.sleep(1)
EOF

# ------------------------------------------------------------------ measuring

rss_kib() {   # sum of VmRSS (KiB) over the given pids
    local sum=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || v=0
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
sock_fds() {  # open socket descriptors over the given pids
    local sum=0 pid n
    for pid in "$@"; do
        n=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l)
        sum=$((sum + n))
    done
    echo "$sum"
}

wait_200() {  # bounded: 10 s
    local url=$1 name=$2 pid=$3
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (rerun with KEEP_TMP=1 for logs in $TMP)"
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]]; then return 0; fi
        sleep 0.1
    done
    die "$name did not answer 200 at $url within 10 s"
}

RESULTS=$TMP/results.txt
: >"$RESULTS"

# measure NAME PORT SERVER_PID: open the connections, append a result line
measure() {
    local name=$1 port=$2 pid=$3 pids before after closed fd0 fd1 client ready=""
    wait_200 "http://127.0.0.1:$port/" "$name" "$pid"
    sleep 1
    # after it answers, so that nginx's worker exists
    mapfile -t pids < <(echo "$pid"; pgrep -P "$pid" || true)
    before=$(rss_kib "${pids[@]}")
    fd0=$(sock_fds "${pids[@]}")
    log "$name: RSS before ${before} KiB; opening $CONNS connections"

    taskset -c 1 python3 "$TMP/client.py" "$port" "$CONNS" >"$TMP/client-$name.out" 2>"$TMP/client-$name.err" &
    client=$!; PIDS+=("$client")
    for _ in $(seq 3000); do   # bounded: 300 s
        if grep -q '^READY' "$TMP/client-$name.out" 2>/dev/null; then ready=1; break; fi
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $ready ]] || die "$name: client helper failed: $(cat "$TMP/client-$name.err")"
    log "$name: $(cat "$TMP/client-$name.out")"
    sleep "$SETTLE"
    kill -0 "$pid" 2>/dev/null || die "$name died with connections open"
    after=$(rss_kib "${pids[@]}")
    fd1=$(sock_fds "${pids[@]}")
    log "$name: RSS after ${after} KiB, $((fd1 - fd0)) more sockets"
    stop_pid "$client"
    sleep "$CLOSE_SETTLE"
    kill -0 "$pid" 2>/dev/null || die "$name died after the connections closed"
    closed=$(rss_kib "${pids[@]}")
    log "$name: RSS ${closed} KiB ${CLOSE_SETTLE}s after the client closed them all"
    echo "$name $before $after $((fd1 - fd0)) $closed" >>"$RESULTS"
}

# ------------------------------------------------------------------ ringway

ringway_config() {  # PORT
    cat <<EOF
workers = 1
driver = "$RINGWAY_DRIVER"

[limits]
keepalive-timeout = "300s"
header-read-timeout = "300s"

# No admin API: it would take the fixed default port 127.0.0.1:9901.
[admin]
enabled = false

[[listeners]]
address = "127.0.0.1:$1"

[[routes]]
name = "hello"
path-prefix = "/"
[routes.respond]
body = "hello world\n"
EOF
}
ringway_config "$RW_PORT" >"$TMP/ringway.toml"
"$RINGWAY" validate "$TMP/ringway.toml" >/dev/null || die "ringway config invalid"
if [[ -n $BASELINE ]]; then
    # The same config; only the listener port differs.
    ringway_config "$RB_PORT" >"$TMP/ringway-before.toml"
    "$BASELINE" validate "$TMP/ringway-before.toml" >/dev/null \
        || die "ringway-before config invalid (checked by $BASELINE validate)"
fi

taskset -c 0 "$RINGWAY" -c "$TMP/ringway.toml" >"$TMP/ringway.log" 2>&1 &
RW_PID=$!; PIDS+=("$RW_PID")
measure ringway "$RW_PORT" "$RW_PID"
stop_pid "$RW_PID"

# ------------------------------------------------------------------ ringway-before

if [[ -n $BASELINE ]]; then
    log "ringway-before: $BASELINE"
    taskset -c 0 "$BASELINE" -c "$TMP/ringway-before.toml" >"$TMP/ringway-before.log" 2>&1 &
    RB_PID=$!; PIDS+=("$RB_PID")
    measure ringway-before "$RB_PORT" "$RB_PID"
    stop_pid "$RB_PID"
fi

# ------------------------------------------------------------------ nginx

mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $((CONNS + 2048));
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections $((CONNS + 1024)); }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NG_PORT;
        location / { return 200 "hello world\n"; }
    }
}
EOF
"$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" || die "nginx config invalid"

taskset -c 0 "$NGINX" -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")
measure nginx "$NG_PORT" "$NG_PID"
stop_pid "$NG_PID"

# ------------------------------------------------------------------ report

echo
echo "RSS growth per idle keep-alive client connection, $CONNS connections, server on CPU 0"
echo "(ringway: its one process; nginx: master + worker; RSS = VmRSS; RSS closed: ${CLOSE_SETTLE}s after the connections closed)"
[[ -z $BASELINE ]] || echo "ringway: $RINGWAY; ringway-before: $BASELINE"
python3 - "$RESULTS" "$CONNS" "$TARGET_BYTES" "$RETURN_PCT" "$CLOSE_SETTLE" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
n, target, ret_pct, close_settle = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
w = max(8, *(len(r[0]) for r in rows))
hdr = f"{'server':<{w}} {'RSS before':>12} {'RSS after':>12} {'held':>7} {'bytes/idle conn':>16} {'RSS closed':>12}"
print()
print(hdr)
print("-" * len(hdr))
for name, before, after, held, closed in rows:
    before, after = int(before), int(after)
    per = (after - before) * 1024 / n
    note = ""
    if name == "ringway":
        note = "  (target <= %d: %s)" % (target, "met" if per <= target else "NOT met")
    print(f"{name:<{w}} {before:>8} KiB {after:>8} KiB {held:>7} {per:>16.0f} {int(closed):>8} KiB{note}")
print()
print(f"RSS back within {ret_pct}% of its start (RSS before) {close_settle} s after the connections close:")
for name, before, after, held, closed in rows:
    before, closed = int(before), int(closed)
    verdict = "met" if closed * 100 <= before * (100 + ret_pct) else "NOT met"
    pct = (closed - before) * 100 / before if before else float("nan")
    extra = "" if name == "ringway" else "  (informational)"
    print(f"  {name:<{w}} {verdict:<7} (closed {closed} KiB vs before {before} KiB, {pct:+.1f}%){extra}")
EOF
for name in ringway ringway-before nginx; do
    held=$(awk -v n="$name" '$1 == n {print $4}' "$RESULTS")
    if [[ -n $held && $held != "$CONNS" ]]; then
        echo "WARNING: $name held $held sockets more than before, expected $CONNS"
    fi
done
for name in ringway ringway-before; do
    [[ -f $TMP/$name.log ]] || continue
    if grep -qiE 'error|warn|panic' "$TMP/$name.log"; then
        echo
        echo "$name log had errors or warnings:"
        grep -iE 'error|warn|panic' "$TMP/$name.log" | tail -20 | sed 's/^/    /'
    fi
done
if [[ -s $TMP/nginx-error.log ]] && grep -qv '\[notice\]' "$TMP/nginx-error.log"; then
    echo
    echo "nginx error log:"
    grep -v '\[notice\]' "$TMP/nginx-error.log" | tail -20 | sed 's/^/    /'
fi
