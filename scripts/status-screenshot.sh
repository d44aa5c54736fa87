#!/usr/bin/env bash
# Takes docs/status-page.png: the admin API's status page (GET /) after
# some traffic, as README.md shows it.
#
#   scripts/status-screenshot.sh                 # release build, writes docs/status-page.png
#   scripts/status-screenshot.sh /tmp/page.png  # elsewhere
#   RINGWAY=target/debug/ringway scripts/status-screenshot.sh   # a binary of your choice
#
# Starts two ringway processes on loopback: an origin answering from its
# built-in responder, and the gateway in front of it (routes to the origin,
# one through the cache, one behind an API key, one to a port nothing
# listens on, and an HTTPS listener with a self-signed certificate made
# here). Reloads the gateway once, sends traffic with curl while headless
# Chromium (driven by scripts/page-screenshot.py) loads the page and waits
# until it shows rates, then stops everything and removes its temporary
# files. Needs curl, openssl, python3 and chromium (scripts/test.sh installs
# them). Uses ports PORT_BASE to PORT_BASE+4 (18080 by default) on
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=${1:-docs/status-page.png}
base=${PORT_BASE:-18080}
gw=$base tls=$((base + 1)) origin=$((base + 2)) dead=$((base + 3)) admin=$((base + 4))

die() { printf 'status-screenshot: %s\n' "$*" >&2; exit 1; }
for tool in curl openssl python3 chromium; do
    type -P "$tool" >/dev/null || die "needs $tool (scripts/test.sh installs it)"
done
for port in "$gw" "$tls" "$origin" "$dead" "$admin"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "127.0.0.1:$port is in use; set PORT_BASE to move the demo's ports"
    fi
done

if [ -z "${RINGWAY:-}" ]; then
    cargo build --release -p ringway
    RINGWAY=${CARGO_TARGET_DIR:-target}/release/ringway
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj "/CN=shop.example" -addext "subjectAltName=DNS:shop.example,DNS:localhost" \
    -keyout "$work/shop.key" -out "$work/shop.pem" 2>/dev/null

cat >"$work/origin.toml" <<TOML
workers = 1
[admin]
enabled = false
[[listeners]]
address = "127.0.0.1:$origin"
[[routes]]
name = "catalog"
path-prefix = "/catalog/"
respond = { status = 200, headers = { cache-control = "max-age=300" }, body = "{\"items\": []}" }
[[routes]]
name = "everything"
respond = { status = 200, body = "{\"ok\": true}" }
TOML

cat >"$work/gateway.toml" <<TOML
workers = 2

[admin]
address = "127.0.0.1:$admin"

[[listeners]]
address = "127.0.0.1:$gw"

[[listeners]]
address = "127.0.0.1:$tls"
[listeners.tls]
certificates = [{ cert = "$work/shop.pem", key = "$work/shop.key" }]

[[consumers]]
name = "mobile-app"
api-keys = ["plain:demo-key-0123456789"]

[[authenticators]]
name = "keys"
type = "api-key"
header = "x-api-key"

[[upstreams]]
name = "app"
servers = ["127.0.0.1:$origin"]

[[upstreams]]
name = "billing"
servers = ["127.0.0.1:$dead"]

[[routes]]
name = "catalog"
path-prefix = "/catalog/"
upstream = "app"
[routes.cache]

[[routes]]
name = "orders"
path-prefix = "/orders/"
upstream = "app"
auth = ["keys"]

[[routes]]
name = "billing"
path-prefix = "/billing/"
upstream = "billing"

[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "app"

[[routes]]
name = "health"
path = "/health"
respond = { status = 200, body = "ok" }
TOML

"$RINGWAY" -c "$work/origin.toml" 2>"$work/origin.log" & pids+=($!)
RINGWAY_LOG=warn "$RINGWAY" -c "$work/gateway.toml" 2>"$work/gateway.log" & pids+=($!)
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz" \
        && curl -sf -o /dev/null "http://127.0.0.1:$origin/" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz" || die "the gateway did not start: $(cat "$work/gateway.log")"
# One reload, so the page shows generation 2.
curl -sf -o /dev/null -X POST "http://127.0.0.1:$admin/config/reload"

# Steady traffic, each curl reusing its connection across the URL range.
traffic() {
    local g="http://127.0.0.1:$gw"
    while :; do
        curl -s -o /dev/null "$g/api/users/[1-60]" "$g/health"
        curl -s -o /dev/null "$g/catalog/item-[1-12]"
        curl -s -o /dev/null -H "x-api-key: demo-key-0123456789" "$g/orders/[1-15]"
        curl -s -o /dev/null "$g/orders/anonymous-[1-2]"
        curl -s -o /dev/null "$g/billing/invoice-1"
        curl -s -o /dev/null "$g/nowhere"
        curl -sk -o /dev/null --resolve "shop.example:$tls:127.0.0.1" "https://shop.example:$tls/api/cart-[1-5]"
        sleep 0.1
    done >/dev/null
}
traffic & pids+=($!)
sleep 2
mkdir -p "$(dirname "$out")"
scripts/page-screenshot.py "http://127.0.0.1:$admin/" "$out" 1280x900
printf 'wrote %s\n' "$out"
