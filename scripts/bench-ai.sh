#!/usr/bin/env bash
# The AI gateway's cost: latency and CPU that ringway adds in front of an
# LLM provider that answers at once, passthrough (OpenAI client, OpenAI
# provider) and translated (OpenAI client, Anthropic provider), whole
# answers and event streams; optionally the same through LiteLLM's proxy.
#
#   mock      a second ringway process, workers = 1, whose [routes.respond]
#             routes answer fixed provider bodies at once, by path prefix:
#               /oa-json/   OpenAI chat.completion JSON
#               /oa-sse/    OpenAI stream: role chunk, 50 content chunks,
#                           finish chunk, usage chunk, [DONE]
#               /an-json/   Anthropic message JSON
#               /an-sse/    Anthropic stream: message_start,
#                           content_block_start, 50 text_delta events,
#                           content_block_stop, message_delta, message_stop
#             (streams are Content-Length bodies with Content-Type
#             text/event-stream: the whole stream in one write)
#                                                             taskset -c 1
#   gateway   ringway, workers = 1: one [[upstreams]] (the mock), four
#             [[ai-providers]] (oa-json and oa-sse of type openai, an-json
#             and an-sse of type anthropic, each with the base-path of its
#             mock prefix), one [[ai-models]] per provider, named as it, and
#             one route with [routes.ai] on "/"              taskset -c 0
#   litellm   optional (LITELLM): `litellm --config` with the same four
#             models pointing at the same mock, one worker   taskset -c 0
#   load      ringway-load -t 1 --cpus 1, POST with a JSON body,
#             Content-Type: application/json and a Bearer token (LiteLLM's
#             master key; ignored by the others)             taskset -c 1
#
# Cases (client sends OpenAI chat completions to the gateway):
#   openai-json     model oa-json, "stream": false   passthrough
#   openai-sse      model oa-sse,  "stream": true    passthrough (stream)
#   anthropic-json  model an-json, "stream": false   OpenAI -> Anthropic
#   anthropic-sse   model an-sse,  "stream": true    OpenAI -> Anthropic (stream)
# Each case runs against:
#   direct   the mock itself (POST /oa-json/v1/chat/completions, or
#            /an-json/v1/messages with an Anthropic body): the floor
#   ringway  POST /v1/chat/completions through the gateway
#   litellm  POST /v1/chat/completions through LiteLLM (when enabled)
# in each mode of MODES:
#   rate     open loop at RATE requests/s (LiteLLM: LITELLM_RATE),
#            latency corrected from the intended send time: the latency a
#            client sees
#   closed   closed loop (-c CONNECTIONS): the most the proxy serves on
#            its one CPU
#
# One round runs every case x mode x target once, targets in alternating
# order (direct first on odd rounds, last on even ones), each run after a
# WARMUP run of the same kind. Per run: achieved rate, p50 and p99 of the
# latency and of the time to the first body byte (ringway-load's JSON:
# `latency` and `first_byte`), and the proxy's CPU per request: utime +
# stime of its process (/proc/PID/stat) over the run, divided by the
# responses. The report gives medians over rounds, the overhead (proxy
# median minus direct median, p50 and p99), CPU µs per request and, with
# LiteLLM, the ratios litellm / ringway. In rate mode, +svc p99 is the
# same difference for the p99 of the service time (from the actual send,
# so without the load generator's own lag in sending, which the corrected
# latency includes).
#
# For the streaming cases it also gives the time-to-first-token overhead,
# +TTFT p50 and +TTFT p99: the same difference of medians for the first
# body byte. The mock writes head and whole stream at once, so directly its
# first body byte is its last; ringway writes each translated event as the
# provider's bytes come in (with the response head when they came with the
# provider's), so its first body byte is the first event the client can
# read: the first token's latency as the client sees it (the one to hold to
# at most +1 ms at p99). In rate mode it counts from the intended send, as
# the latency.
#
# Exit status: 1 when a run could not be measured (a process died, no
# responses, non-2xx answers or transport errors above 1%).
#
# Environment:
#   RATE          requests/s in rate mode                      (default 2000)
#   CONNECTIONS   ringway-load connections                     (default 32)
#   DURATION      measured run                                 (default 10s)
#   WARMUP        warm-up run before each measured run; 0s: none (default 2s)
#   ROUNDS        rounds                                       (default 3)
#   MODES         "rate closed", "rate" or "closed"            (default both)
#   CASES         subset of the four cases, space separated    (default all)
#   LITELLM       auto: install litellm[proxy] into a venv and run it when
#                 that works, skip when not; 1: required; 0: never (default auto)
#   LITELLM_VENV  the venv for it       (default $CARGO_TARGET_DIR/bench-venv)
#   LITELLM_RATE  LiteLLM's rate in rate mode, when below RATE (default 20):
#                 a Python proxy on one CPU serves ~80 whole answers or ~25
#                 streams of 50 events per second, so at RATE its
#                 latency would be all queueing. Its +p50/+p99 are then
#                 against the direct run at RATE (the mock's latency barely
#                 moves with the rate); the rate column shows what ran.
#   NO_GATEWAY=1  leave the ringway gateway out: the direct target, and
#                 LiteLLM when enabled (a check of the mock and of this script
#                 on a ringway build without [routes.ai])
#   KEEP_TMP=1    keep the temp dir (configs, logs, JSON reports)
#   RINGWAY       the ringway binary   (default: target/release/ringway of
#                 this checkout, or of $CARGO_TARGET_DIR; built if missing)
#   RINGWAY_LOAD  the ringway-load binary (likewise)
#
# Usage:
#   scripts/bench-ai.sh
#   MODES=rate RATE=5000 ROUNDS=5 scripts/bench-ai.sh
#   CASES="openai-json anthropic-sse" LITELLM=0 DURATION=5s scripts/bench-ai.sh
#
# Only 127.0.0.1 is used; ports are picked by asking the OS for free ones.
set -euo pipefail

RATE=${RATE:-2000}
LITELLM_RATE=${LITELLM_RATE:-20}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-rate closed}
CASES=${CASES:-openai-json openai-sse anthropic-json anthropic-sse}
LITELLM=${LITELLM:-auto}
NO_GATEWAY=${NO_GATEWAY:-0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
RINGWAY_DEFAULT=$TARGET/release/ringway
RINGWAY_LOAD_DEFAULT=$TARGET/release/ringway-load
RINGWAY=${RINGWAY:-$RINGWAY_DEFAULT}
RINGWAY_LOAD=${RINGWAY_LOAD:-$RINGWAY_LOAD_DEFAULT}
LITELLM_VENV=${LITELLM_VENV:-$TARGET/bench-venv}

log() { printf '[bench-ai] %s\n' "$*" >&2; }
die() { printf '[bench-ai] error: %s\n' "$*" >&2; exit 1; }

[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 && $RATE -le 1000000 ]] || die "RATE must be 1..1000000"
[[ $LITELLM_RATE =~ ^[0-9]+$ && $LITELLM_RATE -ge 1 ]] || die "LITELLM_RATE must be a positive integer"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 10000 ]] || die "CONNECTIONS must be 1..10000"
[[ $DURATION =~ ^[0-9]+(s|m)$ ]] || die "DURATION must look like 10s or 2m"
[[ $WARMUP =~ ^[0-9]+(s|m)$ ]] || die "WARMUP must look like 2s or 0s"
[[ $LITELLM == auto || $LITELLM == 0 || $LITELLM == 1 ]] || die "LITELLM must be auto, 0 or 1"
[[ $NO_GATEWAY == 0 || $NO_GATEWAY == 1 ]] || die "NO_GATEWAY must be 0 or 1"
for m in $MODES; do [[ $m == rate || $m == closed ]] || die "MODES: unknown mode '$m'"; done
for c in $CASES; do
    [[ $c =~ ^(openai|anthropic)-(json|sse)$ ]] || die "CASES: unknown case '$c'"
done

# ------------------------------------------------------------------ setup

for tool in curl taskset python3 getconf; do
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
NCPU=$(nproc --all)
((NCPU >= 2)) || die "needs at least 2 CPUs (0 and 1), found $NCPU"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringway-bench-ai.XXXXXX")
PIDS=()   # processes started and not yet reaped

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
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every request carries this Bearer token: LiteLLM's master key (it
# refuses to start without one); the mock and ringway ignore it.
PROXY_KEY=sk-bench-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')

read -r MOCK_PORT GW_PORT LL_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ------------------------------------------------------------------ python

# Bodies, configs, parsing and the report (python3, standard library only).
cat >"$TMP/bench.py" <<'EOF'
import json, statistics, sys

CHUNKS = 50

def oa_chunk(choices, usage=None):
    c = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1741569952,
         "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices": choices,
         "usage": usage}
    return "data: " + json.dumps(c, separators=(",", ":")) + "\n\n"

def bodies():
    """The mock's four answers: (prefix, content type, body)."""
    oa_json = json.dumps({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
        "created": 1741569952, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant",
                     "content": "Hello! How can I assist you today?", "refusal": None,
                     "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}},
        "service_tier": "default"}, separators=(",", ":"))
    sse = [oa_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                      "logprobs": None, "finish_reason": None}])]
    sse += [oa_chunk([{"index": 0, "delta": {"content": " token"}, "logprobs": None,
                       "finish_reason": None}]) for _ in range(CHUNKS)]
    sse.append(oa_chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    sse.append(oa_chunk([], {"prompt_tokens": 12, "completion_tokens": CHUNKS,
                             "total_tokens": 12 + CHUNKS}))
    sse.append("data: [DONE]\n\n")
    an_json = json.dumps({
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 2095, "output_tokens": 503}}, separators=(",", ":"))
    def ev(name, data):
        return f"event: {name}\ndata: " + json.dumps(data, separators=(",", ":")) + "\n\n"
    an = [ev("message_start", {"type": "message_start", "message": {
              "id": "msg_bench", "type": "message", "role": "assistant", "content": [],
              "model": "claude-sonnet-4-20250514", "stop_reason": None, "stop_sequence": None,
              "usage": {"input_tokens": 12, "output_tokens": 1}}}),
          ev("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}})]
    an += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": " token"}})
           for _ in range(CHUNKS)]
    an += [ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
           ev("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": CHUNKS}}),
           ev("message_stop", {"type": "message_stop"})]
    return [("oa-json", "application/json", oa_json),
            ("oa-sse", "text/event-stream", "".join(sse)),
            ("an-json", "application/json", an_json),
            ("an-sse", "text/event-stream", "".join(an))]

def toml_str(s):
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(s)

def mock_config(args):
    port = args[0]
    out = ["workers = 1", "", "[admin]", "enabled = false", "",
           "[[listeners]]", f'address = "127.0.0.1:{port}"']
    for prefix, ctype, body in bodies():
        out += ["", "[[routes]]", f'name = "{prefix}"', f'path-prefix = "/{prefix}/"',
                "[routes.respond]", "status = 200",
                f'headers = {{ "content-type" = {toml_str(ctype)} }}',
                f"body = {toml_str(body)}"]
    print("\n".join(out))

PROVIDERS = [("oa-json", "openai", "gpt-4o-mini"), ("oa-sse", "openai", "gpt-4o-mini"),
             ("an-json", "anthropic", "claude-3-5-haiku-latest"),
             ("an-sse", "anthropic", "claude-3-5-haiku-latest")]

def gateway_config(args):
    gw, mock = args
    out = ["workers = 1", "", "[admin]", "enabled = false", "",
           "[[listeners]]", f'address = "127.0.0.1:{gw}"', "",
           "[[upstreams]]", 'name = "mock"', f'servers = ["127.0.0.1:{mock}"]']
    for name, kind, _ in PROVIDERS:
        out += ["", "[[ai-providers]]", f'name = "{name}"', f'type = "{kind}"',
                'upstream = "mock"', f'base-path = "/{name}/v1"', 'keys = ["env:BENCH_AI_KEY"]']
    for name, _, model in PROVIDERS:
        out += ["", "[[ai-models]]", f'name = "{name}"',
                f'targets = [{{ provider = "{name}", model = "{model}" }}]']
    out += ["", "[[routes]]", 'name = "ai"', 'path-prefix = "/"', "[routes.ai]"]
    print("\n".join(out))

def litellm_config(args):
    mock, key = args
    out = ["model_list:"]
    for name, kind, model in PROVIDERS:
        # LiteLLM posts to {api_base}/chat/completions for openai/ and to
        # {api_base}/v1/messages for anthropic/.
        base = f"http://127.0.0.1:{mock}/{name}" + ("/v1" if kind == "openai" else "")
        out += [f"  - model_name: {name}", "    litellm_params:",
                f"      model: {kind}/{model}", f"      api_base: {base}",
                "      api_key: bench-key"]
    out += ["litellm_settings:", "  drop_params: true", "  set_verbose: false",
            "general_settings:", "  disable_spend_logs: true",
            # LiteLLM refuses to start without one (no database is used).
            f"  master_key: {key}"]
    print("\n".join(out))

def request(args):
    """Path and body of one case against one target: prints the path, then
    the body on the next line."""
    case, target = args
    wire, kind = case.split("-")
    model = {"openai": "oa", "anthropic": "an"}[wire] + "-" + kind
    stream = kind == "sse"
    msgs = [{"role": "user", "content": "Say hello."}]
    if target == "direct" and wire == "anthropic":
        path = f"/{model}/v1/messages"
        body = {"model": "claude-3-5-haiku-latest", "max_tokens": 64, "messages": msgs,
                "stream": stream}
    elif target == "direct":
        path = f"/{model}/v1/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": msgs, "max_tokens": 64, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
    else:
        path = "/v1/chat/completions"
        body = {"model": model, "messages": msgs, "max_tokens": 64, "stream": stream}
    print(path)
    print(json.dumps(body, separators=(",", ":")))

def cpu_ticks(args):
    """utime + stime of a process, in clock ticks (fields 14 and 15 of
    /proc/PID/stat, counted after the command name's closing paren)."""
    with open(f"/proc/{args[0]}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    print(int(rest[11]) + int(rest[12]))

def record(args):
    case, mode, target, rnd, path, t0, t1, clk = args
    r = json.load(open(path))
    e = r["errors"]
    transport = e["connect"] + e["reset"] + e["timeout"] + e["malformed"]
    non2xx = sum(n for s, n in r["statuses"].items() if not 200 <= int(s) < 300)
    responses = r["responses"]
    fb = r.get("first_byte") or {}
    cpu_us = (int(t1) - int(t0)) * 1e6 / int(clk)
    print(json.dumps({
        "case": case, "mode": mode, "target": target, "round": int(rnd),
        "rate": r["achieved_rate"], "responses": responses,
        "p50_us": r["latency"]["p50_us"], "p99_us": r["latency"]["p99_us"],
        # The first body byte: None from a ringway-load without it, or when
        # no response had a body.
        "fb50_us": fb["p50_us"] if fb.get("count") else None,
        "fb99_us": fb["p99_us"] if fb.get("count") else None,
        # Rate mode: p99 from the actual send (the generator's own lag out).
        "svc99_us": (r.get("service_time") or {}).get("p99_us"),
        "cpu_us_per_req": (cpu_us / responses) if responses and target != "direct" else None,
        "failed": transport + non2xx, "statuses": r["statuses"], "errors": e,
        "schedule_held": r.get("schedule_held"), "warnings": r.get("warnings", []),
    }))

def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if abs(v) >= 1000 else f"{v:.0f} µs"

def is_stream(case):
    return case.endswith("-sse")

def med_of(rows, key):
    """Median of a figure over runs; None when a run lacks it."""
    v = [r.get(key) for r in rows]
    return statistics.median(v) if v and None not in v else None

def diff(a, b):
    return fmt_us(a - b) if None not in (a, b) else "-"

def report(args):
    rows = [json.loads(l) for l in open(args[0]) if l.strip()]
    bad = []
    for r in rows:
        n = r["responses"]
        if n == 0:
            bad.append(f"{r['case']} {r['mode']} {r['target']} round {r['round']}: no responses")
        elif r["failed"] > 0.01 * n:
            bad.append(f"{r['case']} {r['mode']} {r['target']} round {r['round']}: "
                       f"{r['failed']} failed (statuses {r['statuses']}, errors {r['errors']})")
        if r["mode"] == "rate" and r["schedule_held"] is False:
            print(f"NOTE: {r['case']} {r['target']} round {r['round']} did not hold the schedule "
                  "(latencies are mostly queueing)")
    med = lambda v: statistics.median(v) if v else None
    groups = {}
    for r in rows:
        groups.setdefault((r["case"], r["mode"], r["target"]), []).append(r)
    keys = sorted({(c, m) for c, m, _ in groups}, key=lambda k: (k[1], k[0]))
    targets = [t for t in ("direct", "ringway", "litellm") if any(k[2] == t for k in groups)]
    for mode in ("rate", "closed"):
        ks = [k for k in keys if k[1] == mode]
        if not ks:
            continue
        print()
        print(f"### {mode} mode" + (" (open loop, corrected latency)" if mode == "rate" else
                                   " (closed loop: throughput on one CPU)"))
        print()
        # Time to first token: only a stream has a first event before its
        # last, so only streaming cases fill the +TTFT columns.
        streams = any(is_stream(c) for c, _ in ks)
        head = ["case"]
        for t in targets:
            head += [f"{t} rate", f"{t} p50", f"{t} p99"]
            if t != "direct":
                head += [f"{t} +p50", f"{t} +p99"]
                if mode == "rate":
                    head += [f"{t} +svc p99"]
                if streams:
                    head += [f"{t} +TTFT p50", f"{t} +TTFT p99"]
                head += [f"{t} CPU/req"]
        print("| " + " | ".join(head) + " |")
        print("|---|" + "---:|" * (len(head) - 1))
        for case, _ in ks:
            d = groups.get((case, mode, "direct"), [])
            d50, d99 = med([r["p50_us"] for r in d]), med([r["p99_us"] for r in d])
            dfb50, dfb99 = med_of(d, "fb50_us"), med_of(d, "fb99_us")
            cells = [case]
            for t in targets:
                g = groups.get((case, mode, t), [])
                p50, p99 = med([r["p50_us"] for r in g]), med([r["p99_us"] for r in g])
                rate = med([r["rate"] for r in g])
                cells += [f"{rate:,.0f}/s" if rate is not None else "-", fmt_us(p50), fmt_us(p99)]
                if t != "direct":
                    cpu = med([r["cpu_us_per_req"] for r in g if r["cpu_us_per_req"] is not None])
                    cells += [diff(p50, d50), diff(p99, d99)]
                    if mode == "rate":
                        cells += [diff(med_of(g, "svc99_us"), med_of(d, "svc99_us"))]
                    if streams and is_stream(case):
                        cells += [diff(med_of(g, "fb50_us"), dfb50),
                                  diff(med_of(g, "fb99_us"), dfb99)]
                    elif streams:
                        cells += ["-", "-"]
                    cells += [fmt_us(cpu)]
            print("| " + " | ".join(cells) + " |")
        if "litellm" in targets and "ringway" in targets:
            print()
            print("litellm / ringway (medians):")
            for case, _ in ks:
                rw, ll = groups.get((case, mode, "ringway"), []), groups.get((case, mode, "litellm"), [])
                d = groups.get((case, mode, "direct"), [])
                if not rw or not ll:
                    continue
                def ratio(f):
                    a, b = med([f(r) for r in ll]), med([f(r) for r in rw])
                    return f"{a / b:.1f}x" if a is not None and b else "-"
                d50 = med([r["p50_us"] for r in d]) or 0
                d99 = med([r["p99_us"] for r in d]) or 0
                ttft = ""
                dfb50 = med_of(d, "fb50_us")
                if is_stream(case) and dfb50 is not None and None not in (
                        med_of(ll, "fb50_us"), med_of(rw, "fb50_us")):
                    ttft = f" +TTFT p50 {ratio(lambda r: max((r['fb50_us'] or 0) - dfb50, 1))},"
                print(f"  {case}: +p50 {ratio(lambda r: max(r['p50_us'] - d50, 1))},"
                      f" +p99 {ratio(lambda r: max(r['p99_us'] - d99, 1))},{ttft}"
                      f" CPU/req {ratio(lambda r: r['cpu_us_per_req'] or 0)},"
                      f" rate {ratio(lambda r: r['rate'])}")
    if bad:
        print()
        print("FAILED: " + "; ".join(bad))
        return 1
    return 0

if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    sys.exit({"mock-config": mock_config, "gateway-config": gateway_config,
              "litellm-config": litellm_config, "request": request, "cpu": cpu_ticks,
              "record": record, "report": report}[cmd](rest) or 0)
EOF
PY=$TMP/bench.py

# ------------------------------------------------------------------ configs

python3 "$PY" mock-config "$MOCK_PORT" >"$TMP/mock.toml"
"$RINGWAY" validate "$TMP/mock.toml" >"$TMP/validate-mock.txt" 2>&1 \
    || die "mock config invalid: $(cat "$TMP/validate-mock.txt")"
python3 "$PY" gateway-config "$GW_PORT" "$MOCK_PORT" >"$TMP/gateway.toml"
TARGETS=(direct)
if ((NO_GATEWAY)); then
    log "NO_GATEWAY=1: without the ringway gateway (a check of this script)"
elif BENCH_AI_KEY=bench-key "$RINGWAY" validate "$TMP/gateway.toml" >"$TMP/validate-gw.txt" 2>&1; then
    TARGETS+=(ringway)
else
    die "$RINGWAY refuses the AI gateway config (a build without [routes.ai]?):"$'\n'"$(cat "$TMP/validate-gw.txt")"$'\n'"NO_GATEWAY=1 runs without it"
fi

LITELLM_BIN=""
if [[ $LITELLM != 0 ]]; then
    if [[ ! -x $LITELLM_VENV/bin/litellm ]]; then
        log "installing litellm[proxy] into $LITELLM_VENV (LITELLM=0 skips it)"
        if python3 -m venv "$LITELLM_VENV" >"$TMP/litellm-install.txt" 2>&1 \
            && timeout 900 "$LITELLM_VENV/bin/python3" -m pip install -q 'litellm[proxy]' \
                >>"$TMP/litellm-install.txt" 2>&1; then
            :
        else
            [[ $LITELLM == 1 ]] && die "could not install litellm: $(tail -5 "$TMP/litellm-install.txt")"
            log "litellm could not be installed; skipping it ($(tail -1 "$TMP/litellm-install.txt"))"
        fi
    fi
    if [[ -x $LITELLM_VENV/bin/litellm ]]; then
        LITELLM_BIN=$LITELLM_VENV/bin/litellm
        python3 "$PY" litellm-config "$MOCK_PORT" "$PROXY_KEY" >"$TMP/litellm.yaml"
        TARGETS+=(litellm)
    fi
fi

# ------------------------------------------------------------------ processes

# Wait (bounded) until a POST answers 200.
wait_ok() {
    local url=$1 body=$2 name=$3 pid=$4 tries=$5 code=""
    for _ in $(seq "$tries"); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see $TMP; rerun with KEEP_TMP=1)"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Content-Type: application/json' \
            -H "Authorization: Bearer $PROXY_KEY" -d "$body" "$url" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.2
    done
    die "$name did not answer 200 at $url (last status: '$code')"
}

taskset -c 1 "$RINGWAY" -c "$TMP/mock.toml" >"$TMP/mock.log" 2>&1 &
MOCK_PID=$!; PIDS+=("$MOCK_PID")
wait_ok "http://127.0.0.1:$MOCK_PORT/oa-json/v1/chat/completions" '{}' mock "$MOCK_PID" 50
declare -A PID_OF PORT_OF
PID_OF[direct]=$MOCK_PID; PORT_OF[direct]=$MOCK_PORT
CHECK_BODY='{"model":"oa-json","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
if [[ " ${TARGETS[*]} " == *" ringway "* ]]; then
    BENCH_AI_KEY=bench-key taskset -c 0 "$RINGWAY" -c "$TMP/gateway.toml" >"$TMP/gateway.log" 2>&1 &
    PID_OF[ringway]=$!; PORT_OF[ringway]=$GW_PORT; PIDS+=("$!")
    wait_ok "http://127.0.0.1:$GW_PORT/v1/chat/completions" "$CHECK_BODY" gateway "${PID_OF[ringway]}" 50
fi
if [[ -n $LITELLM_BIN ]]; then
    # One worker process, pinned like the gateway; LiteLLM starts slowly.
    taskset -c 0 "$LITELLM_BIN" --config "$TMP/litellm.yaml" --host 127.0.0.1 --port "$LL_PORT" \
        --num_workers 1 >"$TMP/litellm.log" 2>&1 &
    PID_OF[litellm]=$!; PORT_OF[litellm]=$LL_PORT; PIDS+=("$!")
    wait_ok "http://127.0.0.1:$LL_PORT/v1/chat/completions" "$CHECK_BODY" litellm "${PID_OF[litellm]}" 600
fi

# ------------------------------------------------------------------ runs

RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# run_one CASE MODE TARGET ROUND
run_one() {
    local case=$1 mode=$2 target=$3 rnd=$4 path body args t0 t1 name pid p
    { read -r path; read -r body; } < <(python3 "$PY" request "$case" "$target")
    args=(-t 1 --cpus 1 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json"
        -H "Authorization: Bearer $PROXY_KEY" --body "$body")
    if [[ $mode == rate && $target == litellm ]]; then
        args+=(--rate "$((LITELLM_RATE < RATE ? LITELLM_RATE : RATE))")
    elif [[ $mode == rate ]]; then
        args+=(--rate "$RATE")
    fi
    name=$case-$mode-$target-$rnd
    if [[ $WARMUP != 0s && $WARMUP != 0m ]]; then
        taskset -c 1 "$RINGWAY_LOAD" "${args[@]}" -d "$WARMUP" \
            "http://127.0.0.1:${PORT_OF[$target]}$path" >"$TMP/$name-warmup.txt" 2>&1 \
            || die "warm-up $name failed: $(tail -5 "$TMP/$name-warmup.txt")"
    fi
    # The CPU of the process under test: the proxy, or the mock when direct.
    pid=${PID_OF[$target]}
    t0=$(python3 "$PY" cpu "$pid")
    taskset -c 1 "$RINGWAY_LOAD" "${args[@]}" -d "$DURATION" --json "$TMP/$name.json" \
        "http://127.0.0.1:${PORT_OF[$target]}$path" >"$TMP/$name.txt" 2>&1 \
        || die "ringway-load $name exited with an error: $(tail -5 "$TMP/$name.txt")"
    t1=$(python3 "$PY" cpu "$pid")
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || die "a process died during $name (logs in $TMP; KEEP_TMP=1 keeps them)"
    done
    python3 "$PY" record "$case" "$mode" "$target" "$rnd" "$TMP/$name.json" "$t0" "$t1" "$CLK_TCK" \
        >>"$RESULTS" || die "could not read the results of $name"
}

log "mock :$MOCK_PORT (CPU 1), targets: ${TARGETS[*]} (proxies on CPU 0), load on CPU 1;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    order=("${TARGETS[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[i]}"); done
    fi
    for mode in $MODES; do
        for case in $CASES; do
            for target in "${order[@]}"; do
                log "round $r/$ROUNDS: $case, $mode, $target"
                run_one "$case" "$mode" "$target" "$r"
            done
        done
    done
done

# ------------------------------------------------------------------ report

echo
echo "AI gateway overhead: mock provider (ringway [routes.respond], CPU 1), proxies on CPU 0 (one worker)," \
    "ringway-load on CPU 1; $ROUNDS rounds, alternating order; $(nproc --all) CPUs;" \
    "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load:    ringway-load -t 1 --cpus 1 -c $CONNECTIONS -m POST (JSON body) -d $DURATION" \
    "(rate mode: --rate $RATE$([[ -n $LITELLM_BIN ]] && echo ", LiteLLM --rate $((LITELLM_RATE < RATE ? LITELLM_RATE : RATE))")), after a $WARMUP warm-up per run"
echo "streams: 50 content events per answer, sent by the mock in one write"
echo "command: RATE=$RATE LITELLM_RATE=$LITELLM_RATE CONNECTIONS=$CONNECTIONS DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS" \
    "MODES=\"$MODES\" CASES=\"$CASES\" LITELLM=$LITELLM scripts/bench-ai.sh"
versions="ringway $("$RINGWAY" --version | awk '{print $2}'), $("$RINGWAY_LOAD" --version)"
if [[ -n $LITELLM_BIN ]]; then
    versions+=", litellm $("$LITELLM_VENV/bin/python3" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null)"
fi
echo "$versions"
echo "+p50/+p99: proxy median minus direct median; CPU/req: the proxy's utime+stime over the run / responses"
if [[ " $MODES " == *" rate "* ]]; then
    echo "+svc p99 (rate mode): the same for p99 of the service time (from the actual send, so without" \
        "the load generator's own send lag)"
fi
if [[ " $CASES " == *-sse* ]]; then
    echo "+TTFT p50/p99 (streams): the same for the time to the first body byte, i.e. the first token" \
        "(directly: the mock's whole stream, one write)"
fi
status=0
python3 "$PY" report "$RESULTS" || status=$?
for f in "$TMP/gateway.log" "$TMP/mock.log"; do
    [[ -f $f ]] || continue
    if grep -qE 'panicked| ERROR ' "$f"; then
        echo
        echo "$(basename "$f") had errors (last 5):"
        grep -E 'panicked| ERROR ' "$f" | tail -5 | sed 's/^/    /'
    fi
done
exit "$status"
