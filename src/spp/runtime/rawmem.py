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
