"""A small driver for headless Chromium over the DevTools protocol (CDP), for the page tests.

Starts Debian's ``chromium`` with a fresh profile and ``--remote-debugging-port=0``,
reads the port it chose from ``DevToolsActivePort``, and talks to the page target over
its websocket (``websockets``' sync client).  No browser is ever downloaded.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from websockets.sync.client import ClientConnection, connect

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
]


def chromium_binary() -> str | None:
    """Path of Debian's chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, binary: str, width: int = 1600, height: int = 1000, timeout: float = 30.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="spp-chromium-"))
        self.timeout = timeout
        self.log = self.profile / "chromium.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                 f"--window-size={width},{height}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._ids = itertools.count(1)
        self._exits = contextlib.ExitStack()
        self.ws: ClientConnection | None = None
        try:
            port = self._devtools_port()
            targets = self._wait(lambda: [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5)
                                          .json() if t.get("type") == "page"], "a page target")
            self.ws = self._exits.enter_context(
                connect(targets[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout))
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def _wait(self, cond: Any, what: str) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
                value = cond()
                if value:
                    return value
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium: no {what} within {self.timeout:g} s")
            time.sleep(0.05)

    def _devtools_port(self) -> int:
        path = self.profile / "DevToolsActivePort"
        text = self._wait(lambda: path.exists() and path.read_text().strip(), "DevToolsActivePort")
        return int(text.splitlines()[0])

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result (events in between are skipped)."""
        assert self.ws is not None
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def eval(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (promises awaited); return its JSON value."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        self.call("Page.navigate", url=url)
        self._wait(lambda: self.eval("document.readyState") == "complete", f"load of {url}")

    def wait_for(self, expression: str, what: str, timeout: float | None = None) -> Any:
        """Poll ``expression`` in the page until it is truthy; return it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page: {what} not seen within {timeout or self.timeout:g} s")
            time.sleep(0.1)

    def screenshot(self, path: Path, *, full: bool = False) -> Path:
        """Save a PNG of the viewport (or of the whole page with ``full``)."""
        result = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._exits.close()
        self.ws = None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # chromium and its helpers: our own session
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
