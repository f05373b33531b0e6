"""Seeded count matrices for the transform parity tests (vst, rlog, log-CPM, PCA, MDS).

The counts are not committed: the tests rebuild them with :func:`sim400` / :func:`sim30` and
``make_transforms_reference.R`` reads the file this script writes::

    python tests/reference/simulate_transforms.py OUT.csv [sim400|sim30]   # also OUT.csv.samples.csv

sim30 (rlog, at most 30 samples as DESeq2 recommends): ``default_rng(30)``, 2,000 genes, 30 samples
in two conditions (15 each) crossed with three batches, the same mean / dispersion / size-factor
model as sim400 below, batch effects log2 N(0, 0.3) per gene and batch.

Gamma-Poisson counts (NB, variance ``mu + disp mu^2``) from ``numpy.random.default_rng(11)``:
2,000 genes, 400 samples in two conditions (200 each), 10% of genes with a log2 fold change of
+-1, size factors log-uniform on [0.5, 2], dispersion ``0.05 + 2 / mean`` times log-normal noise.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

N_GENES = 2000
N_SAMPLES = 400


def sim400() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts: genes x samples DataFrame, samples: DataFrame with a ``condition`` column)."""
    rng = np.random.default_rng(11)
    mean = np.exp(rng.normal(4.0, 1.5, N_GENES)).clip(0.1, 1e5)
    disp = (0.05 + 2.0 / mean) * np.exp(rng.normal(0.0, 0.5, N_GENES))
    sf = np.exp(rng.uniform(np.log(0.5), np.log(2.0), N_SAMPLES))
    sf /= np.exp(np.log(sf).mean())
    condition = np.repeat(["ctrl", "treated"], N_SAMPLES // 2)
    lfc = np.where(rng.uniform(size=N_GENES) < 0.1, rng.choice([-1.0, 1.0], N_GENES), 0.0)
    mu = mean[:, None] * sf[None, :] * np.where(condition == "treated", 2.0 ** lfc[:, None], 1.0)
    shape = 1.0 / disp[:, None]
    counts = rng.poisson(rng.gamma(shape, mu / shape))
    genes = [f"g{i:04d}" for i in range(1, N_GENES + 1)]
    samples = [f"s{j:03d}" for j in range(1, N_SAMPLES + 1)]
    return (pd.DataFrame(counts, index=genes, columns=samples),
            pd.DataFrame({"condition": condition}, index=samples))


def sim30() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts: genes x samples DataFrame, samples: DataFrame with ``condition`` and ``batch`` columns)."""
    rng = np.random.default_rng(30)
    n_genes, n_samples = 2000, 30
    mean = np.exp(rng.normal(4.0, 1.5, n_genes)).clip(0.1, 1e5)
    disp = (0.05 + 2.0 / mean) * np.exp(rng.normal(0.0, 0.5, n_genes))
    sf = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n_samples))
    sf /= np.exp(np.log(sf).mean())
    condition = np.repeat(["ctrl", "treated"], n_samples // 2)
    batch = np.tile(["b1", "b2", "b3"], n_samples // 3)
    lfc = np.where(rng.uniform(size=n_genes) < 0.1, rng.choice([-1.0, 1.0], n_genes), 0.0)
    batch_lfc = rng.normal(0.0, 0.3, (n_genes, 3))[:, np.searchsorted(["b1", "b2", "b3"], batch)]
    mu = mean[:, None] * sf[None, :] * 2.0 ** (np.where(condition == "treated", lfc[:, None], 0.0) + batch_lfc)
    shape = 1.0 / disp[:, None]
    counts = rng.poisson(rng.gamma(shape, mu / shape))
    genes = [f"g{i:04d}" for i in range(1, n_genes + 1)]
    samples = [f"s{j:02d}" for j in range(1, n_samples + 1)]
    return (pd.DataFrame(counts, index=genes, columns=samples),
            pd.DataFrame({"condition": condition, "batch": batch}, index=samples))


if __name__ == "__main__":
    if sys.argv[1] == "--versions":
        print("python", sys.version.split()[0], "numpy", np.__version__, "pandas", pd.__version__)
        sys.exit(0)
    counts, samples = {"sim400": sim400, "sim30": sim30}[sys.argv[2] if len(sys.argv) > 2 else "sim400"]()
    counts.to_csv(sys.argv[1])
    samples.to_csv(sys.argv[1] + ".samples.csv")
