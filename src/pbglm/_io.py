"""The only core module that touches AnnData slots: read counts and stored fits in, write results out.

Layout written by :func:`pbglm.tl.fit` / :func:`pbglm.tl.test` (``K`` = ``encode_name(key_added)``):

without ``groupby``
    ``.obs[f"{K}_size_factor"]``; ``.var[f"{K}_base_mean"]``, ``.var[f"{K}_dispersion"]``
    and one ``.var[f"{K}_<field>"]`` per further per-gene field; ``.varm[f"{K}_coef"]``,
    ``.varm[f"{K}_se"]`` (DataFrames, genes x coefficients, log2 scale),
    ``.varm[f"{K}_cov"]`` (genes x p*p covariance, log2 scale, row-major);
    ``.varm[f"{K}_test_<N>"]`` per test (``N`` = ``encode_name(name)``); ``.uns[K]``, with
    ``.uns[K]["tests"][N]`` per test.
with ``groupby``
    per group (``G`` = ``encode_name(group)``): ``.varm[f"{K}_genes:{G}"]`` (a DataFrame of the
    per-gene fields), ``.varm[f"{K}_coef:{G}"]``, ``.varm[f"{K}_se:{G}"]``, ``.varm[f"{K}_cov:{G}"]``,
    ``.varm[f"{K}_test_<N>:{G}"]``; size factors in ``.obs[f"{K}_size_factor"]`` (NaN for
    samples of groups that were not fit); ``.uns[K]["groups"][G]`` per group (with its own
    ``["tests"][N]``), ``.uns[K]["skipped"][G]`` per group that could not be fit.

Storage names
    Names users choose (``key_added``, test names, groupby levels, factor names and levels in
    coefficient names) become HDF5 / zarr node names: ``.uns`` dict keys, ``.varm`` / ``.var`` /
    ``.obs`` / ``.layers`` keys and DataFrame column names. :func:`encode_name` maps each to a
    node name both formats hold, by percent-encoding (``%XX``, the UTF-8 bytes in upper-case hex)

    * ``/ \\ % : * ? " < > |`` (``/`` nests groups in h5ad and is refused by zarr, ``\\`` nests
      zarr groups, ``:`` separates the group in ``.varm`` keys, ``%`` is the escape itself, the
      others are not allowed in file names on Windows, where zarr stores are directories);
    * control and other non-printing characters (Unicode category ``C``);
    * a leading ``.`` (zarr refuses ``.`` and ``..``; HDF5 reads ``.`` as the group itself) and a
      trailing ``.`` or space (dropped from file names on Windows).

    Everything else (letters of any script, digits, spaces, ``_ - + [ ] ( ) ,`` ...) is kept,
    so ordinary names are stored unchanged and files of earlier versions still read. The
    encoding is reversible (:func:`decode_name` is ``urllib.parse.unquote``) and injective, so
    ``"a/b"`` and ``"a_b"`` never share a slot. Empty names and names containing NUL are
    refused (HDF5 cannot hold them). Records also keep the user's name as given (``"key"`` in
    ``.uns[K]``, ``"name"`` in a test's record, ``"group"`` in a group's record), and readers
    (``get``, ``pl``, ``tl.test``) take and show the user's names. File systems that ignore case
    (macOS, Windows) still merge zarr nodes that differ only in case, as for any AnnData key.

Ownership
    ``.uns[K]["slots"]`` lists every ``obs`` / ``var`` / ``varm`` / ``layers`` key the fit and
    its tests wrote. Refitting ``key_added`` removes exactly those (never another fit's slots,
    also when one key is a prefix of another), and a write that would take a slot recorded by
    another fit raises a ValueError instead of overwriting it. Fits written before ``slots``
    existed are cleared by prefix, leaving alone slots under a longer stored key.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._design import Design
from ._methods._result import FitResult

logger = logging.getLogger("pbglm")

TEST_COLUMNS = ["base_mean", "log2fc", "lfc_se", "stat", "pvalue", "padj"]


def _only_count_layer(adata: AnnData) -> str:
    """With ``X`` empty: the only layer of non-negative integer values (not one pbglm wrote), or an error."""
    written = set()  # layers of replaced outlier counts written by tl.fit (under any key)
    for rec in adata.uns.values():
        if isinstance(rec, dict):
            for r in [rec, *(rec.get("groups") or {}).values()]:
                if isinstance(r, dict) and isinstance(r.get("replaced_counts_layer"), str):
                    written.add(r["replaced_counts_layer"])
    layers = [name for name in adata.layers.keys() if name not in written]
    integer = []
    for name in layers:
        M = adata.layers[name]
        if hasattr(M, "compute") and not np.issubdtype(M.dtype, np.integer):
            continue  # a lazy float layer is not read just to guess
        v = M.data if sparse.issparse(M) else np.asarray(M)
        if np.issubdtype(v.dtype, np.number) and (v.size == 0 or (np.isfinite(v).all() and v.min() >= 0
                                                                  and np.array_equal(v, np.round(v)))):
            integer.append(name)
    if len(integer) == 1:
        logger.info("adata.X is empty: reading the counts from adata.layers[%r], the only layer of integer "
                    "counts (pass layer= to choose another).", integer[0])
        return integer[0]
    if not layers:
        raise ValueError("adata.X is empty and there are no layers: the AnnData holds no counts.")
    if integer:
        raise ValueError(
            f"adata.X is empty and several layers hold integer values ({', '.join(map(repr, integer))}); pass "
            "layer= naming the one with the raw counts (sc.get.aggregate(..., func='sum') writes them to 'sum')."
        )
    raise ValueError(
        f"adata.X is empty and no layer holds raw integer counts (layers: {', '.join(map(repr, layers))}); pass "
        "layer= naming the layer with the raw counts, or aggregate raw counts (e.g. sc.get.aggregate(..., "
        "func='sum', layer='counts'))."
    )


def get_matrix(adata: AnnData, layer: str | None):
    """``adata.X`` or ``adata.layers[layer]`` with a clear error when the layer is missing.

    When ``layer`` is None and ``X`` is empty (``sc.get.aggregate(..., func="sum")`` writes its sums
    to ``layers["sum"]``), the only layer holding non-negative integer values is used, with a log
    line saying which; none or several such layers is an error listing the layers.
    """
    if layer is None:
        return adata.X if adata.X is not None else adata.layers[_only_count_layer(adata)]
    if layer not in adata.layers:
        layers = list(adata.layers.keys())
        available = ", ".join(map(repr, layers)) if layers else "none"
        raise KeyError(f"Layer {layer!r} not found; available layers: {available}.")
    return adata.layers[layer]


def read_counts(adata: AnnData, layer: str | None = None) -> np.ndarray:
    """Counts as a (genes x samples) float64 C-contiguous array, validated.

    Raises
    ------
    ValueError
        NaN, negative or non-integer values (with the fix: pass raw counts, e.g. ``layer="counts"``).
    """
    if layer is None and adata.X is None:
        layer = _only_count_layer(adata)
    X = get_matrix(adata, layer)
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if hasattr(X, "to_memory") and not sparse.issparse(X):  # a backed (on-disk) sparse matrix
        X = X.to_memory()
    if sparse.issparse(X):
        values = X.data
        dense = X.toarray()
    else:
        if hasattr(X, "compute"):
            X = X.compute()
        dense = np.asarray(X)
        values = dense  # (ravel would copy a non-C-ordered matrix)
    if not np.issubdtype(dense.dtype, np.number):
        raise ValueError(f"{where} is not numeric (dtype {dense.dtype}); pass raw integer counts.")
    if np.issubdtype(values.dtype, np.floating):
        if np.isnan(values).any():
            raise ValueError(f"{where} contains NaN counts; remove those genes/samples or replace the NaN values.")
        if np.isinf(values).any():
            raise ValueError(f"{where} contains infinite counts; pass raw integer counts.")
        if np.any(values != np.round(values)):
            raise ValueError(
                f"{where} contains non-integer values (e.g. normalised or log-transformed data). "
                "pbglm needs raw counts: pass layer= naming the layer with raw counts (e.g. layer='counts')."
            )
    if values.size and values.min() < 0:
        raise ValueError(f"{where} contains negative counts; pass raw non-negative integer counts.")
    return np.ascontiguousarray(dense.T, dtype=np.float64)


_RESERVED = frozenset('/\\%:*?"<>|')


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def encode_name(name: str) -> str:
    """The storage node name of a user's name (see "Storage names" in the module docstring).

    Raises
    ------
    TypeError
        ``name`` is not a string.
    ValueError
        ``name`` is empty or contains a NUL character.
    """
    if not isinstance(name, str):
        raise TypeError(f"Names of stored results must be strings, got {type(name).__name__} ({name!r}).")
    if not name:
        raise ValueError("Empty names cannot be stored in h5ad or zarr; give a non-empty name.")
    if "\x00" in name:
        raise ValueError(f"The name {name!r} contains a NUL character, which h5ad cannot store; remove it.")
    last = len(name) - 1
    out = []
    for i, ch in enumerate(name):
        if (
            ch in _RESERVED
            or unicodedata.category(ch)[0] == "C"
            or (i == 0 and ch == ".")
            or (i == last and ch in ". ")
        ):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def decode_name(stored) -> str:
    """The user's name of a storage node name written by :func:`encode_name`."""
    return unquote(str(stored), errors="surrogatepass")


def uns_key(key: str) -> str:
    """The ``.uns`` key of a fit stored under ``key`` (``key_added``)."""
    return encode_name(key)


def column_key(key: str, field: str) -> str:
    """Name of a ``.obs`` / ``.var`` / ``.layers`` entry of a fit, e.g. ``pbglm_size_factor``."""
    return f"{encode_name(key)}_{field}"


def varm_key(key: str, what: str, group: str | None = None) -> str:
    """Name of a ``.varm`` entry, e.g. ``pbglm_coef`` or ``pbglm_test_x:Bcell``."""
    base = f"{encode_name(key)}_{encode_name(what)}"
    return base if group is None else f"{base}:{encode_name(str(group))}"


def _legacy_varm_key(key: str, what: str, group: str | None) -> str:
    """The ``.varm`` key versions before the storage encoding wrote (``/`` became ``_``)."""
    return f"{key}_{what}" + ("" if group is None else ":" + str(group).replace("/", "_"))


def read_varm(adata: AnnData, key: str, what: str, group: str | None = None):
    """A ``.varm`` entry of a fit, also from files written before the storage encoding."""
    slot = varm_key(key, what, group)
    if slot not in adata.varm:
        legacy = _legacy_varm_key(key, what, group)
        if legacy in adata.varm:
            return adata.varm[legacy]
    return adata.varm[slot]


def has_varm(adata: AnnData, key: str, what: str, group: str | None = None) -> bool:
    """Whether a ``.varm`` entry of a fit exists (see :func:`read_varm`)."""
    return varm_key(key, what, group) in adata.varm or _legacy_varm_key(key, what, group) in adata.varm


def _encoded_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [encode_name(str(c)) for c in frame.columns]
    return frame


def _decoded(value):
    """A stored record with every dict key (and design column) back to the user's name."""
    if isinstance(value, Mapping):
        return {decode_name(k): _decoded(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame) and any("%" in str(c) for c in value.columns):
        return value.rename(columns=decode_name)
    return value


def to_plain(value):
    """A value anndata can write to h5ad and zarr (no None, no tuples of mixed types; dict keys encoded)."""
    if value is None:
        return "None"
    if isinstance(value, dict):
        return {encode_name(str(k)): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        if all(isinstance(v, int | float | np.number | bool) for v in value):
            return np.asarray(value)
        return [str(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def design_record(design: Design, obs_names) -> dict:
    """What ``.uns`` keeps of a design: formula, columns, factor levels, numeric columns, matrix."""
    return {
        "formula": design.formula,
        "design_columns": list(design.columns),
        "factors": {encode_name(str(k)): list(v) for k, v in design.factors.items()},
        "numeric": list(design.numeric),
        "design": _encoded_columns(design.frame(pd.Index(obs_names).astype(str))),
    }


SLOT_KINDS = ("obs", "var", "varm", "layers")


def _slots(record: Mapping) -> dict[str, list[str]] | None:
    """The slots a fit recorded as its own, or ``None`` for fits written before slots were recorded."""
    slots = record.get("slots") if isinstance(record, Mapping) else None
    if not isinstance(slots, Mapping):
        return None
    return {kind: [str(s) for s in np.atleast_1d(slots.get(kind, [])) if str(s)] for kind in SLOT_KINDS}


def _stored_fit_keys(adata: AnnData) -> dict[str, Mapping]:
    """``.uns`` keys holding a pbglm fit, with their records."""
    return {
        str(k): v for k, v in adata.uns.items()
        if isinstance(v, Mapping) and ("design_columns" in v or "groups" in v or "slots" in v)
    }


def _slot_owner(adata: AnnData, kind: str, slot: str, *, other_than: str) -> str | None:
    """The ``.uns`` key of another fit that recorded ``slot`` as its own."""
    for ukey, record in _stored_fit_keys(adata).items():
        if ukey == other_than:
            continue
        slots = _slots(record)
        if slots is not None and slot in slots[kind]:
            return ukey
    return None


def claim(adata: AnnData, key: str, kind: str, slot: str) -> str:
    """Record ``slot`` (a key of ``.obs``/``.var``/``.varm``/``.layers``) as written by the fit ``key``.

    Raises
    ------
    ValueError
        Another stored fit owns ``slot`` (its key and ours overlap, e.g. ``key_added="pbglm_test_x"``
        next to a test ``"x_coef"`` of ``"pbglm"``): writing would overwrite its results.
    """
    ukey = uns_key(key)
    record = adata.uns[ukey]
    slots = _slots(record) or {k: [] for k in SLOT_KINDS}
    if slot not in slots[kind]:
        owner = _slot_owner(adata, kind, slot, other_than=ukey)
        if owner is not None:
            raise ValueError(
                f"Storing the fit key_added={key!r} would overwrite .{kind}[{slot!r}], which belongs to the fit "
                f"stored under key={decode_name(owner)!r}. Choose another key_added (or test name)."
            )
        slots[kind].append(slot)
    record["slots"] = slots
    return slot


def _legacy_slots(adata: AnnData, key: str) -> dict[str, list[str]]:
    """Slots of a fit written before slots were recorded: those with its prefix, except those under
    a longer stored key (``pbglm_x``'s slots are not ``pbglm``'s) or recorded by another fit."""
    prefix = f"{key}_"
    longer = [k + "_" for k in _stored_fit_keys(adata) if k != key and k.startswith(prefix)]
    out = {}
    for kind in SLOT_KINDS:
        names = getattr(adata, kind).columns if kind in ("obs", "var") else getattr(adata, kind).keys()
        out[kind] = [
            str(n) for n in names
            if str(n).startswith(prefix) and not any(str(n).startswith(p) for p in longer)
            and _slot_owner(adata, kind, str(n), other_than=key) is None
        ]
    return out


def owned_slots(adata: AnnData, key: str) -> dict[str, list[str]]:
    """Every ``.obs``/``.var``/``.varm``/``.layers`` key that belongs to the fit stored under ``key``."""
    ukey = uns_key(key)
    slots = _slots(adata.uns.get(ukey, {}))
    return slots if slots is not None else _legacy_slots(adata, ukey)


def clear_fit(adata: AnnData, key: str) -> None:
    """Remove a fit stored under ``key`` and exactly the slots it owns."""
    ukey = uns_key(key)
    if ukey not in adata.uns:
        return
    for kind, names in owned_slots(adata, key).items():
        store = getattr(adata, kind)
        for name in names:
            if kind in ("obs", "var"):
                if name in store.columns:
                    del store[name]
            elif name in store:
                del store[name]
    del adata.uns[ukey]


def start_fit(adata: AnnData, key: str, record: dict) -> dict:
    """Create the ``.uns`` record of a new fit under ``key`` (with the user's key and no slots yet)."""
    stored = {"key": key, **record, "slots": {k: [] for k in SLOT_KINDS}}
    adata.uns[uns_key(key)] = stored
    return adata.uns[uns_key(key)]


def raw_record(adata: AnnData, key: str) -> dict:
    """The ``.uns`` record of the fit ``key`` as stored (encoded names), for writers."""
    return adata.uns[uns_key(key)]


def write_fit(
    adata: AnnData,
    fit: FitResult,
    design: Design,
    *,
    key: str,
    obs_mask: np.ndarray | None = None,
    group: str | None = None,
    extra_params: dict | None = None,
) -> None:
    """Store a FitResult (see the module docstring for where each piece goes)."""
    var_names = adata.var_names
    p = design.n_coefs
    se = np.sqrt(np.maximum(np.diagonal(fit.cov, axis1=1, axis2=2), 0.0))
    se[np.isnan(fit.cov).any(axis=(1, 2))] = np.nan
    columns = [encode_name(str(c)) for c in design.columns]
    coef_df = pd.DataFrame(fit.coef, index=var_names, columns=columns)
    se_df = pd.DataFrame(se, index=var_names, columns=columns)
    samples = {"size_factor": fit.size_factors, **fit.sample_info}
    genes = {"base_mean": fit.base_mean, "dispersion": fit.dispersion, **fit.gene_info}
    wanted = [("varm", varm_key(key, what, group)) for what in ("coef", "se", "cov")]
    wanted += [("obs", column_key(key, name)) for name in samples]
    if group is None:
        wanted += [("var", column_key(key, name)) for name in genes]
    else:
        wanted.append(("varm", varm_key(key, "genes", group)))
    try:
        for kind, slot in wanted:
            claim(adata, key, kind, slot)
    except ValueError:
        clear_fit(adata, key)
        raise
    adata.varm[varm_key(key, "coef", group)] = coef_df
    adata.varm[varm_key(key, "se", group)] = se_df
    adata.varm[varm_key(key, "cov", group)] = np.ascontiguousarray(fit.cov.reshape(fit.cov.shape[0], p * p))

    mask = np.ones(adata.n_obs, dtype=bool) if obs_mask is None else obs_mask
    for name, values in samples.items():
        col = column_key(key, name)
        arr = np.full(adata.n_obs, np.nan) if col not in adata.obs or group is None else adata.obs[col].to_numpy()
        arr = np.asarray(arr, dtype=float).copy()
        arr[mask] = values
        adata.obs[col] = arr

    if group is None:
        for name, values in genes.items():
            adata.var[column_key(key, name)] = values
    else:
        adata.varm[varm_key(key, "genes", group)] = pd.DataFrame(genes, index=var_names)

    record = design_record(design, adata.obs_names[mask])
    record["fit"] = to_plain(fit.params)
    record["method"] = fit.method
    record.update(to_plain(extra_params or {}))
    uns = raw_record(adata, key)
    if group is None:
        uns.update(record)
    else:
        uns.setdefault("groups", {})[encode_name(str(group))] = {"group": str(group), **record}
        uns["group_order"] = _appended(uns.get("group_order", []), str(group))


def _appended(names, name: str) -> list[str]:
    """``names`` (a stored list) with ``name`` moved to its end (h5ad stores dict keys sorted,
    so the order of groups and tests is kept in a list)."""
    return [str(n) for n in np.atleast_1d(names) if str(n) != name] + [name]


def _ordered(entries: dict, order) -> dict:
    """Decoded ``entries`` in the stored ``order`` (entries missing from it last, as stored)."""
    order = [str(n) for n in np.atleast_1d(order if order is not None else [])]
    first = [n for n in order if n in entries]
    return {n: entries[n] for n in first + [n for n in entries if n not in first]}


def write_layer(adata: AnnData, key: str, field: str, make) -> str:
    """The fit's layer ``field`` (created with ``make()`` when missing); returns its name."""
    name = claim(adata, key, "layers", column_key(key, field))
    if name not in adata.layers:
        adata.layers[name] = make()
    return name


def write_test(adata: AnnData, tables: dict, *, key: str, name: str, summary: dict | None = None) -> None:
    """Store one test: ``tables`` maps each group (``None`` without groupby) to ``(table, params)``.

    Tables go to ``.varm``; parameters to ``.uns[K]['tests'][N]`` (and, per group, to
    ``.uns[K]['groups'][G]['tests'][N]``, with ``summary`` as the test-level record).
    """
    uns = raw_record(adata, key)
    stored = encode_name(name)
    for group in tables:
        claim(adata, key, "varm", varm_key(key, f"test_{name}", group))
    for group, (table, params) in tables.items():
        adata.varm[varm_key(key, f"test_{name}", group)] = table
        if group is not None:
            group_tests = uns["groups"][encode_name(str(group))].setdefault("tests", {})
            group_tests[stored] = {"name": name, **to_plain(params)}
    if None in tables:
        record = tables[None][1]
    else:
        record = summary or {}
    uns.setdefault("tests", {})[stored] = {"name": name, **to_plain(record)}
    uns["test_order"] = _appended(uns.get("test_order", []), name)


def fit_record(adata: AnnData, key: str) -> dict:
    """``.uns`` record of the fit ``key`` with users' names (tests, groups, factors) as dict keys.

    Raises
    ------
    KeyError
        No fit is stored under ``key`` (naming the keys that hold fits).
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a string (the key_added of a fit), got {type(key).__name__}.")
    rec = adata.uns.get(uns_key(key)) if key else None
    if not isinstance(rec, Mapping) or ("design_columns" not in rec and "groups" not in rec):
        others = [str(v.get("key", decode_name(k))) for k, v in _stored_fit_keys(adata).items()]
        hint = f" Fits are stored under key={others}." if others else ""
        raise KeyError(f"No pbglm fit stored under key={key!r}: run pbglm.tl.fit(adata, design) first.{hint}")
    out = _decoded({k: v for k, v in rec.items() if k != "slots"})
    out["key"] = key
    if "groups" in out:
        out["groups"] = _ordered(out["groups"], out.get("group_order"))
    if "tests" in out:
        out["tests"] = _ordered(out["tests"], out.get("test_order"))
    return out


def stored_keys(adata: AnnData) -> list[str]:
    """The keys (users' names) of every fit stored in ``adata``."""
    return [
        str(v.get("key", decode_name(k))) for k, v in _stored_fit_keys(adata).items()
        if "design_columns" in v or "groups" in v
    ]


def stored_tests(adata: AnnData, key: str) -> list[str]:
    """Names of the tests stored under ``key``."""
    rec = adata.uns.get(uns_key(key), {}) if isinstance(key, str) and key else {}
    tests = rec.get("tests", {}) if isinstance(rec, Mapping) else {}
    names = {
        str(v.get("name", decode_name(k))) if isinstance(v, Mapping) else decode_name(k): k for k, v in tests.items()
    }
    return list(_ordered(names, rec.get("test_order")))


@dataclass
class StoredFit:
    """A fit as read back from the AnnData (one group, or the whole object)."""

    record: dict
    key: str
    group: str | None
    mask: np.ndarray
    genes: pd.DataFrame
    coef: np.ndarray
    cov: np.ndarray

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.record["design_columns"]]

    @property
    def factors(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.record["factors"].items()}

    @property
    def design(self) -> np.ndarray:
        return np.asarray(self.record["design"], dtype=float)

    @property
    def method(self) -> str:
        return str(self.record["method"])


def read_obs(adata: AnnData, key: str, field: str, mask: np.ndarray) -> np.ndarray:
    """Per-sample values a fit stored in ``.obs`` (e.g. ``size_factor``), for the samples in ``mask``."""
    return adata.obs.loc[mask, column_key(key, field)].to_numpy(dtype=float)


def stored_fits(adata: AnnData, key: str) -> list[StoredFit]:
    """Every fit stored under ``key`` (one per group with ``groupby``)."""
    uns = fit_record(adata, key)
    groups = list(uns["groups"].keys()) if "groups" in uns else [None]
    fits = []
    for g in groups:
        rec = uns if g is None else uns["groups"][g]
        design = rec["design"]
        mask = np.asarray(adata.obs_names.isin(design.index))
        if g is None:
            prefix = column_key(key, "")
            var_slots = owned_slots(adata, key)["var"]
            cols = {c[len(prefix):]: adata.var[c] for c in var_slots if c in adata.var.columns}
            genes = pd.DataFrame(cols, index=adata.var_names)
        else:
            genes = pd.DataFrame(read_varm(adata, key, "genes", g))
        p = len(rec["design_columns"])
        coef = np.asarray(read_varm(adata, key, "coef", g), dtype=float)
        cov = np.asarray(read_varm(adata, key, "cov", g), dtype=float).reshape(-1, p, p)
        fits.append(StoredFit(record=rec, key=key, group=g, mask=mask, genes=genes, coef=coef, cov=cov))
    return fits


def stored_test(adata: AnnData, key: str, name: str, group: str | None = None) -> dict:
    """The parameters of a stored test, users' names (of one group for ``groupby`` fits; ``{}`` where
    the test was not run in that group).

    Raises
    ------
    KeyError
        No fit under ``key``, or no test named ``name`` (listing the stored ones).
    """
    rec = fit_record(adata, key)
    tests = stored_tests(adata, key)
    if name not in tests:
        stored = tests or "none (run pbglm.tl.test first)"
        raise KeyError(f"No test named {name!r} under key {key!r}. Stored tests: {stored}.")
    if group is None:
        return dict(rec["tests"][name])
    return dict(rec["groups"][str(group)].get("tests", {}).get(name, {}))


def test_table(adata: AnnData, key: str, name: str, group: str | None = None) -> pd.DataFrame | None:
    """A stored test's ``.varm`` table (None where a group has none)."""
    if not has_varm(adata, key, f"test_{name}", group):
        return None
    return pd.DataFrame(read_varm(adata, key, f"test_{name}", group))


SHRINK_COLUMNS = ("log2fc_shrunk", "lfc_se_shrunk", "svalue")


def write_shrink(adata: AnnData, columns: dict, *, key: str, name: str, record: dict, group=None) -> None:
    """Add shrunken-estimate columns to a stored test's ``.varm`` table (replacing earlier ones) and
    its record to ``.uns[K]['tests'][N]['shrink']`` (per group: ``.uns[K]['groups'][G]['tests'][N]``)."""
    slot = varm_key(key, f"test_{name}", group)
    if slot not in adata.varm:
        slot = _legacy_varm_key(key, f"test_{name}", group)
    table = pd.DataFrame(adata.varm[slot]).copy()
    table = table.drop(columns=[c for c in SHRINK_COLUMNS if c in table.columns])
    for col, values in columns.items():
        table[col] = np.asarray(values, dtype=float)
    adata.varm[slot] = table
    write_shrink_record(adata, record, key=key, name=name, group=group)


def write_shrink_record(adata: AnnData, record: dict, *, key: str, name: str, group=None) -> None:
    """The ``shrink`` entry of a stored test's record (test level when ``group`` is None)."""
    uns = raw_record(adata, key)
    stored = encode_name(name)
    target = uns["tests"][stored] if group is None else uns["groups"][encode_name(str(group))]["tests"][stored]
    target["shrink"] = to_plain(record)
