#!/usr/bin/env python3
"""Screenshots ringway's status page once it shows rates.

    scripts/page-screenshot.py URL OUT.png [WIDTHxHEIGHT]

`chromium --headless --screenshot` captures as soon as the page has
loaded, before its second refresh, so before it has any rate to show;
with `--virtual-time-budget` its 2 s refreshes run back to back in real
time, and rates over a few milliseconds are noise. So this drives
headless Chromium over the DevTools protocol (on a pipe: standard library
only), waits until the page shows a request rate (at most 30 s), and
captures the viewport. The browser profile is a temporary directory,
removed at the end.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time


class Browser:
    """Headless Chromium with --remote-debugging-pipe: commands on fd 3,
    answers on fd 4, each message a JSON object ended by a NUL byte."""

    def __init__(self, profile):
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def fds():
            # Through fresh copies: dup2 onto the same number would keep
            # close-on-exec set.
            a, b = os.dup(to_r), os.dup(from_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--disable-gpu", "--no-sandbox",
             "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0

    def call(self, method, params=None, session=None):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._from_r, 1 << 16)
                if not chunk:
                    sys.exit(f"page-screenshot: chromium closed the pipe during {method}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._id:
                if "error" in answer:
                    sys.exit(f"page-screenshot: {method}: {answer['error']}")
                return answer["result"]

    def close(self):
        try:
            self.call("Browser.close")
        finally:
            self.proc.wait(timeout=10)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    url, out = sys.argv[1], sys.argv[2]
    width, height = map(int, (sys.argv[3] if len(sys.argv) == 4 else "1280x900").split("x"))
    with tempfile.TemporaryDirectory(prefix="ringway-chromium-") as profile:
        browser = Browser(profile)
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget",
                                   {"targetId": target, "flatten": True})["sessionId"]
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height, "deviceScaleFactor": 1,
                          "mobile": False}, session)
            browser.call("Page.navigate", {"url": url}, session)
            shows_rate = ("(document.getElementById('c-rate') || {}).textContent || ''")
            deadline = time.monotonic() + 30
            while True:
                value = browser.call("Runtime.evaluate",
                                     {"expression": shows_rate, "returnByValue": True},
                                     session)["result"].get("value", "")
                if value not in ("", "–"):
                    break
                if time.monotonic() > deadline:
                    sys.exit("page-screenshot: the page showed no rate within 30 s")
                time.sleep(0.2)
            png = browser.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        finally:
            browser.close()
    with open(out, "wb") as f:
        f.write(base64.b64decode(png))


if __name__ == "__main__":
    main()
