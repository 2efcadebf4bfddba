"""Arrays over raw addresses inside compiled code.

The compiled worker loop reaches memory that is not one of its arguments (a vhost
guest's memory, mapped by the port's control thread; one mapping per port, any
number of ports) through the address and size the plan recorded.  ``numba.carray``
cannot be used there: the loop is compiled without numba's runtime, and carray's
implementation returns a new array from a helper, which that mode forbids.
:func:`raw_array` builds the array struct in place instead (no owner, no reference
count).  The caller guarantees the memory stays mapped while the array is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from numba import types
from numba.core import cgutils as _cgutils
from numba.extending import intrinsic
from numba.np import arrayobj as _arrayobj

cgutils: Any = _cgutils  # numba's internals are untyped
populate_array: Any = _arrayobj.populate_array


@intrinsic
def _raw_array(typingctx: Any, addr: Any, n: Any, dtype: Any) -> Any:
    """``raw_array(addr, n, np.uint16)``: a C-contiguous 1-D array of ``n`` items at ``addr``."""
    if not isinstance(addr, types.Integer) or not isinstance(n, types.Integer):
        return None
    if not isinstance(dtype, types.NumberClass):
        return None
    dt = dtype.instance_type
    retty = types.Array(dt, 1, "C")
    sig = retty(addr, n, dtype)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        a, k, _ = args
        ary = context.make_array(retty)(context, builder)
        llty = context.get_data_type(dt)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(llty))
        ptr = builder.inttoptr(a, llty.as_pointer())
        k = context.cast(builder, k, signature.args[1], types.intp)
        populate_array(ary, data=ptr, shape=cgutils.pack_array(builder, [k]),
                       strides=cgutils.pack_array(builder, [itemsize]), itemsize=itemsize, meminfo=None)
        return ary._getvalue()

    return sig, codegen


raw_array = cast("Callable[[int, int, Any], Any]", _raw_array)


@intrinsic
def _copy_bytes(typingctx: Any, dst: Any, doff: Any, src: Any, soff: Any, n: Any) -> Any:
    """``copy_bytes(dst, doff, src, soff, n)``: ``n`` bytes from ``src`` to ``dst`` (uint8 arrays,
    C-contiguous, any number of dimensions; offsets count bytes from the first element)."""
    for a in (dst, src):
        if not isinstance(a, types.Array) or a.dtype != types.uint8 or a.layout != "C":
            return None
    if not all(isinstance(x, types.Integer) for x in (doff, soff, n)):
        return None
    sig = types.void(dst, doff, src, soff, n)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        d, do, s, so, k = args
        dary = context.make_array(signature.args[0])(context, builder, d)
        sary = context.make_array(signature.args[2])(context, builder, s)
        dp = builder.gep(dary.data, [context.cast(builder, do, signature.args[1], types.intp)])
        sp = builder.gep(sary.data, [context.cast(builder, so, signature.args[3], types.intp)])
        count = context.cast(builder, k, signature.args[4], types.intp)
        cgutils.raw_memcpy(builder, dp, sp, count, context.get_constant(types.intp, 1))
        return context.get_dummy_value()

    return sig, codegen


#: Copy bytes between uint8 arrays with one ``memcpy`` (the two ranges must not overlap).
copy_bytes = cast("Callable[[Any, int, Any, int, int], None]", _copy_bytes)
