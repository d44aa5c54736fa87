# Shared setup for the bench scripts: source it after defining `log`.
#
#   bench_tmp NAME    makes TMP (/tmp/ringway-bench-NAME.XXXXXX) and PIDS, and
#                     traps EXIT to stop every PID (TERM, then KILL after
#                     ~5 s each) and remove TMP (kept with KEEP_TMP=1)
#   free_ports N      prints N free 127.0.0.1 ports, asked of the OS
#   nginx_common NAME [CONNS]
#                     prints the start of an nginx config for one worker
#                     process under $TMP/NAME (pid, error log, temp paths),
#                     up to inside its `http {` block, access log off and
#                     keep-alive connections kept for the whole run; the
#                     caller adds its servers and the closing brace

bench_tmp() {
    TMP=$(mktemp -d "/tmp/ringway-bench-$1.XXXXXX")
    chmod 755 "$TMP"
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded wait: at most ~5 s per process, then SIGKILL.
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

free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
}

nginx_common() {
    local name=$1 conns=${2:-4096}
    mkdir -p "$TMP/$name"
    cat <<EOF
worker_processes 1;
pid $TMP/$name.pid;
error_log $TMP/$name-error.log warn;
events { worker_connections $conns; }
http {
    access_log off;
    client_body_temp_path $TMP/$name/body;
    proxy_temp_path $TMP/$name/proxy;
    fastcgi_temp_path $TMP/$name/fastcgi;
    uwsgi_temp_path $TMP/$name/uwsgi;
    scgi_temp_path $TMP/$name/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
EOF
}
