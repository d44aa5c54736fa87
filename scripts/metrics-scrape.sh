#!/usr/bin/env bash
# How long a Prometheus scrape of a large config takes: a config of $ROUTES
# routes (half answered by the built-in responder, half proxied to an
# origin behind $SERVERS upstream servers), some traffic on every route,
# then $SCRAPES scrapes of GET /metrics with curl, one after another.
#
# Reports the exposition's size and series count, the median, p90 and max
# of curl's time_total per scrape, and PASS/FAIL for the target: the median
# under 50 ms. With promtool on PATH the exposition is also checked with
# `promtool check metrics`. The scrape runs on the admin thread only; the
# workers are not involved (they keep counting while it reads).
#
# Environment:
#   ROUTES   routes in the config          (default 1000)
#   SERVERS  upstream servers              (default 20)
#   SCRAPES  scrapes timed                 (default 30)
#   RINGWAY  the ringway binary            (default target/release/ringway,
#                                           built if missing)
#   KEEP_TMP=1  keep the temp dir
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

ROUTES=${ROUTES:-1000}
SERVERS=${SERVERS:-20}
SCRAPES=${SCRAPES:-30}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY=${RINGWAY:-$REPO/target/release/ringway}

log() { printf '[scrape] %s\n' "$*" >&2; }
die() { printf '[scrape] error: %s\n' "$*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is needed"
command -v python3 >/dev/null || die "python3 is needed"
if [[ ! -x $RINGWAY ]]; then
    log "building ringway (release)"
    (cd "$REPO" && cargo build --release -p ringway)
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n ${KEEP_TMP:-} ]] && log "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# An origin: python's http.server answers every GET with 200.
ORIGIN=$(free_port)
python3 - "$ORIGIN" >"$TMP/origin.log" 2>&1 <<'PY' &
import sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
PIDS+=($!)

PORT=$(free_port)
ADMIN=$(free_port)
{
    echo "workers = 2"
    echo "[[listeners]]"
    echo "address = \"127.0.0.1:$PORT\""
    echo "[admin]"
    echo "address = \"127.0.0.1:$ADMIN\""
    echo "[[upstreams]]"
    echo "name = \"origin\""
    printf 'servers = ['
    # Servers must differ by address: the first is the origin, the rest
    # are the ports after it, which refuse (their failures are counted).
    for ((i = 0; i < SERVERS; i++)); do
        if ((i == 0)); then printf '"127.0.0.1:%s"' "$ORIGIN"; else printf ', "127.0.0.1:%s"' "$((ORIGIN + i))"; fi
    done
    echo "]"
    for ((i = 0; i < ROUTES; i++)); do
        echo "[[routes]]"
        echo "name = \"route-$i\""
        echo "path = \"/r/$i\""
        if ((i % 2 == 0)); then
            echo "respond = { status = 200, body = \"r$i\" }"
        else
            echo "upstream = \"origin\""
        fi
    done
} >"$TMP/config.toml"

"$RINGWAY" validate "$TMP/config.toml" >/dev/null || die "config refused"
"$RINGWAY" -c "$TMP/config.toml" >"$TMP/ringway.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null || die "gateway did not start (see $TMP/ringway.log)"

log "traffic: one request per route"
urls=()
for ((i = 0; i < ROUTES; i++)); do urls+=("http://127.0.0.1:$PORT/r/$i"); done
printf '%s\n' "${urls[@]}" | xargs -n 50 curl -s -o /dev/null >/dev/null 2>&1 || true

curl -s "http://127.0.0.1:$ADMIN/metrics" >"$TMP/metrics.txt"
bytes=$(wc -c <"$TMP/metrics.txt")
series=$(grep -vc '^#' "$TMP/metrics.txt")
log "exposition: $bytes bytes, $series series"
if command -v promtool >/dev/null; then
    promtool check metrics <"$TMP/metrics.txt" && log "promtool check metrics: OK"
fi

log "timing $SCRAPES scrapes"
for ((i = 0; i < SCRAPES; i++)); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$ADMIN/metrics"
done >"$TMP/times.txt"
python3 - "$TMP/times.txt" "$ROUTES" "$SERVERS" "$bytes" "$series" <<'PY'
import sys, statistics
t = sorted(float(x) * 1000 for x in open(sys.argv[1]))
med = statistics.median(t)
p90 = t[int(len(t) * 0.9) - 1]
print(f"routes={sys.argv[2]} servers={sys.argv[3]} bytes={sys.argv[4]} series={sys.argv[5]}")
print(f"scrape ms: median {med:.2f}  p90 {p90:.2f}  max {t[-1]:.2f}  (n={len(t)})")
print(f"target median < 50 ms: {'PASS' if med < 50 else 'FAIL'}")
sys.exit(0 if med < 50 else 1)
PY
