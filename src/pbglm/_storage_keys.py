"""Validation of the names users choose for a result they read back by name (``key_added=``).

Layers and ``.obsm`` entries written by ``pp.vst``, ``tl.pca`` etc. are read by users directly
(``adata.layers["vst"]``), so their names are not percent-encoded as fit records are (see
"Storage names" in :mod:`pbglm._io`): a name that would need encoding is refused instead.
"""

from __future__ import annotations

from anndata import AnnData

from ._io import encode_name, stored_keys


def check_key_added(adata: AnnData, key_added, *, slot: str) -> str:
    """``key_added`` as a name that h5ad and zarr can store as given and that is not a stored fit's key.

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
        Empty, holding characters h5ad or zarr cannot keep in a name (``/``, ``\\``, ``%``, ``:``,
        control characters, a leading ``.``, a trailing ``.`` or space, ...), or the key of a stored
        fit (whose record the result written beside it would overwrite).
    """
    if not isinstance(key_added, str):
        raise TypeError(f"key_added must be a string, got {type(key_added).__name__}.")
    if not key_added or key_added.strip() != key_added or encode_name(key_added) != key_added:
        raise ValueError(
            f"key_added={key_added!r} cannot be stored as given in .{slot} (h5ad/zarr names must be non-empty, "
            "without '/', '\\', '%', ':', control characters or surrounding spaces); choose another name."
        )
    if key_added in stored_keys(adata):
        raise ValueError(
            f"key_added={key_added!r} is the key of a stored pbglm fit (adata.uns[{key_added!r}]); choose another name."
        )
    return key_added
