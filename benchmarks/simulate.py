"""Seeded negative-binomial count simulations for benchmarks (genes x samples, plus a sample table)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd


def simulate_batch_age_condition(n_genes: int = 20_000, n_samples: int = 400, seed: int = 0) -> ad.AnnData:
    """Counts for the design ``~ batch + age + condition``: 4 batches, numeric age, 2 conditions.

    Base means are log-normal, dispersions follow ``0.05 + 2 / mean`` with log-normal scatter,
    size factors vary 0.5-2, and 10% of genes have a condition effect (|log2fc| 0.5-2).
    """
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 4, n_samples)
    condition = rng.integers(0, 2, n_samples)
    age = rng.uniform(20, 70, n_samples).round(1)
    base = np.exp(rng.normal(4.0, 1.8, n_genes))
    disp = (0.05 + 2.0 / base) * np.exp(rng.normal(0, 0.5, n_genes))
    batch_eff = rng.normal(0, 0.3, (n_genes, 4))
    age_eff = rng.normal(0, 0.005, n_genes)
    lfc = np.zeros(n_genes)
    de = rng.random(n_genes) < 0.1
    lfc[de] = rng.choice([-1, 1], de.sum()) * rng.uniform(0.5, 2.0, de.sum())
    sf = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n_samples))
    log_mu = (np.log(base)[:, None] + batch_eff[:, batch] + age_eff[:, None] * (age - 45)[None, :]
              + (lfc * np.log(2))[:, None] * condition[None, :] + np.log(sf)[None, :])
    mu = np.exp(log_mu)
    r = 1.0 / disp[:, None]
    counts = rng.negative_binomial(r, r / (r + mu))
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"b{i}" for i in batch], categories=["b0", "b1", "b2", "b3"]),
            "age": age,
            "condition": pd.Categorical(np.where(condition == 1, "treated", "ctrl"), categories=["ctrl", "treated"]),
        },
        index=[f"s{i:04d}" for i in range(n_samples)],
    )
    var = pd.DataFrame({"true_log2fc": lfc, "is_de": de}, index=[f"g{i:05d}" for i in range(n_genes)])
    return ad.AnnData(X=counts.T.astype(np.int64), obs=obs, var=var)
