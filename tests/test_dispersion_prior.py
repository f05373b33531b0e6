"""DESeq2's prior variance of the log dispersions, and the R random number generators behind it.

Reference numbers were produced with R 4.2.2 and DESeq2 1.38.3. The residuals in
``data/dispersion_prior_residuals.csv`` and the expected prior variances come from::

    library(DESeq2)
    for (df in 1:3) {
      set.seed(100 + df)
      m <- df + 2; ngenes <- 800
      mu <- 2^runif(ngenes, 1, 12)
      disp <- 0.2 * exp(rnorm(ngenes, 0, 1.5)) + 1 / mu
      cond <- factor(c(rep("A", ceiling(m / 2)), rep("B", floor(m / 2))))
      counts <- matrix(rnbinom(ngenes * m, mu = mu, size = 1 / disp), ngenes, m)
      counts[1:5, ] <- 0L
      dds <- DESeqDataSetFromMatrix(counts, data.frame(cond = cond), ~ cond)
      dds <- estimateDispersions(estimateSizeFactors(dds), fitType = "parametric")
      mc <- mcols(dds)
      keep <- !mc$allZero & mc$dispGeneEst >= 1e-6
      residual <- log(mc$dispGeneEst[keep]) - log(mc$dispFit[keep])  # written with 17 digits
      attr(dispersionFunction(dds), "dispPriorVar")                   # expected value
    }
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pbglm._kernels import r_rng
from pbglm._numerics import dispersion_prior as dp

DATA = Path(__file__).parent / "data"


def _draws(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


# ---------------------------------------------------------------------------------------------- RNG


def test_runif_matches_r():
    # set.seed(2); runif(3)
    state = r_rng.set_seed(2)
    assert _draws(r_rng.runif(state, 3)) == [0.18488225992769003, 0.70237403595820069, 0.57332633482292295]


def test_rchisq_df3_then_rnorm_match_r():
    # set.seed(2); rchisq(5, 3); rnorm(5, 0, 1.3)
    state = r_rng.set_seed(2)
    assert _draws(r_rng.rchisq(state, 5, 3.0)) == [
        0.60839875872378502,
        0.53883407524968197,
        0.37812323397130138,
        2.2591307791793858,
        0.83222761479705842,
    ]
    assert _draws(r_rng.rnorm(state, 5, 0.0, 1.3)) == [
        -0.31160743142339214,
        2.5798161176488046,
        -0.18042311575556416,
        0.54294597603032246,
        1.2762786107027604,
    ]


def test_rchisq_df1_df2_and_zero_sd_rnorm_match_r():
    # set.seed(42); rchisq(5, 1); rchisq(5, 2); rnorm(3, 0, 0); rnorm(3)
    state = r_rng.set_seed(42)
    assert _draws(r_rng.rchisq(state, 5, 1.0)) == [
        1.5210336696214686,
        0.58739504553944721,
        3.7326870472266127,
        2.9634785758622986,
        0.42684620631380732,
    ]
    assert _draws(r_rng.rchisq(state, 5, 2.0)) == [
        2.1015861323500107,
        0.63840552505600268,
        2.8321201289028775,
        0.1797856383204805,
        0.61336115519641488,
    ]
    # sd = 0 returns the mean without drawing, so the stream continues unchanged
    assert _draws(r_rng.rnorm(state, 3, 0.0, 0.0)) == [0.0, 0.0, 0.0]
    assert _draws(r_rng.rnorm(state, 3, 0.0, 1.0)) == [1.9355717659958545, 1.7232307985489406, 0.35840205680206361]


def test_long_streams_match_r():
    # set.seed(7); x <- rchisq(1e5, 1); x[c(1, 5e4, 1e5)]
    state = r_rng.set_seed(7)
    x = r_rng.rchisq(state, 100_000, 1.0)
    assert _draws(x[[0, 49_999, 99_999]]) == [7.2793067245438632, 5.7027232409224515, 0.24804529527079086]
    # set.seed(7); y <- rgamma(1e5, shape = 0.3, scale = 2); y[c(1, 1e5)]
    state = r_rng.set_seed(7)
    y = [r_rng.rgamma(state, 0.3, 2.0) for _ in range(100_000)]
    assert [y[0], y[-1]] == [6.385975246987873, 0.10441745424126685]


def test_qnorm_matches_r():
    p = [1e-300, 1e-12, 0.01, 0.3, 0.5, 0.93, 1 - 1e-10]
    expected = [
        -37.047096299361201,
        -7.0344838253011321,
        -2.3263478740408408,
        -0.52440051270804067,
        0.0,
        1.4757910281791708,
        6.3613408896974208,
    ]
    assert [r_rng.qnorm(v) for v in p] == expected
    assert r_rng.qnorm(0.0) == -math.inf and r_rng.qnorm(1.0) == math.inf
    assert math.isnan(r_rng.qnorm(1.5))


# -------------------------------------------------------------------------------------------- loess


def test_loess_interpolate_matches_r():
    # x <- seq(0, 8, length = 200); y <- sin(x) + x^2/10 + 0.3*cos(7*x); nx <- seq(0, 8, length = 1000)
    # predict(loess(y ~ x, span = .2), nx)[c(1, 67, 250, 500, 777, 1000)]
    x = np.linspace(0, 8, 200)
    y = np.sin(x) + x**2 / 10 + 0.3 * np.cos(7 * x)
    nx = np.linspace(0, 8, 1000)
    fit = dp.loess_1d(x, y, nx, span=0.2)
    idx = [0, 66, 249, 499, 776, 999]
    expected = [
        0.19793399434191397,
        0.50238142079977766,
        1.3466013199623119,
        0.71973736211607109,
        3.9079684934680343,
        7.4111536559584925,
    ]
    np.testing.assert_allclose(fit[idx], expected, rtol=1e-12, atol=1e-13)
    # the direct local fits differ from the interpolated surface by ~1e-2 here: R's values are
    # 0.19338560423759704, 0.50185815082317309, 1.3343882629471522, ...
    assert abs(fit[0] - 0.19338560423759704) > 1e-3
    assert np.isnan(dp.loess_1d(x, y, np.array([-0.1, 8.1]), span=0.2)).all()


# --------------------------------------------------------------------------------- prior variance


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 0.30430430430430433), (2, 1.017017017017017), (3, 1.8658658658658658)]
)
def test_monte_carlo_prior_var_matches_deseq2(df, expected):
    table = pd.read_csv(DATA / "dispersion_prior_residuals.csv")
    residuals = table.loc[table["df"] == df, "residual"].to_numpy()
    prior_var, var_log, expected_var = dp.dispersion_prior_var(residuals, df + 2, 2)
    assert prior_var == expected
    assert var_log == pytest.approx(dp._mad(residuals) ** 2)
    assert expected_var > 0


def test_prior_var_is_floored_and_deterministic():
    residuals = np.random.default_rng(0).normal(0.0, 0.3, 500)
    first = dp._monte_carlo_prior_var(residuals, 3)
    assert first == 0.25
    assert dp._monte_carlo_prior_var(residuals, 3) == first


def test_prior_var_requires_residuals():
    with pytest.raises(ValueError, match="Poisson"):
        dp.dispersion_prior_var(np.array([]), 5, 2)


def test_airway_prior_var_matches_deseq2():
    import pbglm as pb

    adata = pb.datasets.airway()
    pb.tl.fit(adata, "~ cell + dex")
    # DESeq2 1.38.3: attr(dispersionFunction(dds), "dispPriorVar") == 0.5285285 (m = 8, p = 5)
    assert adata.uns["pbglm"]["fit"]["prior_var"] == pytest.approx(0.5285285285285285, abs=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3])
def test_stored_histograms_equal_a_fresh_simulation(df):
    assert dp.HISTOGRAM_TABLE.exists()
    stored_counts, stored_kept = dp.simulated_histograms(df)
    counts, kept = dp.simulate_histograms(df)
    np.testing.assert_array_equal(stored_counts, counts)
    np.testing.assert_array_equal(stored_kept, kept)
