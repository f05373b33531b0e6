"""Docstring pieces shared by the plotting functions (written once, injected)."""

from __future__ import annotations

AX_RETURN = """\
    ax
        Axes to draw into; a new figure when ``None``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    The Axes, or the Figure when ``return_fig=True``.
"""


def shared_docs(func):
    """Replace the ``{ax_return}`` placeholder in ``func``'s docstring with :data:`AX_RETURN`."""
    if func.__doc__:
        func.__doc__ = func.__doc__.replace("    {ax_return}\n", AX_RETURN)
    return func
