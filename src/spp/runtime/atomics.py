"""Atomic operations on elements of numpy arrays, usable inside numba-compiled code.

The packet pool, the rings and the port counters live in shared memory and are
touched by several processes at once.  These intrinsics emit LLVM atomic
instructions on one element of a 1-D array, so that, for example, two processes
dropping a reference to the same buffer at the same moment both see a consistent
count.  All operations are sequentially consistent except :func:`load_acquire`
and :func:`store_release`, which give the ordering a single-producer hand-off
needs and nothing more.

They can only be called from ``@numba.njit`` code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context: Any, builder: Any, arrty: Any, arr: Any, idx: Any) -> Any:
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
        context, builder, arrty, ary, [idx], wraparound=False)


def _check(arr: Any) -> bool:
    return isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(arr.dtype, types.Integer)


@intrinsic
def _atomic_add(typingctx: Any, arr: Any, idx: Any, val: Any) -> Any:
    """``old = arr[idx]; arr[idx] += val`` atomically; returns ``old``."""
    if not _check(arr):
        return None
    sig = arr.dtype(arr, types.intp, arr.dtype)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_cas(typingctx: Any, arr: Any, idx: Any, expected: Any, new: Any) -> Any:
    """Compare-and-swap ``arr[idx]``: if it equals ``expected`` store ``new``.

    Returns the value found (equal to ``expected`` exactly when the swap happened).
    """
    if not _check(arr):
        return None
    sig = arr.dtype(arr, types.intp, arr.dtype, arr.dtype)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        res = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(res, 0)

    return sig, codegen


@intrinsic
def _load_acquire(typingctx: Any, arr: Any, idx: Any) -> Any:
    """Read ``arr[idx]`` with acquire ordering (sees writes released before it)."""
    if not _check(arr):
        return None
    sig = arr.dtype(arr, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arrty = signature.args[0]
        ptr = _element_pointer(context, builder, arrty, args[0], args[1])
        align = context.get_abi_sizeof(context.get_value_type(arrty.dtype))
        return builder.load_atomic(ptr, "acquire", align)

    return sig, codegen


@intrinsic
def _store_release(typingctx: Any, arr: Any, idx: Any, val: Any) -> Any:
    """Write ``arr[idx] = val`` with release ordering (earlier writes become visible first)."""
    if not _check(arr):
        return None
    sig = types.void(arr, types.intp, arr.dtype)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arrty = signature.args[0]
        ptr = _element_pointer(context, builder, arrty, args[0], args[1])
        align = context.get_abi_sizeof(context.get_value_type(arrty.dtype))
        builder.store_atomic(args[2], ptr, "release", align)
        return context.get_dummy_value()

    return sig, codegen


# Typed names for callers (the intrinsic objects themselves confuse type checkers).
atomic_add = cast("Callable[[Any, int, int], int]", _atomic_add)
atomic_cas = cast("Callable[[Any, int, int, int], int]", _atomic_cas)
load_acquire = cast("Callable[[Any, int], int]", _load_acquire)
store_release = cast("Callable[[Any, int, int], None]", _store_release)
