"""A few libc calls for compiled code: the kernel drivers' system calls inside the worker loop.

The worker loop is compiled without numba's runtime and cached on disk.  A ctypes or
cffi function pointer would be a "dynamic global" (numba refuses to cache such code),
so the calls are declared by symbol name instead: the generated code calls ``sendto``
/ ``read`` / ``write`` of the process's libc, resolved when the code is loaded.

Each returns what the system call returns, or ``-errno`` on failure (so callers never
read ``errno`` themselves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

from llvmlite import ir
from numba import types
from numba.core import cgutils as _cgutils
from numba.extending import intrinsic

cgutils: Any = _cgutils  # numba's internals are untyped

EAGAIN: Final = 11
EINTR: Final = 4
ENXIO: Final = 6
ENODEV: Final = 19
ENETDOWN: Final = 100
EIO: Final = 5
EBADF: Final = 9
EBADFD: Final = 77
MSG_DONTWAIT: Final = 0x40

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VP = ir.IntType(8).as_pointer()


def _ret_or_errno(builder: Any, ret: Any) -> Any:
    """``ret`` if >= 0, else ``-errno`` (read right after the call, in this thread)."""
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I32.as_pointer(), []), "__errno_location")
    out = cgutils.alloca_once_value(builder, ret)
    with builder.if_then(builder.icmp_signed("<", ret, ir.Constant(_I64, 0)), likely=False):
        err = builder.sext(builder.load(builder.call(fn, [])), _I64)
        builder.store(builder.neg(err), out)
    return builder.load(out)


@intrinsic
def _send_kick(typingctx: Any, fd: Any) -> Any:
    """``send_kick(fd)``: ``sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`` (a packet socket's tx ring kick)."""
    if not isinstance(fd, types.Integer):
        return None
    sig = types.int64(fd)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = ir.FunctionType(_I64, [_I32, _VP, _I64, _I32, _VP, _I32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sendto")
        f = context.cast(builder, args[0], signature.args[0], types.int32)
        null = ir.Constant(_VP, None)
        ret = builder.call(fn, [f, null, ir.Constant(_I64, 0), ir.Constant(_I32, MSG_DONTWAIT), null,
                                ir.Constant(_I32, 0)])
        return _ret_or_errno(builder, ret)

    return sig, codegen


def _rw(name: str) -> Any:
    @intrinsic
    def call(typingctx: Any, fd: Any, buf: Any, off: Any, n: Any) -> Any:
        if not isinstance(buf, types.Array) or buf.dtype != types.uint8 or buf.layout != "C":
            return None
        if not all(isinstance(x, types.Integer) for x in (fd, off, n)):
            return None
        sig = types.int64(fd, buf, off, n)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f, b, o, k = args
            ary = context.make_array(signature.args[1])(context, builder, b)
            ptr = builder.bitcast(builder.gep(ary.data, [context.cast(builder, o, signature.args[2], types.intp)]),
                                  _VP)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64, [_I32, _VP, _I64]), name)
            ret = builder.call(fn, [context.cast(builder, f, signature.args[0], types.int32), ptr,
                                    context.cast(builder, k, signature.args[3], types.int64)])
            return _ret_or_errno(builder, ret)

        return sig, codegen

    return call


#: ``send_kick(fd) -> 0 | -errno``.
send_kick = cast("Callable[[int], int]", _send_kick)
#: ``sys_read(fd, buf, off, n)``: read up to ``n`` bytes into the uint8 array ``buf`` at byte ``off``.
sys_read = cast("Callable[[int, Any, int, int], int]", _rw("read"))
#: ``sys_write(fd, buf, off, n)``: write ``n`` bytes of the uint8 array ``buf`` from byte ``off``.
sys_write = cast("Callable[[int, Any, int, int], int]", _rw("write"))
