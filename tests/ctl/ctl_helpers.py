"""Helpers for spp-ctl tests: a real spp-ctl on free ports in a thread, fakes attached to it, an HTTP client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from spp.ctl.server import CtlConfig, CtlService
from spp.testing.fake_secondary import FakePrimary, FakeSecondary, wait_until

HOST = "127.0.0.1"


class Ctl:
    """A running spp-ctl, plus helpers to attach fakes and talk REST to it."""

    def __init__(self, service: CtlService) -> None:
        self.service = service
        self.primary_port, self.secondary_port, self.api_port = service.ports
        self.url = f"http://{HOST}:{self.api_port}"
        token = service.config.token
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self.http = httpx.Client(base_url=self.url, timeout=10.0, headers=headers)
        self._fakes: list[FakeSecondary | FakePrimary] = []

    def processes(self) -> list[dict[str, Any]]:
        response = self.http.get("/v1/processes")
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result

    def wait_listed(self, entry: dict[str, Any], present: bool = True) -> None:
        """Poll /v1/processes until ``entry`` is (or is not) listed."""
        wait_until(lambda: (entry in self.processes()) == present)

    def secondary(self, client_id: int, process_type: str = "vf", **options: Any) -> FakeSecondary:
        """A connected fake secondary, already listed by spp-ctl."""
        fake = FakeSecondary(HOST, self.secondary_port, client_id, process_type, **options)
        self._fakes.append(fake)
        fake.connect()
        self.wait_listed({"type": process_type, "client-id": client_id})
        return fake

    def primary(self, **options: Any) -> FakePrimary:
        """A connected fake primary, already listed by spp-ctl."""
        fake = FakePrimary(HOST, self.primary_port, **options)
        self._fakes.append(fake)
        fake.connect()
        self.wait_listed({"type": "primary"})
        return fake

    def close_fakes(self) -> None:
        for fake in self._fakes:
            fake.disconnect()
        self._fakes.clear()
        wait_until(lambda: self.processes() == [])

    def close(self) -> None:
        self.close_fakes()
        self.http.close()


@contextmanager
def running_ctl(timeout: float = 2.0, token: str | None = None) -> Iterator[Ctl]:
    """Run a CtlService on free ports in a background thread."""
    config = CtlConfig(bind_addr=HOST, primary_port=0, secondary_port=0, api_port=0, token=token, timeout=timeout)
    service = CtlService(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(service.run())
        except BaseException as exc:  # reported by the fixture
            errors.append(exc)

    thread = threading.Thread(target=run, name="spp-ctl", daemon=True)
    thread.start()
    if not service.ready.wait(10.0):
        service.stop()
        raise RuntimeError(f"spp-ctl did not start: {errors}")
    ctl = Ctl(service)
    try:
        yield ctl
    finally:
        ctl.close()
        service.stop()
        thread.join(10.0)
        assert not thread.is_alive(), "spp-ctl did not stop"
        assert not errors, errors
