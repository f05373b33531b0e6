"""Deterministic negative-binomial count simulations with known truth.

Run from the repository root::

    python tests/reference/simulate.py

Writes, for every dataset ``<name>`` below, into ``tests/reference/data/``:

* ``<name>_counts.csv.gz``  genes in rows (``gene00001`` ...), samples in columns (first column ``gene``);
* ``<name>_samples.csv``    sample table, first column ``sample``; design columns, plus ``true_size_factor``;
* ``<name>_truth.csv.gz``   per gene: ``gene``, ``base_mean`` (true mean at size factor 1 and reference levels),
  ``dispersion`` (true NB dispersion), ``all_zero``, ``is_de`` (any effect of interest is non-zero), dataset-specific
  ``is_de_*`` flags, true effects ``lfc_*`` (log2 scale), ``outlier_sample`` (sample whose count was replaced by an
  injected outlier, empty if none) and ``outlier_original_count``.

Counts are Gamma-Poisson (= NB with mean ``mu`` and variance ``mu + disp * mu^2``), everything is drawn from
``numpy.random.default_rng(seed)`` with a fixed seed per dataset, and gzip headers carry no timestamp, so re-running
the script reproduces the files byte for byte (for a given numpy / pandas version).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "data"
GZ = {"method": "gzip", "mtime": 0, "compresslevel": 9}


# --------------------------------------------------------------------------------------------------------------------
# shared building blocks
# --------------------------------------------------------------------------------------------------------------------
def gene_names(n: int) -> list[str]:
    return [f"gene{i:05d}" for i in range(1, n + 1)]


def base_means(rng: np.random.Generator, n: int) -> np.ndarray:
    """Log-normal base means, exp(N(4, 2)): median ~55, many genes with a handful of reads, a few very high."""
    return np.clip(np.exp(rng.normal(4.0, 2.0, n)), 0.05, 1.0e5)


def dispersions(rng: np.random.Generator, mean: np.ndarray, a0: float, a1: float, sd: float = 0.5) -> np.ndarray:
    """DESeq2-like trend a0 + a1 / mean with log-normal scatter around it."""
    return (a0 + a1 / mean) * np.exp(rng.normal(0.0, sd, mean.size))


def size_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sample size factors spread over ~0.5-2 (log-uniform), rescaled to geometric mean 1."""
    sf = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    return sf / np.exp(np.mean(np.log(sf)))


def signed_effects(rng: np.random.Generator, n: int, lo: float = 0.5, hi: float = 3.0) -> np.ndarray:
    """|log2 fold change| uniform on [lo, hi] with a random sign."""
    return rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)


def pick(rng: np.random.Generator, candidates: np.ndarray, frac_of: int, frac: float) -> np.ndarray:
    """Pick round(frac * frac_of) genes (sorted) out of ``candidates`` without replacement."""
    k = min(int(round(frac * frac_of)), candidates.size)
    return np.sort(rng.choice(candidates, k, replace=False))


def draw_counts(rng: np.random.Generator, mu: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """Gamma-Poisson draw: lambda ~ Gamma(shape=1/disp, scale=mu*disp), y ~ Poisson(lambda)."""
    shape = 1.0 / disp[:, None]
    lam = rng.gamma(shape, mu / shape)
    return rng.poisson(lam).astype(np.int64)


class Sim:
    """Holds one dataset while it is being built."""

    def __init__(self, name: str, seed: int, n_genes: int, samples: pd.DataFrame, a0: float = 0.05, a1: float = 2.0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.n = n_genes
        self.samples = samples.reset_index(drop=True)
        self.m = len(samples)
        self.genes = gene_names(n_genes)
        self.mean = base_means(self.rng, n_genes)
        self.disp = dispersions(self.rng, self.mean, a0, a1)
        self.sf = size_factors(self.rng, self.m)
        self.log2_eff = np.zeros((n_genes, self.m))  # log2 multiplier of the mean, gene x sample
        self.truth: dict[str, np.ndarray] = {}
        # ~1% genes are entirely zero: choose them first so effects are drawn only among expressed genes
        self.all_zero = np.zeros(n_genes, dtype=bool)
        self.all_zero[pick(self.rng, np.arange(n_genes), n_genes, 0.01)] = True
        self.expressed = np.flatnonzero(~self.all_zero)

    def add_effect(self, sample_mask: np.ndarray, lfc: np.ndarray) -> None:
        """Add per-gene log2 effect ``lfc`` (length n_genes) to the samples in ``sample_mask``."""
        self.log2_eff[:, np.asarray(sample_mask, dtype=bool)] += lfc[:, None]

    def finish(self, n_outliers: int) -> None:
        mu = self.mean[:, None] * np.exp2(self.log2_eff) * self.sf[None, :]
        counts = draw_counts(self.rng, mu, self.disp)
        counts[self.all_zero, :] = 0
        # injected outliers: one sample of a moderately/highly expressed gene gets a count 20-50x its expectation
        out_sample = np.full(self.n, "", dtype=object)
        out_orig = np.full(self.n, np.nan)
        cand = np.flatnonzero(~self.all_zero & (self.mean > 10))
        for g in np.sort(self.rng.choice(cand, n_outliers, replace=False)):
            j = int(self.rng.integers(self.m))
            out_orig[g] = counts[g, j]
            counts[g, j] = int(round(max(mu[g, j], 5.0) * self.rng.uniform(20.0, 50.0))) + 20
            out_sample[g] = self.samples["sample"].iloc[j]
        for key in list(self.truth):
            if key.startswith("lfc_"):
                self.truth[key] = np.where(self.all_zero, 0.0, self.truth[key])
            elif key.startswith("is_de"):
                self.truth[key] = self.truth[key] & ~self.all_zero
        is_de_cols = [k for k in self.truth if k.startswith("is_de_")]
        is_de = np.zeros(self.n, dtype=bool)
        for k in is_de_cols:
            is_de |= self.truth[k]
        truth = pd.DataFrame(
            {
                "gene": self.genes,
                "base_mean": self.mean,
                "dispersion": self.disp,
                "all_zero": self.all_zero,
                "is_de": is_de,
                **{k: self.truth[k] for k in is_de_cols},
                **{k: v for k, v in self.truth.items() if not k.startswith("is_de")},
                "outlier_sample": out_sample,
                "outlier_original_count": out_orig,
            }
        )
        samples = self.samples.copy()
        samples["true_size_factor"] = np.round(self.sf, 6)
        cdf = pd.DataFrame(counts, index=pd.Index(self.genes, name="gene"), columns=samples["sample"].to_list())
        OUT.mkdir(parents=True, exist_ok=True)
        cdf.to_csv(OUT / f"{self.name}_counts.csv.gz", compression=GZ)
        samples.to_csv(OUT / f"{self.name}_samples.csv", index=False)
        truth.to_csv(OUT / f"{self.name}_truth.csv.gz", index=False, compression=GZ, float_format="%.6g")
        print(
            f"{self.name}: {self.n} genes x {self.m} samples, {int(is_de.sum())} DE, "
            f"{int(self.all_zero.sum())} all-zero, {n_outliers} outliers, "
            f"median count {np.median(counts):.0f}, zeros {np.mean(counts == 0):.1%}"
        )


def grid(**factors: list) -> pd.DataFrame:
    """Full crossing of the factors (first factor varies slowest)."""
    idx = pd.MultiIndex.from_product(list(factors.values()), names=list(factors))
    return idx.to_frame(index=False)


# --------------------------------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------------------------------
def sim_three_groups() -> None:
    s = grid(Batch=["b1", "b2"], Drug=["ctrl", "DrugA", "DrugB"], rep=[1, 2, 3, 4])
    s.insert(0, "sample", [f"{d}_{b}_r{r}" for b, d, r in zip(s.Batch, s.Drug, s.rep, strict=True)])
    sim = Sim("sim_three_groups", 101, 5000, s.drop(columns="rep"))
    rng, n = sim.rng, sim.n
    batch = np.where(sim.all_zero, 0.0, rng.normal(0.0, 0.3, n))  # broad small batch shift
    de = pick(rng, sim.expressed, n, 0.10)
    kind = rng.integers(0, 3, de.size)  # 0: DrugA only, 1: DrugB only, 2: both (independent effects)
    a = np.zeros(n)
    b = np.zeros(n)
    a[de[kind != 1]] = signed_effects(rng, int(np.sum(kind != 1)))
    b[de[kind != 0]] = signed_effects(rng, int(np.sum(kind != 0)))
    sim.add_effect(s.Batch == "b2", batch)
    sim.add_effect(s.Drug == "DrugA", a)
    sim.add_effect(s.Drug == "DrugB", b)
    sim.truth.update(
        is_de_DrugA=a != 0,
        is_de_DrugB=b != 0,
        lfc_DrugA_vs_ctrl=a,
        lfc_DrugB_vs_ctrl=b,
        lfc_DrugA_vs_DrugB=a - b,
        lfc_Batch_b2_vs_b1=batch,
    )
    sim.finish(n_outliers=25)


def sim_patients() -> None:
    s = grid(Patient=[f"P{i}" for i in range(1, 7)], Visit=["v1", "v2"], Drug=["ctrl", "DrugA"])
    s.insert(0, "sample", [f"{p}_{v}_{d}" for p, v, d in zip(s.Patient, s.Visit, s.Drug, strict=True)])
    sim = Sim("sim_patients", 202, 5000, s)
    rng, n = sim.rng, sim.n
    pat = rng.normal(0.0, 0.5, (n, 6))  # patient random effects (log2)
    for i in range(6):
        sim.add_effect(s.Patient == f"P{i + 1}", pat[:, i])
    visit = np.zeros(n)
    vde = pick(rng, sim.expressed, n, 0.05)
    visit[vde] = signed_effects(rng, vde.size, 0.5, 1.5)
    drug = np.zeros(n)
    de = pick(rng, sim.expressed, n, 0.10)
    drug[de] = signed_effects(rng, de.size)
    sim.add_effect(s.Visit == "v2", visit)
    sim.add_effect(s.Drug == "DrugA", drug)
    sim.truth.update(
        is_de_Drug=drug != 0, is_de_Visit=visit != 0, lfc_Drug_DrugA_vs_ctrl=drug, lfc_Visit_v2_vs_v1=visit
    )
    for i in range(1, 6):
        sim.truth[f"lfc_Patient_P{i + 1}_vs_P1"] = pat[:, i] - pat[:, 0]
    sim.finish(n_outliers=25)


def sim_numeric() -> None:
    rng0 = np.random.default_rng(303)
    age = rng0.integers(20, 71, 16)
    cond = np.array(["ctrl", "treated"] * 8)
    s = pd.DataFrame({"sample": [f"s{i:02d}" for i in range(1, 17)], "age": age, "condition": cond})
    sim = Sim("sim_numeric", 304, 5000, s)
    rng, n = sim.rng, sim.n
    slope = np.zeros(n)  # log2 fold change per year of age
    ade = pick(rng, sim.expressed, n, 0.10)
    slope[ade] = signed_effects(rng, ade.size) / 50.0  # 0.5-3 log2 units over the 20-70 range
    cnd = np.zeros(n)
    cde = pick(rng, sim.expressed, n, 0.10)
    cnd[cde] = signed_effects(rng, cde.size)
    sim.log2_eff += slope[:, None] * (age[None, :] - 20.0)  # reference: age 20 (intercept not at age 0)
    sim.add_effect(s.condition == "treated", cnd)
    sim.truth.update(
        is_de_age=slope != 0,
        is_de_condition=cnd != 0,
        lfc_age_per_year=slope,
        lfc_condition_treated_vs_ctrl=cnd,
    )
    sim.finish(n_outliers=25)


def sim_interaction() -> None:
    s = grid(DrugA=["no", "yes"], DrugB=["no", "yes"], rep=[1, 2, 3, 4])
    combo = np.select(
        [(s.DrugA == "yes") & (s.DrugB == "yes"), s.DrugA == "yes", s.DrugB == "yes"], ["A_B", "A", "B"], "ctrl"
    )
    s["combo"] = combo
    s.insert(0, "sample", [f"{c}_r{r}" for c, r in zip(s.combo, s.rep, strict=True)])
    sim = Sim("sim_interaction", 404, 5000, s.drop(columns="rep"))
    rng, n = sim.rng, sim.n
    a = np.zeros(n)
    b = np.zeros(n)
    ab = np.zeros(n)
    de = pick(rng, sim.expressed, n, 0.12)
    kind = rng.integers(0, 4, de.size)  # 0: A only, 1: B only, 2: additive A and B, 3: interaction
    a[de[np.isin(kind, [0, 2])]] = signed_effects(rng, int(np.isin(kind, [0, 2]).sum()))
    b[de[np.isin(kind, [1, 2])]] = signed_effects(rng, int(np.isin(kind, [1, 2]).sum()))
    k3 = de[kind == 3]  # synergy: effect only (or mostly) when both drugs are given
    ab[k3] = signed_effects(rng, k3.size, 1.0, 3.0)
    half = rng.random(k3.size) < 0.5  # half of them also have a main effect of A
    a[k3[half]] = signed_effects(rng, int(half.sum()))
    sim.add_effect(s.DrugA == "yes", a)
    sim.add_effect(s.DrugB == "yes", b)
    sim.add_effect((s.DrugA == "yes") & (s.DrugB == "yes"), ab)
    sim.truth.update(
        is_de_DrugA=a != 0,
        is_de_DrugB=b != 0,
        is_de_interaction=ab != 0,
        lfc_DrugA_yes_vs_no=a,
        lfc_DrugB_yes_vs_no=b,
        lfc_interaction=ab,
        lfc_combo_A_B_vs_ctrl=a + b + ab,
        lfc_combo_A_vs_B=a - b,
    )
    sim.finish(n_outliers=25)


def sim_time() -> None:
    days = [0, 2, 4, 6, 8]
    s = grid(Time=[f"day{d:02d}" for d in days], Treatment=["ctrl", "treated"], rep=[1, 2, 3])
    s["time_num"] = s.Time.str[3:].astype(int)
    s.insert(0, "sample", [f"{t}_{tr}_r{r}" for t, tr, r in zip(s.Time, s.Treatment, s.rep, strict=True)])
    sim = Sim("sim_time", 505, 5000, s.drop(columns="rep"))
    rng, n = sim.rng, sim.n
    t = np.asarray(days, dtype=float)
    # time course in both arms: 15% genes, half linear in time (log2 scale), half transient (peak at day04)
    time_eff = np.zeros((n, 5))
    shape = np.full(n, "none", dtype=object)
    tde = pick(rng, sim.expressed, n, 0.15)
    lin = rng.random(tde.size) < 0.5
    amp = signed_effects(rng, tde.size)
    slope = np.zeros(n)
    slope[tde[lin]] = amp[lin] / 8.0
    time_eff[tde[lin]] = slope[tde[lin], None] * t[None, :]
    time_eff[tde[~lin]] = amp[~lin, None] * np.array([0.0, 0.5, 1.0, 0.5, 0.0])[None, :]
    shape[tde[lin]] = "linear"
    shape[tde[~lin]] = "transient"
    # treatment: 8% genes constant effect, 5% genes effect growing with time (zero at day00)
    trt = np.zeros((n, 5))
    cde = pick(rng, sim.expressed, n, 0.08)
    trt[cde] = signed_effects(rng, cde.size)[:, None]
    ide = pick(rng, np.setdiff1d(sim.expressed, cde), n, 0.05)
    trt[ide] = signed_effects(rng, ide.size, 1.0, 3.0)[:, None] * (t / 8.0)[None, :]
    for k, day in enumerate(s.Time.unique()):
        sim.add_effect(s.Time == day, time_eff[:, k])
        sim.add_effect((s.Time == day) & (s.Treatment == "treated"), trt[:, k])
    sim.truth.update(
        is_de_Treatment=np.any(trt != 0, axis=1),
        is_de_interaction=np.ptp(trt, axis=1) > 0,
        is_de_Time=shape != "none",
        time_shape=shape,
        lfc_time_num_per_day=slope,
    )
    for k, day in enumerate(s.Time.unique()):
        if k:
            sim.truth[f"lfc_Time_{day}_vs_day00"] = time_eff[:, k]
    for k, day in enumerate(s.Time.unique()):
        sim.truth[f"lfc_treated_vs_ctrl_at_{day}"] = trt[:, k]
    sim.finish(n_outliers=25)


def two_group(name: str, seed: int, n_genes: int, reps: int, a0: float, a1: float, n_outliers: int) -> None:
    s = pd.DataFrame({"condition": ["ctrl"] * reps + ["treated"] * reps})
    s.insert(0, "sample", [f"{c}_r{i % reps + 1}" for i, c in enumerate(s.condition)])
    sim = Sim(name, seed, n_genes, s, a0=a0, a1=a1)
    lfc = np.zeros(sim.n)
    de = pick(sim.rng, sim.expressed, sim.n, 0.10)
    lfc[de] = signed_effects(sim.rng, de.size)
    sim.add_effect(s.condition == "treated", lfc)
    sim.truth.update(is_de_condition=lfc != 0, lfc_condition_treated_vs_ctrl=lfc)
    sim.finish(n_outliers=n_outliers)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "simulate_versions.txt").write_text(
        f"simulate.py: python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}\n"
    )
    sim_three_groups()
    sim_patients()
    sim_numeric()
    sim_interaction()
    sim_time()
    two_group("sim_replace", 606, 4000, reps=8, a0=0.05, a1=2.0, n_outliers=80)
    two_group("sim_bigdisp", 707, 3000, reps=3, a0=0.3, a1=4.0, n_outliers=15)


if __name__ == "__main__":
    main()
