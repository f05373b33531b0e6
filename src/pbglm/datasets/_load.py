"""Loaders for the count tables bundled with pbglm."""

from __future__ import annotations

from importlib.resources import files

import anndata as ad
import numpy as np
import pandas as pd

_DATA = files("pbglm.datasets") / "data"


def _read_table(name: str) -> pd.DataFrame:
    with (_DATA / name).open("rb") as fh:
        return pd.read_csv(fh, index_col=0, compression="gzip" if name.endswith(".gz") else None)


def _to_anndata(counts: pd.DataFrame, obs: pd.DataFrame) -> ad.AnnData:
    counts = counts.loc[:, obs.index]
    X = np.ascontiguousarray(counts.to_numpy(dtype=np.int64).T)
    var = pd.DataFrame(index=pd.Index(counts.index.astype(str), name=None))
    obs = obs.copy()
    obs.index = obs.index.astype(str)
    obs.index.name = None
    return ad.AnnData(X=X, obs=obs, var=var)


def airway() -> ad.AnnData:
    """Airway smooth muscle cells treated with dexamethasone (Himes et al. 2014).

    Gene-level read counts of 8 samples (4 donors, untreated or treated) for 64,102 genes, as
    distributed by the Bioconductor ``airway`` package (LGPL; GEO GSE52778).

    Returns
    -------
    AnnData with samples in rows and genes in columns, integer counts in ``X`` and the sample
    table in ``.obs``: ``cell`` (donor, categorical, levels in sorted order), ``dex``
    (categorical, levels ``untrt``, ``trt``: untreated is the reference), ``albut``, ``Run``,
    ``SampleName``, ``avgLength``. Suited to the matched design ``~ cell + dex``. Genes are
    named by their Ensembl IDs; ``.var['symbol']`` holds the HGNC symbol of 35,329 of them
    (missing for the others) from Bioconductor's ``org.Hs.eg.db`` 3.16.0, for plot labels:
    ``pbglm.pl.volcano(adata, ..., gene_symbols="symbol")``.
    """
    obs = pd.read_csv(_DATA / "airway_samples.csv", index_col=0)
    obs["cell"] = pd.Categorical(obs["cell"], categories=sorted(obs["cell"].unique()))
    obs["dex"] = pd.Categorical(obs["dex"], categories=["untrt", "trt"])
    obs["albut"] = pd.Categorical(obs["albut"], categories=["untrt"])
    adata = _to_anndata(_read_table("airway_counts.csv.gz"), obs)
    symbols = _read_table("airway_symbols.csv.gz")["symbol"]
    adata.var["symbol"] = symbols.reindex(adata.var_names).to_numpy(dtype=object)  # NaN: no symbol
    return adata


def pasilla() -> ad.AnnData:
    """Drosophila cells with Pasilla knocked down (Brooks et al. 2011).

    Exon-derived gene counts of 7 samples (3 treated, 4 untreated; single-read or paired-end
    libraries) for 14,599 genes, as distributed by the Bioconductor ``pasilla`` package (LGPL;
    GEO GSE18508).

    Returns
    -------
    AnnData with samples in rows (named ``treated1`` ... ``untreated4``), integer counts in ``X``
    and the sample table in ``.obs``: ``condition`` (levels ``untreated``, ``treated``) and
    ``type`` (levels ``paired-end``, ``single-read``, sorted as R's ``factor()`` does), plus the
    sequencing columns of the original table. Suited to ``~ type + condition``.
    """
    obs = pd.read_csv(_DATA / "pasilla_samples.csv")
    obs.index = obs.pop("file").str.removesuffix("fb")
    obs["condition"] = pd.Categorical(obs["condition"], categories=["untreated", "treated"])
    obs["type"] = pd.Categorical(obs["type"], categories=sorted(obs["type"].unique()))
    obs["total number of reads"] = obs["total number of reads"].astype(str)
    return _to_anndata(_read_table("pasilla_counts.csv.gz"), obs)
