"""Errors raised by the spp-ctl core.

The core (:mod:`spp.ctl.controller` and below) raises only these; the REST
layer maps each class to one HTTP status code:

================== ======
error              status
================== ======
InvalidArgument    400
CommandError       400
NoSuchProcess      404
NoSuchObject       404
ProcessUnavailable 503 (and its subclasses)
BadReply           502
================== ======
"""

from __future__ import annotations


class CtlError(Exception):
    """Base class of every error the spp-ctl core raises on purpose.

    ``str(error)`` is a one-line message fit to show to a user.
    """


class InvalidArgument(CtlError):
    """An argument of an operation is malformed or out of range.

    ``field`` names the offending argument (``"port"``, ``"vlan.id"``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field '{field}': {message}")
        self.field = field
        self.message = message


class NoSuchProcess(CtlError):
    """No process of that type and client id is connected."""


class NoSuchObject(CtlError):
    """The process answered that the named object (e.g. a port mirror) does not exist."""


class ProcessUnavailable(CtlError):
    """The process did not answer in time, or its connection went away.

    The request may or may not have taken effect in the process.
    """


class ProcessTimeout(ProcessUnavailable):
    """The process did not answer within the timeout; its connection is dropped."""


class ProcessDisconnected(ProcessUnavailable):
    """The connection to the process closed before its reply arrived."""


class CommandError(CtlError):
    """The process answered the command with an error.

    ``message`` is the process's own ``error_details.message``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadReply(CtlError):
    """The process answered, but the reply does not have the expected shape."""
