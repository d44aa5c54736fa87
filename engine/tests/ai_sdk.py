#!/usr/bin/env python3
"""The official provider SDKs against an OpenAI-compatible (and optionally
an Anthropic-compatible) endpoint: what a user of ringway's AI gateway runs.

Usage:
    ai_sdk.py OPENAI_BASE_URL [ANTHROPIC_BASE_URL]

    OPENAI_BASE_URL     what `openai.OpenAI(base_url=...)` takes, with its
                        /v1: http://127.0.0.1:PORT/v1 (or PREFIX/v1 for a
                        route with a path-prefix). The SDK posts to
                        BASE/chat/completions.
    ANTHROPIC_BASE_URL  optional; what `anthropic.Anthropic(base_url=...)`
                        takes, WITHOUT /v1 (the SDK posts to
                        BASE/v1/messages). Skipped when absent or when the
                        `anthropic` package does not import.

Environment (all optional):
    AI_API_KEY          the key both SDKs send (default "test-key"): OpenAI
                        as `Authorization: Bearer KEY`; Anthropic's SDK as
                        `x-api-key: KEY` (releases before 2.x) or
                        `Authorization: Bearer KEY` (2.x), always with an
                        `anthropic-version` header.
    AI_MODEL            the model name sent (default "chat").
    AI_ANTHROPIC_MODEL  the model sent to the Anthropic front (default
                        AI_MODEL).
    AI_TIMEOUT          seconds per request (default 20). SDK retries are
                        off (max_retries=0), so a failure shows at once.

Output: ONE JSON object on stdout (nothing else is printed there):
    {
      "openai": {
        "chat":         {"id", "model", "content", "finish_reason", "usage"},
        "stream":       {"content", "finish_reason", "chunks", "usage",
                         "usage_chunks"},        # no stream_options: usage
                                                 # must be null, usage_chunks 0
        "stream_usage": {... same ...},          # include_usage: true
        "tool":         {"finish_reason", "content", "tool_calls", "usage"},
        "tool_stream":  {"finish_reason", "content", "tool_calls", "usage",
                         "chunks"}               # arguments joined from deltas
      },
      "anthropic": {                             # or {"skipped": "why"}
        "message":      {"id", "model", "text", "stop_reason", "usage"},
        "stream":       {"text", "stop_reason", "usage", "events"},
        "tool":         {"stop_reason", "text", "tool_uses", "usage"},
        "tool_stream":  {"stop_reason", "text", "tool_uses", "usage",
                         "partial_json"}         # input_json_delta fragments
      },
      "errors": ["openai.chat: APIStatusError: ...", ...],
      "seconds": {"openai.chat": 0.012, ...}   # wall time of each step
    }
    "usage" is the SDK's usage object as a dict (null when none came);
    "tool_calls" is a list of {"id", "name", "arguments"} (arguments as the
    JSON text the SDK got); "tool_uses" a list of {"id", "name", "input"}.
    A step that raised is missing from its section and named in "errors"
    with the exception (for an HTTP error: its status and body).

Exit status: 0 when every step ran, 1 when one raised, 2 on usage errors
(or when `openai` does not import).
"""

import json
import os
import sys
import time
import traceback

TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
            },
            "required": ["location"],
        },
    },
}
TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": TOOL_OPENAI["function"]["parameters"],
}
HELLO = [{"role": "user", "content": "Hello!"}]
WEATHER = [{"role": "user", "content": "What's the weather like in Paris today?"}]


def dump(obj):
    """An SDK (pydantic) object as plain JSON data; None stays None."""
    if obj is None:
        return None
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_none=True)
    return obj


def describe(step, exc):
    """One line naming the step and the error, with the HTTP status and body
    of an API error."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    extra = ""
    if status is not None:
        extra = f" (status {status}, body {json.dumps(body)})"
    return f"{step}: {type(exc).__name__}: {exc}{extra}"


TIMINGS = {}


def run(out, errors, section, step, fn):
    started = time.monotonic()
    try:
        out[step] = fn()
    except Exception as exc:  # every failure is reported, none stops the run
        errors.append(describe(f"{section}.{step}", exc))
        if os.environ.get("AI_SDK_DEBUG"):
            traceback.print_exc(file=sys.stderr)
    TIMINGS[f"{section}.{step}"] = round(time.monotonic() - started, 4)


# ------------------------------------------------------------------ OpenAI

def openai_steps(base_url, key, model, timeout, errors):
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)
    out = {}

    def chat():
        r = client.chat.completions.create(model=model, messages=HELLO, max_tokens=64)
        c = r.choices[0]
        return {
            "id": r.id,
            "model": r.model,
            "content": c.message.content,
            "finish_reason": c.finish_reason,
            "usage": dump(r.usage),
        }

    def stream(include_usage):
        def step():
            extra = {"stream_options": {"include_usage": True}} if include_usage else {}
            s = client.chat.completions.create(model=model, messages=HELLO, stream=True, **extra)
            content, finish, chunks, usage, usage_chunks = [], None, 0, None, 0
            for chunk in s:
                chunks += 1
                if chunk.usage is not None:
                    usage = dump(chunk.usage)
                    if not chunk.choices:
                        usage_chunks += 1
                for choice in chunk.choices:
                    if choice.delta.content:
                        content.append(choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
            return {
                "content": "".join(content),
                "finish_reason": finish,
                "chunks": chunks,
                "usage": usage,
                "usage_chunks": usage_chunks,
            }

        return step

    def tool():
        r = client.chat.completions.create(
            model=model, messages=WEATHER, tools=[TOOL_OPENAI], tool_choice="auto"
        )
        c = r.choices[0]
        calls = [
            {"id": t.id, "name": t.function.name, "arguments": t.function.arguments}
            for t in (c.message.tool_calls or [])
        ]
        return {
            "finish_reason": c.finish_reason,
            "content": c.message.content,
            "tool_calls": calls,
            "usage": dump(r.usage),
        }

    def tool_stream():
        s = client.chat.completions.create(
            model=model,
            messages=WEATHER,
            tools=[TOOL_OPENAI],
            stream=True,
            stream_options={"include_usage": True},
        )
        calls = {}  # index -> {"id", "name", "arguments"}
        content, finish, usage, chunks = [], None, None, 0
        for chunk in s:
            chunks += 1
            if chunk.usage is not None:
                usage = dump(chunk.usage)
            for choice in chunk.choices:
                d = choice.delta
                if d.content:
                    content.append(d.content)
                for t in d.tool_calls or []:
                    call = calls.setdefault(t.index, {"id": None, "name": None, "arguments": ""})
                    if t.id:
                        call["id"] = t.id
                    if t.function is not None:
                        if t.function.name:
                            call["name"] = t.function.name
                        if t.function.arguments:
                            call["arguments"] += t.function.arguments
                if choice.finish_reason:
                    finish = choice.finish_reason
        return {
            "finish_reason": finish,
            "content": "".join(content) or None,
            "tool_calls": [calls[i] for i in sorted(calls)],
            "usage": usage,
            "chunks": chunks,
        }

    run(out, errors, "openai", "chat", chat)
    run(out, errors, "openai", "stream", stream(False))
    run(out, errors, "openai", "stream_usage", stream(True))
    run(out, errors, "openai", "tool", tool)
    run(out, errors, "openai", "tool_stream", tool_stream)
    return out


# --------------------------------------------------------------- Anthropic

def anthropic_steps(base_url, key, model, timeout, errors):
    import anthropic

    client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)
    out = {}

    def blocks(content):
        text = "".join(b.text for b in content if b.type == "text")
        uses = [{"id": b.id, "name": b.name, "input": b.input} for b in content if b.type == "tool_use"]
        return text, uses

    def message():
        m = client.messages.create(model=model, max_tokens=64, messages=HELLO)
        text, _ = blocks(m.content)
        return {"id": m.id, "model": m.model, "text": text, "stop_reason": m.stop_reason, "usage": dump(m.usage)}

    def stream():
        events = []
        with client.messages.stream(model=model, max_tokens=64, messages=HELLO) as s:
            for event in s:
                events.append(event.type)
            m = s.get_final_message()
        text, _ = blocks(m.content)
        return {"text": text, "stop_reason": m.stop_reason, "usage": dump(m.usage), "events": events}

    def tool():
        m = client.messages.create(model=model, max_tokens=256, messages=WEATHER, tools=[TOOL_ANTHROPIC])
        text, uses = blocks(m.content)
        return {"stop_reason": m.stop_reason, "text": text, "tool_uses": uses, "usage": dump(m.usage)}

    def tool_stream():
        fragments = []
        with client.messages.stream(
            model=model, max_tokens=256, messages=WEATHER, tools=[TOOL_ANTHROPIC]
        ) as s:
            for event in s:
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    fragments.append(event.delta.partial_json)
            m = s.get_final_message()
        text, uses = blocks(m.content)
        return {
            "stop_reason": m.stop_reason,
            "text": text,
            "tool_uses": uses,
            "usage": dump(m.usage),
            "partial_json": "".join(fragments),
        }

    run(out, errors, "anthropic", "message", message)
    run(out, errors, "anthropic", "stream", stream)
    run(out, errors, "anthropic", "tool", tool)
    run(out, errors, "anthropic", "tool_stream", tool_stream)
    return out


def main(argv):
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import openai  # noqa: F401
    except ImportError as exc:
        print(f"ai_sdk.py: the openai package does not import ({exc}); pip install openai", file=sys.stderr)
        return 2
    key = os.environ.get("AI_API_KEY", "test-key")
    model = os.environ.get("AI_MODEL", "chat")
    timeout = float(os.environ.get("AI_TIMEOUT", "20"))
    errors = []
    result = {"openai": openai_steps(argv[1], key, model, timeout, errors)}
    if len(argv) == 3:
        try:
            import anthropic  # noqa: F401
        except ImportError as exc:
            result["anthropic"] = {"skipped": f"the anthropic package does not import: {exc}"}
        else:
            result["anthropic"] = anthropic_steps(
                argv[2], key, os.environ.get("AI_ANTHROPIC_MODEL", model), timeout, errors
            )
    else:
        result["anthropic"] = {"skipped": "no ANTHROPIC_BASE_URL given"}
    result["errors"] = errors
    result["seconds"] = TIMINGS
    print(json.dumps(result, indent=1, sort_keys=True))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
