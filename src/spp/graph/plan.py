"""What a worker runs: its components and their port attachments (immutable; published whole)."""

from __future__ import annotations

from dataclasses import dataclass

from spp.components.base import Component
from spp.components.vlan import NO_VLAN, VlanOp
from spp.ports.base import Port

#: Frames per burst (receive size, and the size at which a tx buffer is sent).
BURST = 32
#: Passes over the components per call of the compiled loop (between control checks), and
#: for plans that call Python hooks (each pass costs microseconds there: component drops and
#: template cursors, settled after a call, then lag by at most a few milliseconds).
NATIVE_ITERS = 256
HOOK_ITERS = 16


@dataclass(frozen=True)
class Attachment:
    """A port attached to a component in one direction, with its VLAN operation."""

    port: Port
    vlan: VlanOp = NO_VLAN


@dataclass(frozen=True)
class ComponentPlan:
    component: Component
    rx: tuple[Attachment, ...] = ()
    tx: tuple[Attachment, ...] = ()

    @property
    def ready(self) -> bool:
        return self.component.ready(len(self.rx), len(self.tx))


@dataclass(frozen=True)
class WorkerPlan:
    components: tuple[ComponentPlan, ...] = ()
    generation: int = 0
