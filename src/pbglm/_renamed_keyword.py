"""Keep a renamed keyword argument working for one release, with a deprecation warning."""

from __future__ import annotations

import functools

from ._warn import warn


def renamed_keyword(old: str, new: str, *, since: str = "0.2"):
    """Decorate a function whose keyword ``old`` is now called ``new``.

    Calls that pass ``old=`` keep working and emit a :class:`FutureWarning` (shown to users by
    default, unlike ``DeprecationWarning``) naming the new keyword; passing both is a TypeError.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(
                        f"{func.__name__}() got both {old}= and {new}=; pass only {new}= ({old}= is its old name)."
                    )
                warn(
                    f"{func.__name__}({old}=...) is deprecated since pbglm {since}: functions that read a stored "
                    f"fit take {new}= (scanpy's convention; {old}= names what a function writes). "
                    f"Use {new}={kwargs[old]!r}.",
                    FutureWarning,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorate
