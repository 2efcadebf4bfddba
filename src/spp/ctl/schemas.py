"""Shapes of spp-ctl's JSON replies, for ``openapi.json`` (documentation, never a filter).

The routes return what the processes sent (a new key a process adds passes through),
so these models are not applied to responses; :mod:`spp.ctl.docs` puts them into the
OpenAPI document by route (:data:`ROUTE_MODELS`), and ``tests/ctl/test_openapi.py``
checks live replies of a real stack against them.  Every model allows extra keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class PortStats(_Open):
    """A port's counters (shared by every process of the stack); drops by reason, zero ones left out."""

    rx_packets: int
    rx_bytes: int
    tx_packets: int
    tx_bytes: int
    errors: int
    drops: dict[str, int]


class ComponentStats(_Open):
    """A component's own drops by reason (zero ones left out)."""

    drops: dict[str, int]


class Vlan(_Open):
    operation: Literal["add", "del", "none"]
    id: int
    pcp: int


class PortAttachment(_Open):
    """A port as rx or tx of a component."""

    port: str = Field(description="TYPE:N, e.g. phy:0 or ring:3")
    vlan: Vlan
    stats: PortStats | None = None


class Component(_Open):
    """One entry of ``components``: a running component, or ``{"core": N, "type": "unuse"}``."""

    core: int
    type: str = Field(description="forward, merge, classifier, mirror, or unuse for an idle core")
    name: str | None = None
    rx_port: list[PortAttachment] = Field(default_factory=list)
    tx_port: list[PortAttachment] = Field(default_factory=list)
    stats: ComponentStats | None = None


class ClassifierEntry(_Open):
    type: Literal["mac", "vlan"]
    value: str = Field(description="MAC, 'default', or VID/MAC for a vlan entry")
    port: str


class SecondaryStatus(_Open):
    """``GET /v1/mirrors/{client_id}``."""

    client_id: int = Field(alias="client-id")
    ports: list[str]
    master_lcore: int | None = Field(alias="master-lcore")
    components: list[Component]
    state: Literal["compiling", "ready"] | None = Field(
        None, description="spp's addition: 'compiling' until the data path is compiled (commands are taken meanwhile)")


class VfStatus(SecondaryStatus):
    """``GET /v1/vfs/{client_id}``."""

    classifier_table: list[ClassifierEntry]


class ProcessEntry(_Open):
    type: str = Field(description="primary, vf, mirror, ...")
    client_id: int | None = Field(None, alias="client-id", description="absent for the primary")
    error: str | None = Field(None, description="what failed: a launched process that exited, or the error its "
                                                "last status reported")


class Processes(RootModel[list[ProcessEntry]]):
    """``GET /v1/processes``: the primary first, then by type and client id."""


class PortRow(_Open):
    port: str
    stats: PortStats


class PhyPort(PortRow):
    iface: str


class RingPort(PortRow):
    count: int = Field(description="frames waiting")
    size: int


class Pool(_Open):
    n_bufs: int
    free: int
    in_use: int


class LaunchedProcess(_Open):
    proc_name: str
    client_id: int
    pid: int
    alive: bool
    returncode: int | None
    command: str


class PrimaryStatus(_Open):
    """``GET /v1/primary/status``: the primary's ``info`` object."""

    file_prefix: str
    lcores: list[int]
    phy_ports: list[PhyPort]
    ring_ports: list[RingPort]
    ports: list[PortRow] = Field(description="other ports with non-zero counters")
    pool: Pool
    processes: list[LaunchedProcess]


class MirrorStats(_Open):
    packets: int
    filtered: int
    nombuf: int
    full: int
    errors: int


class PortMirror(_Open):
    name: str
    source: str
    destination: str
    direction: Literal["rx", "tx", "both"]
    snaplen: int
    copy_mode: Literal["shallow", "deep"] = Field(alias="copy")
    stats: MirrorStats


class PortMirrors(RootModel[list[PortMirror]]):
    """``GET /v1/port_mirrors``."""


class Core(_Open):
    core_id: int
    lcores: list[int]


class Socket(_Open):
    socket_id: int
    cores: list[Core]


class CpuLayout(RootModel[list[Socket]]):
    """``GET /v1/cpu_layout``."""


class LcoreUsage(_Open):
    lcore_id: int
    busy: float = Field(description="percent of the interval outside idle and iowait")


class CpuUsage(_Open):
    """``GET /v1/cpu_usage``."""

    interval: float
    lcores: list[LcoreUsage]


class Patch(_Open):
    src: str
    dst: str


class NfvStatus(_Open):
    """``GET /v1/nfvs/{client_id}`` (SPP's spp_nfv)."""

    client_id: int = Field(alias="client-id")
    status: str | None = Field(None, description="running or idling")
    ports: list[str] = Field(default_factory=list)
    patches: list[Patch] = Field(default_factory=list)


class PcapStatus(_Open):
    """``GET /v1/pcaps/{client_id}`` (SPP's spp_pcap): ``core`` lists the receive and write roles."""

    client_id: int = Field(alias="client-id")
    status: str | None = None
    core: list[dict[str, Any]] = Field(default_factory=list)


#: ``(method, path)`` → model of the 200 reply.  A new JSON route adds its line here
#: (``tests/ctl/test_openapi.py`` fails for a JSON route without one).
ROUTE_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("get", "/v1/processes"): Processes,
    ("get", "/v1/vfs/{client_id}"): VfStatus,
    ("get", "/v1/mirrors/{client_id}"): SecondaryStatus,
    ("get", "/v1/primary/status"): PrimaryStatus,
    ("get", "/v1/port_mirrors"): PortMirrors,
    ("get", "/v1/cpu_layout"): CpuLayout,
    ("get", "/v1/cpu_usage"): CpuUsage,
    ("get", "/v1/nfvs/{client_id}"): NfvStatus,
    ("get", "/v1/pcaps/{client_id}"): PcapStatus,
}


def json_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(schema, definitions)`` of ``model`` with refs into ``#/components/schemas``."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}", mode="serialization")
    defs = schema.pop("$defs", {})
    return schema, defs
