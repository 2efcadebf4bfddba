"""Request bodies of the REST API (pydantic models).

The field checks reuse :mod:`spp.ctl.commands`, so REST accepts exactly what
the core accepts.  A failing check raises a pydantic error whose message is
the core's message (e.g. ``must be TYPE:N with TYPE one of ...``); the REST
layer reports it as ``invalid body: field 'port': <message>``.  Unknown extra
fields are ignored (SPP's CLI sends a few).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from spp.ctl import commands
from spp.ctl.errors import InvalidArgument
from spp.lang.base import COMPONENT_TYPES, CORE_MAX, PCP_MAX, VID_MAX, component_type

T = TypeVar("T")


def _checked(check: Callable[[object], T]) -> BeforeValidator:
    """Adapt a ``commands.check_*`` function to a pydantic validator."""

    def validate(value: object) -> T:
        try:
            return check(value)
        except InvalidArgument as exc:
            raise PydanticCustomError("spp_invalid", exc.message) from None

    return BeforeValidator(validate)


def lang_field(check: Callable[[object], object]) -> BeforeValidator:
    """A pydantic validator running a :mod:`spp.lang` check; the value is kept as given."""

    def run(value: object) -> object:
        commands.checked(lambda: check(value))
        return value

    return _checked(run)


def _port(value: object) -> str:
    commands.check_port("port", value)
    assert isinstance(value, str)
    return value


Port = Annotated[
    str,
    _checked(_port),
    Field(description="Resource id TYPE:N, or phy:NnqQ for a queue of a phy port."),
]
Name = Annotated[
    str,
    _checked(lambda v: commands.check_name("name", v)),
    Field(description="1-64 visible ASCII characters, no spaces."),
]
MacAddress = Annotated[
    str,
    _checked(lambda v: commands.check_mac("mac_address", v)),
    Field(description="XX:XX:XX:XX:XX:XX or 'default'."),
]
CoreId = Annotated[int, _checked(lambda v: commands.check_int("core", v, 0, CORE_MAX))]
ClientId = Annotated[int, _checked(lambda v: commands.check_int("client_id", v, 0, commands.CLIENT_ID_MAX))]
VlanId = Annotated[
    int,
    _checked(lambda v: commands.check_int("vlan", v, 0, VID_MAX)),
    Field(description="0-4095, as an integer or a decimal string."),
]
Pcp = Annotated[int, _checked(lambda v: commands.check_int("pcp", v, 0, PCP_MAX))]


def _component_type(process: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        return commands.checked(lambda: component_type(value, process, field="type"))

    return check


VfComponentType = Annotated[str, _checked(_component_type("vf")),
                            Field(json_schema_extra={"enum": list(COMPONENT_TYPES["vf"])})]
MirrorComponentType = Annotated[str, _checked(_component_type("mirror")),
                                Field(json_schema_extra={"enum": list(COMPONENT_TYPES["mirror"])})]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class VfComponentBody(_Body):
    """``POST /v1/vfs/{id}/components``."""

    name: Name
    core: CoreId
    type: VfComponentType


class MirrorComponentBody(_Body):
    """``POST /v1/mirrors/{id}/components``."""

    name: Name
    core: CoreId
    type: MirrorComponentType


class VlanBody(_Body):
    """The ``vlan`` object of a port body.

    ``{}`` and operation ``none`` mean no VLAN option; ``add`` needs ``id``
    and ``pcp``.
    """

    operation: Literal["add", "del", "none"] | None = None
    id: VlanId | None = None
    pcp: Pcp | None = None

    @model_validator(mode="after")
    def _add_needs_id_and_pcp(self) -> VlanBody:
        if self.operation == "add" and (self.id is None or self.pcp is None):
            raise PydanticCustomError("spp_invalid", "'id' and 'pcp' are required when operation is 'add'")
        return self

    def tag(self) -> commands.VlanTag | None:
        """The core's VLAN option, or None for no option."""
        if self.operation is None or self.operation == "none":
            return None
        return commands.VlanTag(self.operation, self.id or 0, self.pcp or 0)


class VfPortBody(_Body):
    """``PUT /v1/vfs/{id}/components/{name}/ports``."""

    action: Literal["attach", "detach"]
    port: Port
    dir: Literal["rx", "tx"]
    vlan: VlanBody | None = None


class MirrorPortBody(_Body):
    """``PUT /v1/mirrors/{id}/components/{name}/ports``.

    ``vlan`` is tolerated only when it asks for nothing (``{}`` or ``none``).
    """

    action: Literal["attach", "detach"]
    port: Port
    dir: Literal["rx", "tx"]
    vlan: VlanBody | None = None

    @field_validator("vlan")
    @classmethod
    def _no_vlan_option(cls, vlan: VlanBody | None) -> VlanBody | None:
        if vlan is not None and vlan.tag() is not None:
            raise PydanticCustomError("spp_invalid", "spp_mirror ports take no VLAN option")
        return vlan


class ClassifierBody(_Body):
    """``PUT /v1/vfs/{id}/classifier_table``; ``vlan`` is required for type ``vlan``."""

    action: Literal["add", "del"]
    type: Literal["mac", "vlan"]
    mac_address: MacAddress
    port: Port
    vlan: VlanId | None = None

    @model_validator(mode="after")
    def _vlan_needs_vid(self) -> ClassifierBody:
        if self.type == "vlan" and self.vlan is None:
            raise PydanticCustomError("spp_invalid", "field 'vlan': required when type is 'vlan'")
        return self


class PrimaryPortBody(_Body):
    """``PUT /v1/primary/ports``."""

    action: Literal["add", "del"]
    port: Port


class LaunchBody(BaseModel):
    """``PUT /v1/primary/launch``: the whole body is passed on to the primary."""

    model_config = ConfigDict(extra="allow")

    proc_name: Name
    client_id: ClientId
    eal: dict[str, Any] = Field(default_factory=dict)
    app: dict[str, Any] = Field(default_factory=dict)
