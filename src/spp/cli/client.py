"""A small REST client for spp-ctl (SPEC section 5); the CLI talks nothing else.

Every failure becomes :class:`CliError` with a message fit for the user: the
text body spp-ctl sent (``command error: ...``), or what went wrong on the way
(``cannot reach spp-ctl at ...``).  Never a traceback.
"""

from __future__ import annotations

from typing import Any

import httpx


class CliError(Exception):
    """A command failed; ``str(exc)`` is the message to print."""


def normalize_server(text: str, default_port: int = 7777) -> str:
    """``HOST[:PORT]`` → ``HOST:PORT``; :class:`CliError` explains bad input."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"invalid server {text!r}: expected HOST[:PORT], e.g. 127.0.0.1:7777")
    return f"{host}:{port}"


class RestClient:
    """Requests to one spp-ctl node ``HOST:PORT`` (optionally with a bearer token)."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 40.0) -> None:
        self.server = normalize_server(server)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Connecting fails fast; a reply may take as long as spp-ctl's own --timeout
        # (it answers 503 then), so reads wait longer than any sensible --timeout.
        self._http = httpx.Client(base_url=f"http://{self.server}/v1",
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), headers=headers)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; return the decoded JSON body, or None for 204.

        Raises :class:`CliError` with spp-ctl's message on any error status,
        and when spp-ctl cannot be reached.
        """
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach spp-ctl at {self.server}: {exc}") from None
        if response.status_code == 204:
            return None
        if response.status_code >= 400:
            text = response.text.strip() or response.reason_phrase
            raise CliError(text)
        try:
            return response.json()
        except ValueError:
            raise CliError(f"spp-ctl answered {method} {path} with non-JSON: {response.text[:80]!r}") from None

    def metrics_text(self) -> str:
        """spp-ctl's ``GET /metrics`` (Prometheus text), or :class:`CliError`."""
        try:
            response = self._http.get(f"http://{self.server}/metrics")
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach spp-ctl at {self.server}: {exc}") from None
        if response.status_code != 200:
            raise CliError(response.text.strip() or f"GET /metrics: {response.status_code}")
        return response.text

    def get(self, path: str) -> Any:
        """``GET /v1{path}``."""
        return self.request("GET", path)

    def put(self, path: str, body: dict[str, Any]) -> None:
        """``PUT /v1{path}`` with a JSON body (a 204 is expected)."""
        self.request("PUT", path, body)

    def post(self, path: str, body: dict[str, Any]) -> None:
        """``POST /v1{path}`` with a JSON body."""
        self.request("POST", path, body)

    def delete(self, path: str) -> None:
        """``DELETE /v1{path}``."""
        self.request("DELETE", path)
