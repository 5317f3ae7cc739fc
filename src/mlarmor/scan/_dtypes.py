"""Whether a pickled NumPy dtype holds Python objects anywhere, from its pickled state alone.

joblib writes an array's raw bytes inline after its ``NumpyArrayWrapper``, except when
``dtype.hasobject``: then the array is a pickle of its own, which ``joblib.load`` unpickles. A
structured dtype holds objects when any field does, at any nesting, or through a subarray; and
numpy takes ``hasobject`` from the flags stored in the pickled state (bit 0), whatever the fields
say. The union of all of these is what may hold objects: fail closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["dtype_holds_objects"]

_HASOBJECT = 0x01
_MAX_NESTING = 64

Inspect = Callable[[Any], tuple[str | None, Any]]
"""``inspect(dtype) -> (type code such as 'V24' or '|O', pickled BUILD state or None)``."""


def dtype_holds_objects(dtype: Any, inspect: Inspect, _depth: int = 0) -> bool:
    """Whether the pickled dtype ``dtype`` may hold objects (in a field, a subarray, or by its flags).

    The state of a pickled ``numpy.dtype`` is ``(version, byteorder, subarray, names, fields,
    elsize, alignment, flags[, metadata])``; ``fields`` maps a name to ``(dtype, offset[, title])``
    and ``subarray`` is ``(base dtype, shape)``.
    """
    if _depth > _MAX_NESTING:
        return True  # nesting no real dtype has: fail closed
    code, state = inspect(dtype)
    if code is not None and code.lstrip("<>|=")[:1] == "O":
        return True
    if not isinstance(state, tuple):
        return False
    flags = state[7] if len(state) >= 8 else None
    if isinstance(flags, int) and not isinstance(flags, bool) and flags & _HASOBJECT:
        return True
    subarray = state[2] if len(state) > 2 else None
    if isinstance(subarray, tuple) and subarray and dtype_holds_objects(subarray[0], inspect, _depth + 1):
        return True
    fields = state[4] if len(state) > 4 else None
    if isinstance(fields, dict):
        for spec in fields.values():
            if isinstance(spec, tuple) and spec and dtype_holds_objects(spec[0], inspect, _depth + 1):
                return True
    return False
