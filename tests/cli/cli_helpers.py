"""Helpers for CLI tests: a real spp-ctl in a thread on free ports, and fake processes attached to it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from spp.ctl.server import CtlConfig, CtlService
from spp.testing import wait_for
from spp.testing.fake_secondary import FakePrimary, FakeSecondary

HOST = "127.0.0.1"


@dataclass
class Ctl:
    """A running spp-ctl and the fakes attached to it."""

    service: CtlService
    fakes: list[FakeSecondary | FakePrimary] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"{HOST}:{self.service.ports[2]}"

    def processes(self) -> list[dict[str, object]]:
        token = self.service.config.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        result: list[dict[str, object]] = httpx.get(f"http://{self.server}/v1/processes", timeout=5,
                                                    headers=headers).json()
        return result

    def secondary(self, client_id: int, kind: str) -> FakeSecondary:
        fake = FakeSecondary(HOST, self.service.ports[1], client_id, kind)
        self.fakes.append(fake)
        fake.connect()
        wait_for(lambda: {"type": kind, "client-id": client_id} in self.processes(), timeout=5)
        return fake

    def primary(self) -> FakePrimary:
        fake = FakePrimary(HOST, self.service.ports[0])
        self.fakes.append(fake)
        fake.connect()
        wait_for(lambda: {"type": "primary"} in self.processes(), timeout=5)
        return fake

    def close_fakes(self) -> None:
        for fake in self.fakes:
            fake.disconnect()
        self.fakes.clear()
        wait_for(lambda: self.processes() == [], timeout=5)


@contextmanager
def running_ctl(token: str | None = None) -> Iterator[Ctl]:
    """spp-ctl on free ports in a background thread (reply timeout 2 s)."""
    service = CtlService(CtlConfig(bind_addr=HOST, primary_port=0, secondary_port=0, api_port=0, timeout=2.0,
                                   token=token))
    thread = threading.Thread(target=lambda: asyncio.run(service.run()), daemon=True)
    thread.start()
    assert service.ready.wait(10)
    running = Ctl(service)
    try:
        yield running
    finally:
        running.close_fakes()
        service.stop()
        thread.join(10)
