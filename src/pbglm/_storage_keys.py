"""Validation of the names users choose for what a function writes (``key_added=``)."""

from __future__ import annotations

from collections.abc import Mapping

from anndata import AnnData


def check_key_added(adata: AnnData, key_added, *, slot: str) -> str:
    """``key_added`` as a name that h5ad and zarr can store and that is not a stored fit's key.

    Parameters
    ----------
    adata
        The AnnData written to.
    key_added
        The name asked for.
    slot
        What is written under it (for the error message), e.g. ``"layers"``.

    Raises
    ------
    TypeError
        ``key_added`` is not a string.
    ValueError
        Empty, containing ``/`` (a group separator in h5ad and zarr), or the key of a stored fit in
        ``.uns`` (which the record written beside the result would overwrite).
    """
    if not isinstance(key_added, str):
        raise TypeError(f"key_added must be a string, got {type(key_added).__name__}.")
    if not key_added or "/" in key_added or key_added.strip() != key_added:
        raise ValueError(
            f"key_added={key_added!r} cannot be stored in .{slot} (h5ad/zarr names must be non-empty, without "
            "'/' and without surrounding spaces); choose another name."
        )
    rec = adata.uns.get(key_added)
    if isinstance(rec, Mapping) and ("design_columns" in rec or "groups" in rec):
        raise ValueError(
            f"key_added={key_added!r} is the key of a stored pbglm fit (adata.uns[{key_added!r}]); choose another name."
        )
    return key_added
