#!/usr/bin/env bash
# Live reconfiguration under load: what reloading ringway's config through the
# admin API costs the traffic it is serving, and how long a new config takes
# to reach every worker.
#
#   origin   nginx, worker_processes 1, `return 200 "hello $host\n"` (the
#            body names the Host header ringway sent upstream)   taskset -c 1
#   gateway  ringway, workers = 2: the workers pin themselves to CPUs 0 and 1;
#            one route proxies everything to the origin, one (/tag) answers
#            itself; ringway's main and admin threads are not pinned
#   load     ringway-load --rate $RATE -c $CONNECTIONS -t 1 --cpus 1 (open
#            loop, fixed schedule), GET / through ringway        taskset -c 1
#   reloads  one python3 process (http.client), not pinned
#
# Caveat: everything shares two CPUs. Worker 1 shares CPU 1 with nginx and
# the load generator, and the admin thread that parses and compiles each new
# config runs on whichever CPU is free, usually taking time from a worker.
# That is part of what is measured (a reload's cost to the data plane), but a
# machine with a spare core would show less of it. The generator's own timer
# lateness (about 1 ms, see loadtest/README.md) is in the corrected latency of
# both kinds of run alike.
#
# Two configs, A and B, differ in the /tag responder's body ("A" or "B") and
# in the proxy route's host-header ("a.example" or "b.example"). Each
# reload is a `PUT /config` of the other one's TOML, so consecutive reloads
# always change something a request can see.
#
# Part 1, reload under load. After a WARMUP run (no reloads; shown, and its
# errors count, but it is not in the medians), ROUNDS rounds each of:
#   steady  ringway-load for DURATION, no reloads;
#   reload  the same, while the python3 driver PUTs A, B, A, ... RELOAD_HZ
#           times a second on a fixed absolute schedule (reload k is due at
#           start + k/RELOAD_HZ; a late one is sent at once, none is
#           skipped). The driver starts 0.5 s after the generator and
#           stops 0.5 s before its end, so all (DURATION - 1 s) x RELOAD_HZ
#           reloads land inside the load (290 with the defaults).
# Per run: achieved rate, p99 latency corrected (from each request's
# intended send time) and service (from the actual send), errors and
# non-2xx responses, client connections opened (= CONNECTIONS when no
# connection was dropped), origin connections opened (nginx stub_status
# "accepts" before and after: the upstream connections ringway opened), and
# for reload runs: reloads done, refused (400) and failed (any other answer,
# no answer, or not acknowledged by every worker), reloads sent more than
# one interval late, p99 of the propagation_us the PUT answers carry, and
# p99 of the PUT's round trip. Then the medians per kind, the ratio
# reload/steady of both p99s (target: corrected p99 ratio <= 1.10) and the
# total of failed requests (must be 0). The spread of the steady runs' p99
# is printed as the machine's noise floor for that ratio.
#
# After every run the script checks that GET /readyz answers 200, that
# /readyz and /status report the last accepted config's generation for the
# gateway and for every worker, and that 16 new connections each get the
# last config's /tag body and origin Host (new connections spread over both
# workers through SO_REUSEPORT).
#
# Part 2, propagation. A fresh ringway (so that GET /status's window of the
# last 1024 reloads holds only this part's), the same load, and
# PROPAGATION_RELOADS reloads issued back to back (each waits for the
# previous answer), starting 2 s after the load; the load (its -d is only a
# bound) is stopped with SIGINT 1 s after the last reload, so its figures
# cover those 3 s around the reloads as well. Reported: p50,
# p99 and max of propagation_us from the PUT answers (the time from
# publishing the new config until the last worker runs it; target p99 <
# 5 ms) next to reloads.propagation from GET /status, which must match
# exactly (both take nearest-rank percentiles over the last
# min(PROPAGATION_RELOADS, 1024) reloads), and the load's figures meanwhile.
#
# ringway's admin API answers with `Connection: close`, so each PUT is a new
# loopback connection; http.client reconnects by itself.
#
# Exit status: 1 when any request failed or got a non-2xx answer, a reload
# was refused or failed, or a check after a run failed; missed latency
# targets are printed as "NOT met" without changing the exit status (on a
# shared 2-vCPU machine a single run can miss them by chance).
#
# Environment:
#   RATE                 requests/s, open loop               (default 10000)
#   CONNECTIONS          generator connections               (default 64)
#   DURATION             each part 1 run, like 30s or 2m     (default 30s)
#   ROUNDS               part 1 rounds (steady + reload)     (default 3)
#   RELOAD_HZ            reloads per second in reload runs   (default 10)
#   PROPAGATION_RELOADS  back-to-back reloads in part 2      (default 1000)
#   WARMUP               warm-up run duration                (default 3s)
#   KEEP_TMP=1           keep the temp dir (configs, logs, JSON reports,
#                        every PUT answer in *.reloads.jsonl)
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

RATE=${RATE:-10000}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-30s}
ROUNDS=${ROUNDS:-3}
RELOAD_HZ=${RELOAD_HZ:-10}
PROPAGATION_RELOADS=${PROPAGATION_RELOADS:-1000}
WARMUP=${WARMUP:-3s}
TARGET_RATIO=1.10        # p99 corrected, reload runs over steady runs (medians)
TARGET_PROP_P99_US=5000  # propagation p99 must be below this
PROP_DEADLINE_S=300      # part 2's reloads give up after this long
PROP_LOAD_BOUND=600s     # part 2's load -d; it is stopped long before

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RINGWAY=$REPO/target/release/ringway
LOADGEN=$REPO/target/release/ringway-load

log() { printf '[reload] %s\n' "$*" >&2; }
die() { printf '[reload] error: %s\n' "$*" >&2; exit 1; }

[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 && $RATE -le 10000000 ]] || die "RATE must be 1..10000000"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $RELOAD_HZ =~ ^[0-9]+$ && $RELOAD_HZ -ge 1 && $RELOAD_HZ -le 1000 ]] || die "RELOAD_HZ must be 1..1000"
[[ $PROPAGATION_RELOADS =~ ^[0-9]+$ && $PROPAGATION_RELOADS -ge 1 && $PROPAGATION_RELOADS -le 100000 ]] \
    || die "PROPAGATION_RELOADS must be 1..100000"
secs() {   # "30s" or "2m" -> seconds
    [[ $1 =~ ^([0-9]+)(s|m)$ ]] || die "durations must look like 30s or 2m (got '$1')"
    if [[ ${BASH_REMATCH[2]} == m ]]; then echo $((BASH_REMATCH[1] * 60)); else echo "${BASH_REMATCH[1]}"; fi
}
DURATION_S=$(secs "$DURATION")
WARMUP_S=$(secs "$WARMUP")
((DURATION_S >= 2 && DURATION_S <= 3600)) || die "DURATION must be 2s..60m"
((WARMUP_S >= 1 && WARMUP_S <= 600)) || die "WARMUP must be 1s..10m"
PACED_RELOADS=$(((DURATION_S - 1) * RELOAD_HZ))

# ------------------------------------------------------------------ setup

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if ((${#need_apt[@]})); then
    log "installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -V 2>&1 | grep -q -- --with-http_stub_status_module || die "nginx lacks the stub_status module"

if [[ ! -x $RINGWAY || ! -x $LOADGEN ]]; then
    log "building ringway and ringway-load (release)"
    (cd "$REPO" && cargo build --release -p ringway -p ringway-loadtest)
fi
[[ -x $RINGWAY ]] || die "no ringway binary at $RINGWAY"
[[ -x $LOADGEN ]] || die "no ringway-load binary at $LOADGEN"

NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"

TMP=$(mktemp -d /tmp/ringway-reload.XXXXXX)
chmod 755 "$TMP"
PIDS=()   # long-lived: nginx, ringway
CUR=()    # the load generator and the reload driver while a run is on

stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    # bounded wait: at most ~15 s, then SIGKILL
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    local pid
    for pid in "${CUR[@]}" "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CUR[@]}" "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Five free loopback ports, held open together so they are distinct: the
# origin, and a listener and an admin port for each of the two gateways.
read -r ORIGIN_PORT LISTEN1 ADMIN1 LISTEN2 ADMIN2 < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ------------------------------------------------------------------ helper

# Reload driver, checks, and the report (python3, standard library only).
cat >"$TMP/reload.py" <<'EOF'
import http.client, json, math, socket, statistics, sys, time

WINDOW = 1024  # reloads in GET /status's propagation figures

def pct(values, q):
    """Nearest rank, as ringway's /status computes it."""
    s = sorted(values)
    if not s:
        return None
    return s[min(max(math.ceil(len(s) * q), 1), len(s)) - 1]

def ms(seconds):
    return None if seconds is None else seconds * 1000

def hostport(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)

def get(addr, path, timeout=5):
    c = http.client.HTTPConnection(*hostport(addr), timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()

# ---------------------------------------------------------------- driver

def drive(argv):
    """drive ADMIN HZ COUNT DEADLINE_S ROWS TAG=FILE...: PUT the configs in
    turn, COUNT times, HZ per second on a fixed schedule (HZ 0: back to
    back); one JSON summary on stdout, one line per PUT in ROWS."""
    admin, hz, count, deadline_s, rows_path, *cfgs = argv
    hz, count = float(hz), int(count)
    bodies = []
    for c in cfgs:
        tag, path = c.split("=", 1)
        bodies.append((tag, open(path, "rb").read()))
    interval = 1.0 / hz if hz > 0 else 0.0
    conn = http.client.HTTPConnection(*hostport(admin), timeout=10)
    ok = refused = failed = late = gaps = 0
    props, rtts, lates, problems = [], [], [], []
    last_gen = last_tag = None
    rows = open(rows_path, "w")
    t0 = time.monotonic()
    end = t0 + float(deadline_s)
    attempted = 0
    last_sent = t0
    for k in range(count):
        due = t0 + k * interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        sent = time.monotonic()
        if sent > end:
            problems.append("deadline of %s s reached after %d reloads" % (deadline_s, k))
            break
        attempted += 1
        last_sent = sent
        tag, body = bodies[k % len(bodies)]
        lag = sent - due if interval else 0.0
        lates.append(lag)
        if interval and lag > interval:
            late += 1
        row = {"k": k, "tag": tag, "late_ms": round(lag * 1000, 3)}
        try:
            conn.request("PUT", "/config", body=body, headers={"Content-Type": "application/toml"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                conn.close()
            rtt = time.monotonic() - sent
            rtts.append(rtt)
            row.update(status=resp.status, rtt_ms=round(rtt * 1000, 3))
            ans = json.loads(data)
            row["answer"] = ans
        except (OSError, http.client.HTTPException, ValueError) as e:
            conn.close()
            failed += 1
            row["exception"] = repr(e)
            problems.append("reload %d (%s): %r" % (k, tag, e))
            rows.write(json.dumps(row) + "\n")
            continue
        rows.write(json.dumps(row) + "\n")
        if resp.status == 200 and ans.get("propagated") is True and not ans.get("restart_required"):
            ok += 1
            gen = ans.get("generation")
            if last_gen is not None and gen != last_gen + 1:
                gaps += 1
                problems.append("reload %d: generation %s after %s" % (k, gen, last_gen))
            last_gen, last_tag = gen, tag
            props.append(ans["propagation_us"])
        elif resp.status == 400:
            refused += 1
            problems.append("reload %d (%s) refused: %s" % (k, tag, json.dumps(ans)))
        else:
            failed += 1
            problems.append("reload %d (%s): HTTP %d %s" % (k, tag, resp.status, json.dumps(ans)))
    elapsed = time.monotonic() - t0
    # paced: sends per second over the span of the sends; back to back:
    # reloads per second over the whole time
    if interval and attempted > 1:
        per_s = (attempted - 1) / (last_sent - t0)
    else:
        per_s = attempted / elapsed if elapsed else None
    win = props[-WINDOW:]
    print(json.dumps({
        "requested": count, "attempted": attempted, "ok": ok, "refused": refused,
        "failed": failed, "generation_gaps": gaps, "late": late,
        "late_max_ms": max(lates) * 1000 if lates else None,
        "elapsed_s": elapsed, "per_s": per_s,
        "last_generation": last_gen, "last_tag": last_tag,
        "prop_p50_us": pct(props, 0.50), "prop_p99_us": pct(props, 0.99), "prop_max_us": pct(props, 1.0),
        "window": {"samples": len(win), "p50_us": pct(win, 0.50), "p99_us": pct(win, 0.99),
                   "max_us": pct(win, 1.0)},
        "rtt_p50_ms": ms(pct(rtts, 0.50)), "rtt_p99_ms": ms(pct(rtts, 0.99)), "rtt_max_ms": ms(pct(rtts, 1.0)),
        "problems": problems[:10],
    }))

# ---------------------------------------------------------------- checks

def state(argv):
    """state ADMIN LISTEN: "GENERATION TAG" of the running config."""
    admin, listen = argv
    status, body = get(admin, "/readyz")
    gen = json.loads(body)["generation"]
    status, tag = get(listen, "/tag")
    print(gen, tag.decode())

def check(argv):
    """check ADMIN LISTEN GENERATION TAG: after a run, is every worker on the
    expected generation, ready, and serving that config?"""
    admin, listen, gen, tag = argv
    gen = int(gen)
    problems = []
    status, body = get(admin, "/readyz")
    r = json.loads(body)
    if status != 200:
        # How long until it is? Bounded: 2 s.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:
            time.sleep(0.01)
            s2, _ = get(admin, "/readyz")
            if s2 == 200:
                problems.append("/readyz answered %d (%s); 200 after %.0f ms"
                                % (status, json.dumps(r), (time.monotonic() - t0) * 1000))
                break
        else:
            problems.append("/readyz answered %d for 2 s: %s" % (status, json.dumps(r)))
    if r.get("generation") != gen:
        problems.append("/readyz generation %s, expected %d" % (r.get("generation"), gen))
    wg = r.get("worker_generations") or []
    if not wg or any(g != gen for g in wg):
        problems.append("/readyz worker_generations %s, expected all %d" % (wg, gen))
    status, body = get(admin, "/status")
    s = json.loads(body)
    sg = [w.get("generation") for w in s.get("workers", [])]
    if status != 200 or s.get("generation") != gen or not sg or any(g != gen for g in sg):
        problems.append("/status generation %s, workers %s, expected all %d" % (s.get("generation"), sg, gen))
    want = {"/tag": tag.encode(), "/": ("hello %s.example\n" % tag.lower()).encode()}
    for i in range(16):
        for path, body in want.items():
            try:
                st, got = get(listen, path)
            except OSError as e:
                problems.append("GET %s: %r" % (path, e))
                continue
            if st != 200 or got != body:
                problems.append("GET %s on a new connection: %d %r, expected 200 %r" % (path, st, got, body))
    print(json.dumps({"ok": not problems, "problems": problems[:10],
                      "workers": [[w.get("id"), w.get("cpu"), w.get("generation")] for w in s.get("workers", [])]}))

def accepts(argv):
    """accepts PORT: nginx's accepted-connection count from stub_status."""
    port, = argv
    status, body = get("127.0.0.1:" + port, "/nginx-status")
    print(int(body.split(b"\n")[2].split()[0]))

# ---------------------------------------------------------------- records

def record(argv):
    """record KIND ROUND LOAD.json DRIVER.json|- CHECK.json ACCEPTS0 ACCEPTS1"""
    kind, rnd, load, driver, chk, a0, a1 = argv
    d = json.load(open(load))
    non2xx = sum(n for code, n in d.get("statuses", {}).items() if not str(code).startswith("2"))
    errors = sum(d.get("errors", {}).values())
    warns = [w for w in d.get("warnings") or [] if not (kind == "b2b" and w.startswith("stopped early"))]
    if d.get("unsent"):
        warns.append("%d scheduled but never sent" % d["unsent"])
    for k, n in d.get("errors", {}).items():
        if n:
            warns.append("%d %s errors" % (n, k))
    out = {
        "kind": kind, "round": int(rnd), "rate": d["achieved_rate"], "sent_rate": d.get("sent_rate"),
        "secs": d["duration"], "responses": d["responses"],
        "p99": d["latency"]["p99_us"] / 1000.0, "p99_svc": d["service_time"]["p99_us"] / 1000.0,
        "max": d["latency"]["max_us"] / 1000.0,
        "worst_second_p99": max((i["p99_us"] for i in d.get("intervals") or []), default=0) / 1000.0,
        "errors": errors, "non2xx": non2xx, "connects": d.get("connects"),
        # the second stub_status request is itself one accepted connection
        "origin_conns": int(a1) - int(a0) - 1,
        "warnings": warns, "driver": json.load(open(driver)) if driver != "-" else None,
        "check": json.load(open(chk)),
    }
    print(json.dumps(out))

def brief(argv):
    """brief RECORD: one progress line for stderr."""
    r = json.loads(argv[0])
    s = (f"[reload]   {r['rate']:.0f} req/s, p99 {r['p99']:.3f} ms (service {r['p99_svc']:.3f} ms), "
         f"errors {r['errors']}, non-2xx {r['non2xx']}, conns {r['connects']}, origin conns {r['origin_conns']}")
    dr = r["driver"]
    if dr:
        s += (f"; reloads {dr['ok']} ok, {dr['refused']} refused, {dr['failed']} failed"
              f" in {dr['elapsed_s']:.1f} s, propagation p99 {dr['prop_p99_us']} us")
    s += "; check " + ("ok" if r["check"]["ok"] else "FAILED: " + "; ".join(r["check"]["problems"]))
    print(s)

# ---------------------------------------------------------------- report

def f(v, spec):
    return format(v, spec) if v is not None and not (isinstance(v, float) and math.isnan(v)) else "-"

def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else math.nan

def ratio(a, b):
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan

def report(argv):
    path, status1, status2, rate, conns, dur, hz, target_ratio, target_prop = argv
    target_ratio, target_prop = float(target_ratio), int(target_prop)
    rows = [json.loads(l) for l in open(path) if l.strip()]
    p1 = [r for r in rows if r["kind"] in ("warmup", "steady", "reload")]
    p2 = [r for r in rows if r["kind"] == "b2b"]
    bad = []

    print()
    print(f"== 1. reload under load: {int(rate)} req/s open loop, {conns} connections, {dur} per run;")
    print(f"   reload runs PUT /config {hz}/s, alternating configs A and B")
    hdr = (f"{'round':>5}  {'run':<7} {'achieved':>9} {'p99 corr':>9} {'p99 svc':>8} {'err/non2xx':>10} "
           f"{'conns':>5} {'origin':>6}  {'reloads':>7} {'refused':>7} {'failed':>6} {'late':>4} "
           f"{'prop p99':>8} {'PUT p99':>8}  {'check':<5}")
    print(hdr)
    print("-" * len(hdr))
    for r in p1:
        dr = r["driver"]
        rl = (f"{dr['ok']:>7} {dr['refused']:>7} {dr['failed']:>6} {dr['late']:>4} "
              f"{f(dr['prop_p99_us'], 'd'):>8} {f(dr['rtt_p99_ms'], '.2f'):>8}") if dr else \
             f"{'-':>7} {'-':>7} {'-':>6} {'-':>4} {'-':>8} {'-':>8}"
        print(f"{r['round']:>5}  {r['kind']:<7} {r['rate']:>9.0f} {r['p99']:>9.3f} {r['p99_svc']:>8.3f} "
              f"{'%d/%d' % (r['errors'], r['non2xx']):>10} {r['connects']:>5} {r['origin_conns']:>6}  {rl}  "
              f"{'ok' if r['check']['ok'] else 'FAIL':<5}")
    print("   achieved: responses/s. p99 corr: from the intended send time; p99 svc: from the actual send (ms).")
    print("   conns: client connections the generator opened; origin: connections nginx accepted (from ringway).")
    print("   late: reloads sent over one interval behind schedule. prop p99: propagation_us of the PUT answers;")
    print("   PUT p99: the PUT's round trip in ms. check: /readyz 200, every worker on the last generation,")
    print("   16 new connections served by the last config.")

    steady = [r for r in p1 if r["kind"] == "steady"]
    reload = [r for r in p1 if r["kind"] == "reload"]
    print()
    hdr = f"{'median':<14} {'achieved':>9} {'p99 corr':>9} {'p99 svc':>8}"
    print(hdr)
    print("-" * len(hdr))
    m = {}
    for name, rs in (("steady", steady), ("reload", reload)):
        m[name] = [med(rs, k) for k in ("rate", "p99", "p99_svc")]
        print(f"{name:<14} {f(m[name][0], '.0f'):>9} {f(m[name][1], '.3f'):>9} {f(m[name][2], '.3f'):>8}")
    rr = [ratio(m["reload"][i], m["steady"][i]) for i in range(3)]
    print(f"{'reload/steady':<14} {f(rr[0], '.3f'):>9} {f(rr[1], '.3f'):>9} {f(rr[2], '.3f'):>8}")
    met = not math.isnan(rr[1]) and rr[1] <= target_ratio
    print(f"   target: p99 corr reload/steady <= {target_ratio:.2f}: {'met' if met else 'NOT met'} ({f(rr[1], '.3f')})")
    sp = [r["p99"] for r in steady]
    if len(sp) >= 2:
        print(f"   noise floor: steady runs' p99 corr from {min(sp):.3f} to {max(sp):.3f} ms"
              f" (max/min {max(sp) / min(sp):.3f}) across {len(sp)} rounds")
    per_round = [ratio(b["p99"], a["p99"]) for a, b in zip(steady, reload)]
    if per_round:
        print("   per-round p99 corr reload/steady: " + ", ".join(f(x, ".3f") for x in per_round))
    errs = sum(r["errors"] + r["non2xx"] for r in p1)
    print(f"   failed requests (errors + non-2xx) over all part 1 runs: {errs} (must be 0): {'ok' if errs == 0 else 'FAILED'}")
    if errs:
        bad.append("%d requests failed in part 1" % errs)
    drs = [r["driver"] for r in reload]
    if drs:
        done, refused, failed = (sum(d[k] for d in drs) for k in ("ok", "refused", "failed"))
        late = sum(d["late"] for d in drs)
        rates = [d["per_s"] for d in drs if d["per_s"]]
        print(f"   reloads: {done} done, {refused} refused, {failed} failed, {late} sent late;"
              f" {f(statistics.median(rates) if rates else None, '.2f')}/s achieved (median)")
        if refused or failed:
            bad.append("%d reloads refused, %d failed in part 1" % (refused, failed))
    s1 = json.load(open(status1))
    t = s1["totals"]
    print(f"   ringway /status after part 1: {t['requests']} requests, 5xx {t['responses_5xx']}"
          f" (upstream 502/503/504 {t['upstream_502']}/{t['upstream_503']}/{t['upstream_504']}),"
          f" panics {t['panics']}; reloads succeeded {s1['reloads']['succeeded']}, failed {s1['reloads']['failed']}")
    if t["responses_5xx"] or t["panics"] or s1["reloads"]["failed"]:
        bad.append("ringway /status after part 1 shows 5xx, panics or failed reloads")

    print()
    for r in p2:
        dr = r["driver"]
        print(f"== 2. propagation: {dr['requested']} reloads back to back under {int(rate)} req/s"
              f" (fresh ringway, A and B alternating)")
        print(f"   reloads {dr['ok']} done, {dr['refused']} refused, {dr['failed']} failed, in {dr['elapsed_s']:.2f} s"
              f" ({dr['per_s']:.0f}/s); PUT round trip p50 {f(dr['rtt_p50_ms'], '.2f')} ms,"
              f" p99 {f(dr['rtt_p99_ms'], '.2f')} ms, max {f(dr['rtt_max_ms'], '.2f')} ms")
        s2 = json.load(open(status2))
        sp = s2["reloads"]["propagation"] or {}
        w = dr["window"]
        hdr = f"{'propagation_us':<34} {'p50':>7} {'p99':>7} {'max':>7} {'samples':>8}"
        print(hdr)
        print("-" * len(hdr))
        print(f"{'PUT answers, all':<34} {f(dr['prop_p50_us'], 'd'):>7} {f(dr['prop_p99_us'], 'd'):>7}"
              f" {f(dr['prop_max_us'], 'd'):>7} {dr['ok']:>8}")
        print(f"{'PUT answers, last %d' % w['samples']:<34} {f(w['p50_us'], 'd'):>7} {f(w['p99_us'], 'd'):>7}"
              f" {f(w['max_us'], 'd'):>7} {w['samples']:>8}")
        print(f"{'GET /status reloads.propagation':<34} {f(sp.get('p50_us'), 'd'):>7} {f(sp.get('p99_us'), 'd'):>7}"
              f" {f(sp.get('max_us'), 'd'):>7} {f(sp.get('samples'), 'd'):>8}")
        same = (sp.get("samples"), sp.get("p50_us"), sp.get("p99_us"), sp.get("max_us")) == \
               (w["samples"], w["p50_us"], w["p99_us"], w["max_us"])
        counts = (s2["reloads"]["succeeded"], s2["reloads"]["failed"]) == (dr["ok"], 0)
        print(f"   cross-check with /status: {'match' if same else 'MISMATCH'};"
              f" /status reloads succeeded {s2['reloads']['succeeded']}, failed {s2['reloads']['failed']}"
              f" ({'as sent' if counts else 'NOT as sent'})")
        p99 = dr["prop_p99_us"]
        print(f"   target: propagation p99 < {target_prop} us: {'met' if p99 is not None and p99 < target_prop else 'NOT met'}"
              f" ({f(p99, 'd')} us)")
        print(f"   load: {r['secs']:.1f} s from 2 s before the first reload to 1 s after the last;"
              f" {r['rate']:.0f} req/s, p99 corr {r['p99']:.3f} ms,")
        print(f"   p99 svc {r['p99_svc']:.3f} ms, worst 1-s p99 corr {r['worst_second_p99']:.3f} ms, max {r['max']:.3f} ms,"
              f" errors/non-2xx {r['errors']}/{r['non2xx']}, conns {r['connects']}, origin conns {r['origin_conns']};"
              f" check {'ok' if r['check']['ok'] else 'FAIL'}")
        t = s2["totals"]
        print(f"   ringway /status after part 2: 5xx {t['responses_5xx']}, panics {t['panics']}")
        if r["errors"] or r["non2xx"]:
            bad.append("%d requests failed in part 2" % (r["errors"] + r["non2xx"]))
        if dr["refused"] or dr["failed"] or dr["ok"] != dr["requested"]:
            bad.append("part 2: %d of %d reloads done" % (dr["ok"], dr["requested"]))
        if not same or not counts:
            bad.append("part 2: /status figures differ from the PUT answers")
        if t["responses_5xx"] or t["panics"]:
            bad.append("ringway /status after part 2 shows 5xx or panics")

    notes = []
    for r in rows:
        label = "%s %s" % (r["kind"], r["round"]) if r["kind"] != "b2b" else "part 2"
        notes += ["%s: %s" % (label, w) for w in r["warnings"]]
        if not r["check"]["ok"]:
            bad.append("%s: check failed" % label)
            notes += ["%s: check: %s" % (label, p) for p in r["check"]["problems"]]
        if r["driver"]:
            notes += ["%s: reloads: %s" % (label, p) for p in r["driver"]["problems"]]
    if notes:
        print()
        print("warnings and problems:")
        for n in notes[:40]:
            print("   " + n)
    if bad:
        print()
        print("FAILED: " + "; ".join(bad))
        return 1
    return 0

if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    sys.exit({"drive": drive, "state": state, "check": check, "accepts": accepts,
              "record": record, "brief": brief, "report": report}[cmd](rest) or 0)
EOF
HELPER=$TMP/reload.py

# ------------------------------------------------------------------ configs

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
        listen 127.0.0.1:$ORIGIN_PORT;
        location = /nginx-status { stub_status; }
        location / { return 200 "hello \$host\n"; }
    }
}
EOF
"$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" || die "nginx config invalid"

# ringway_config LISTEN ADMIN TAG: config A or B for one gateway.
ringway_config() {
    local listen=$1 admin=$2 tag=$3 lower
    lower=$(tr 'AB' 'ab' <<<"$tag")
    cat <<EOF
workers = 2

[admin]
address = "127.0.0.1:$admin"

[[listeners]]
address = "127.0.0.1:$listen"

[[upstreams]]
name = "origin"
servers = ["127.0.0.1:$ORIGIN_PORT"]

[[routes]]
name = "origin"
path-prefix = "/"
upstream = "origin"
host-header = "$lower.example"

[[routes]]
name = "tag"
path = "/tag"

[routes.respond]
body = "$tag"
EOF
}
for g in 1 2; do
    if ((g == 1)); then listen=$LISTEN1 admin=$ADMIN1; else listen=$LISTEN2 admin=$ADMIN2; fi
    for tag in A B; do
        ringway_config "$listen" "$admin" "$tag" >"$TMP/gw$g-$tag.toml"
        "$RINGWAY" validate "$TMP/gw$g-$tag.toml" >"$TMP/validate.out" 2>&1 \
            || die "ringway rejects $TMP/gw$g-$tag.toml (a binary older than the admin API? rebuild with" \
                "cargo build --release -p ringway):"$'\n'"$(cat "$TMP/validate.out")"
    done
done

# ------------------------------------------------------------------ start

log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 1 "$NGINX" -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx.out" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")
ok=""
for _ in $(seq 100); do   # bounded: 10 s
    kill -0 "$NG_PID" 2>/dev/null || die "nginx exited during startup (see $TMP; rerun with KEEP_TMP=1)"
    if python3 "$HELPER" accepts "$ORIGIN_PORT" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
done
[[ -n $ok ]] || die "nginx did not answer on 127.0.0.1:$ORIGIN_PORT within 10 s"

# start_gateway N: starts ringway with gwN-A.toml, waits for its listener
# and admin API (from its log), sets RW_PID.
start_gateway() {
    local g=$1 listen admin logf ok=""
    if ((g == 1)); then listen=$LISTEN1 admin=$ADMIN1; else listen=$LISTEN2 admin=$ADMIN2; fi
    logf=$TMP/ringway$g.log
    "$RINGWAY" -c "$TMP/gw$g-A.toml" >"$logf" 2>&1 &
    RW_PID=$!; PIDS+=("$RW_PID")
    for _ in $(seq 100); do   # bounded: 10 s
        kill -0 "$RW_PID" 2>/dev/null || die "ringway exited during startup: $(tail -5 "$logf")"
        if grep -q "listening addr=127.0.0.1:$listen" "$logf" && grep -q "admin API started admin=127.0.0.1:$admin" "$logf"; then
            ok=1; break
        fi
        sleep 0.1
    done
    [[ -n $ok ]] || die "ringway did not log its listener and admin API within 10 s: $(tail -5 "$logf")"
    ADMIN=127.0.0.1:$admin
    LISTEN=127.0.0.1:$listen
    URL=http://$LISTEN/
    CFG_A=$TMP/gw$g-A.toml
    CFG_B=$TMP/gw$g-B.toml
    read -r GEN TAG < <(python3 "$HELPER" state "$ADMIN" "$LISTEN")
    log "ringway $g: listener $LISTEN, admin $ADMIN, generation $GEN, config $TAG;" \
        "$(grep -o 'worker started worker=[0-9]* cpu=[0-9]*' "$logf" | sed 's/worker started //' | paste -sd, -)"
}

# ------------------------------------------------------------------ runs

RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# run KIND ROUND: one load run of DURATION (WARMUP for warmup); for "reload"
# with the paced driver alongside, for "b2b" (part 2) with the load bounded
# by PROP_LOAD_BOUND and stopped with SIGINT after the back-to-back driver.
run() {
    local kind=$1 rnd=$2 pfx dur a0 a1 load drv="" drvjson rc=0 drc=0 order line g t
    pfx=$TMP/$kind-$rnd
    case $kind in
        warmup) dur=$WARMUP ;;
        b2b) dur=$PROP_LOAD_BOUND ;;
        *) dur=$DURATION ;;
    esac
    if [[ $TAG == A ]]; then order=("B=$CFG_B" "A=$CFG_A"); else order=("A=$CFG_A" "B=$CFG_B"); fi
    kill -0 "$RW_PID" 2>/dev/null || die "ringway is not running (logs in $TMP; rerun with KEEP_TMP=1)"
    a0=$(python3 "$HELPER" accepts "$ORIGIN_PORT")
    taskset -c 1 "$LOADGEN" --rate "$RATE" -c "$CONNECTIONS" -t 1 --cpus 1 -d "$dur" \
        --json "$pfx.json" "$URL" >"$pfx.txt" 2>&1 &
    load=$!; CUR=("$load")
    case $kind in
        reload)
            sleep 0.5
            python3 "$HELPER" drive "$ADMIN" "$RELOAD_HZ" "$PACED_RELOADS" "$((DURATION_S + 30))" \
                "$pfx.reloads.jsonl" "${order[@]}" >"$pfx.driver.json" 2>"$pfx.driver.err" &
            drv=$!; CUR+=("$drv")
            wait "$drv" || drc=$?
            ;;
        b2b)
            sleep 2   # connections up, rate steady
            python3 "$HELPER" drive "$ADMIN" 0 "$PROPAGATION_RELOADS" "$PROP_DEADLINE_S" \
                "$pfx.reloads.jsonl" "${order[@]}" >"$pfx.driver.json" 2>"$pfx.driver.err" &
            drv=$!; CUR+=("$drv")
            wait "$drv" || drc=$?
            sleep 1
            kill -INT "$load" 2>/dev/null || true
            ;;
    esac
    wait "$load" || rc=$?
    CUR=()
    a1=$(python3 "$HELPER" accepts "$ORIGIN_PORT")
    ((rc == 0)) || die "ringway-load exited with status $rc: $(cat "$pfx.txt")"
    ((drc == 0)) || die "the reload driver exited with status $drc: $(cat "$pfx.driver.err")"
    kill -0 "$RW_PID" 2>/dev/null || die "ringway died during the run (logs in $TMP; rerun with KEEP_TMP=1)"
    if [[ -n $drv ]]; then
        read -r g t < <(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(d["last_generation"] or "-", d["last_tag"] or "-")' "$pfx.driver.json")
        if [[ $g != - ]]; then GEN=$g TAG=$t; fi
    fi
    python3 "$HELPER" check "$ADMIN" "$LISTEN" "$GEN" "$TAG" >"$pfx.check.json"
    if [[ -n $drv ]]; then drvjson=$pfx.driver.json; else drvjson=-; fi
    line=$(python3 "$HELPER" record "$kind" "$rnd" "$pfx.json" "$drvjson" "$pfx.check.json" "$a0" "$a1")
    echo "$line" >>"$RESULTS"
    python3 "$HELPER" brief "$line" >&2
}

start_gateway 1
log "part 1: warm-up ($WARMUP, $RATE req/s, $CONNECTIONS connections)"
run warmup 0
for r in $(seq "$ROUNDS"); do
    log "part 1 round $r/$ROUNDS: steady ($DURATION, no reloads)"
    run steady "$r"
    log "part 1 round $r/$ROUNDS: reload ($DURATION, $PACED_RELOADS reloads at $RELOAD_HZ/s)"
    run reload "$r"
done
python3 -c 'import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], timeout=5); c.request("GET", "/status")
sys.stdout.buffer.write(c.getresponse().read())' "$ADMIN" >"$TMP/status-part1.json"
stop_pid "$RW_PID"

start_gateway 2
log "part 2: $PROPAGATION_RELOADS reloads back to back under $RATE req/s"
run b2b 0
python3 -c 'import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], timeout=5); c.request("GET", "/status")
sys.stdout.buffer.write(c.getresponse().read())' "$ADMIN" >"$TMP/status-part2.json"
stop_pid "$RW_PID"

# ------------------------------------------------------------------ report

echo
echo "ringway live reconfiguration under load: workers = 2 pinned to CPUs 0 and 1; nginx origin"
echo "(1 worker) and ringway-load (1 thread) on CPU 1; reload driver and admin thread unpinned"
echo "$(nproc --all) CPUs; load average at end $(cut -d' ' -f1-3 /proc/loadavg);" \
    "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), ringway $("$RINGWAY" --version | awk '{print $2}'),"\
    "$("$LOADGEN" --version)"
status=0
python3 "$HELPER" report "$RESULTS" "$TMP/status-part1.json" "$TMP/status-part2.json" "$RATE" "$CONNECTIONS" \
    "$DURATION" "$RELOAD_HZ" "$TARGET_RATIO" "$TARGET_PROP_P99_US" || status=$?

for g in 1 2; do
    if grep -qiE 'error|warn|panic' "$TMP/ringway$g.log"; then
        echo
        echo "ringway $g log had errors or warnings:"
        grep -iE 'error|warn|panic' "$TMP/ringway$g.log" | tail -20 | sed 's/^/    /'
    fi
done
if [[ -s $TMP/nginx-error.log ]] && grep -qv '\[notice\]' "$TMP/nginx-error.log"; then
    echo
    echo "nginx error log:"
    grep -v '\[notice\]' "$TMP/nginx-error.log" | tail -20 | sed 's/^/    /'
fi
exit "$status"
