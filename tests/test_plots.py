"""Tests for :mod:`pbglm.pl`: image comparisons against baselines in ``tests/_images`` and input errors.

Regenerate the baselines (after an intended change, then look at every PNG) with::

    PBGLM_UPDATE_IMAGES=1 python -m pytest tests/test_plots.py
"""

from __future__ import annotations

import inspect
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import pbglm as pb  # noqa: E402

DEX = "dex_trt_vs_untrt"
COND = "condition_treated_vs_untreated"
TOP3 = ["ENSG00000152583", "ENSG00000120129", "ENSG00000101347"]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _mpl_state():
    """Default style for every test, and no figure left open afterwards."""
    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams["svg.hashsalt"] = "pbglm"
        yield
    plt.close("all")


@pytest.fixture(scope="module")
def airway():
    """Airway, ``~ cell + dex``, with a Wald test, an LRT and two donor contrasts."""
    a = pb.datasets.airway()
    pb.tl.fit(a, "~ cell + dex")
    pb.tl.test(a, ("dex", "trt", "untrt"))
    pb.tl.test(a, reduced="~ cell", name="dex_lrt")
    pb.tl.test(a, ("cell", "N061011", "N052611"))
    pb.tl.test(a, ("cell", "N080611", "N052611"))
    return a


@pytest.fixture(scope="module")
def pasilla_groups():
    """Pasilla fit per library type (``groupby="type"``), ``~ condition``."""
    p = pb.datasets.pasilla()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few residual df per group: a design warning
        pb.tl.fit(p, "~ condition", groupby="type")
    pb.tl.test(p, ("condition", "treated", "untreated"))
    return p


@pytest.fixture(scope="module")
def edger_like(airway):
    """An AnnData with the per-gene fields of an edgeR fit (made up from the airway DESeq2 fit).

    Only the plotting is under test here, so the values need to look like edgeR's, not be them.
    """
    import anndata as ad

    var = airway.var
    keep = (var["pbglm_base_mean"] > 1).to_numpy() & np.isfinite(var["pbglm_dispersion_gene"].to_numpy())
    counts = np.asarray(airway.X[:, keep], dtype=float)
    lib = counts.sum(axis=1)
    alc = np.log2(np.mean(counts / lib[:, None] * 1e6, axis=0) + 0.25)
    tag = var["pbglm_dispersion"].to_numpy()[keep]
    trend = var["pbglm_dispersion_trend"].to_numpy()[keep]
    rng = np.random.default_rng(0)
    prior = 1.0 + 0.8 * np.exp(-np.clip(alc, -2, None) / 2)
    raw = prior * rng.chisquare(3, size=alc.size) / 3
    post = (3 * raw + 8 * prior) / 11
    fields = {
        "ave_log_cpm": alc, "dispersion": trend, "dispersion_trend": trend, "dispersion_tagwise": tag,
        "dispersion_common": np.full(tag.size, np.median(tag)), "ql_dispersion": raw,
        "ql_dispersion_post": post, "ql_dispersion_prior": prior,
    }
    e = ad.AnnData(X=counts, obs=airway.obs[["cell", "dex"]].copy(),
                   var=pd.DataFrame({f"pbglm_{k}": v for k, v in fields.items()}, index=airway.var_names[keep]))
    e.uns["pbglm"] = {k: airway.uns["pbglm"][k] for k in ("formula", "design", "design_columns", "factors")}
    e.uns["pbglm"]["method"] = "edger"
    return e




# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def test_volcano(airway, check_image):
    check_image(pb.pl.volcano(airway, DEX), "volcano")


def test_volcano_and_ma_count_what_the_summary_counts(airway):
    """Default volcano and MA colour the genes with padj < 0.1: the demo's 4,819 (2,604 up, 2,215 down)."""
    res = pb.get.results(airway, DEX)
    sig = res[res["padj"] < 0.1]
    want = {"up": int((sig["log2fc"] > 0).sum()), "down": int((sig["log2fc"] < 0).sum())}
    assert want["up"] + want["down"] == 4819
    for ax in (pb.pl.volcano(airway, DEX), pb.pl.ma(airway, DEX)):
        legend = ax.get_legend()
        assert legend.get_title().get_text() == "padj < 0.1"
        got = {t.get_text().split()[0]: int(t.get_text().split("(")[1].rstrip(")").replace(",", ""))
               for t in legend.get_texts()}
        assert got["up"] == want["up"] and got["down"] == want["down"]


def test_volcano_table_with_zero_pvalues(airway, check_image):
    df = pb.get.results(airway, DEX)
    df.loc[df["pvalue"].nsmallest(3).index, "pvalue"] = 0.0
    ax = pb.pl.volcano(df, use_padj=False, lfc_threshold=0.0, n_top=5, genes=["ENSG00000000003"])
    assert any(t.get_text() == "ENSG00000000003" for t in ax.texts)
    assert any("p = 0" in t.get_text() for t in ax.get_legend().get_texts())
    check_image(ax, "volcano_table_p0")


def test_volcano_group(pasilla_groups, check_image):
    check_image(pb.pl.volcano(pasilla_groups, group="paired-end", lfc_threshold=0.5, n_top=6), "volcano_group")


def test_ma(airway, check_image):
    check_image(pb.pl.ma(airway, DEX), "ma")


def test_ma_ylim_labels(airway, check_image):
    ax = pb.pl.ma(airway, DEX, ylim=(-4, 4), lfc_threshold=1.0, genes=TOP3[:2])
    assert ax.get_ylim() == (-4, 4)
    check_image(ax, "ma_ylim")


def test_effect_sizes_tests(airway, check_image):
    tests = [DEX, "cell_N061011_vs_N052611", "cell_N080611_vs_N052611"]
    check_image(pb.pl.effect_sizes(airway, tests, n_top=12), "effect_sizes_tests")


def test_effect_sizes_dots_genes(airway, check_image):
    tests = [DEX, "cell_N061011_vs_N052611", "cell_N080611_vs_N052611"]
    ax = pb.pl.effect_sizes(airway, tests, genes=TOP3 + ["ENSG00000000003"], kind="dots", order="given")
    assert [t.get_text() for t in ax.get_yticklabels()] == TOP3 + ["ENSG00000000003"]
    check_image(ax, "effect_sizes_dots")


def test_effect_sizes_groups(pasilla_groups, check_image):
    ax = pb.pl.effect_sizes(pasilla_groups, COND, n_top=10)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["paired-end", "single-read"]
    check_image(ax, "effect_sizes_groups")


def test_effect_sizes_marks_genes_not_tested_in_a_group():
    """A gene filtered out in one group is drawn hatched grey ("not tested"), not in the colour of log2FC 0."""
    from matplotlib.patches import Rectangle

    cells = pb.datasets.simulate_single_cell(n_donors=8, n_cell_types=3, n_genes=300, seed=1)
    pbulk = pb.pp.pseudobulk(cells, sample_key="donor", groups_key="cell_type", layer="counts")
    pb.tl.fit(pbulk, "~ condition", groupby="cell_type", method="edger")
    pb.tl.test(pbulk, ("condition", "stim", "ctrl"), name="stim")
    ax = pb.pl.effect_sizes(pbulk, "stim", n_top=25)
    res = pb.get.results(pbulk, "stim")
    shown = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    lfc = res.pivot(index="gene", columns="group", values="log2fc").loc[shown, cols]
    hatched = {(int(p.get_y()), int(p.get_x())) for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()}
    assert hatched == set(zip(*np.nonzero(lfc.isna().to_numpy()), strict=True)) and hatched
    assert "not tested" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_coefficients(airway, check_image):
    check_image(pb.pl.coefficients(airway, TOP3), "coefficients")


def test_coefficients_chosen(airway, check_image):
    check_image(pb.pl.coefficients(airway, TOP3[0], coefs=["Intercept", "dex[trt]"], level=0.9), "coefficients_chosen")


def test_dispersions(airway, check_image):
    check_image(pb.pl.dispersions(airway), "dispersions")


def test_dispersions_group(pasilla_groups, check_image):
    check_image(pb.pl.dispersions(pasilla_groups, group="single-read"), "dispersions_group")


@pytest.mark.parametrize("kind", ["bcv", "ql"])
def test_dispersions_edger(edger_like, check_image, kind):
    check_image(pb.pl.dispersions(edger_like, kind=kind), f"dispersions_{kind}")


def test_pvalue_hist(airway, check_image):
    check_image(pb.pl.pvalue_hist(airway, DEX), "pvalue_hist")


def test_pvalue_hist_group(pasilla_groups, check_image):
    check_image(pb.pl.pvalue_hist(pasilla_groups, group="single-read", bins=10, show_filtered=False),
                "pvalue_hist_group")


def test_design(airway, check_image):
    check_image(pb.pl.design(airway), "design")


def test_design_group(pasilla_groups, check_image):
    check_image(pb.pl.design(pasilla_groups, group="single-read", obs_columns=[]), "design_group")


def test_counts_paired(airway, check_image):
    check_image(pb.pl.counts(airway, TOP3[0], paired_by="cell"), "counts_paired")


def test_counts_group(pasilla_groups, check_image):
    check_image(pb.pl.counts(pasilla_groups, "FBgn0039155", group="paired-end", seed=1), "counts_group")


def test_counts_raw(airway, check_image):
    ax = pb.pl.counts(airway, TOP3[1], by="cell", normalize=False, log=False)
    assert ax.get_yscale() == "linear"
    check_image(ax, "counts_raw")


# ---------------------------------------------------------------------------------------------
# behaviour
# ---------------------------------------------------------------------------------------------

PLOTS = [
    pb.pl.volcano, pb.pl.ma, pb.pl.effect_sizes, pb.pl.coefficients, pb.pl.dispersions, pb.pl.pvalue_hist,
    pb.pl.design, pb.pl.counts,
]


@pytest.mark.parametrize("func", PLOTS, ids=lambda f: f.__name__)
def test_signature_conventions(func):
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert 1 <= len(positional) <= 3
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[len(positional):])
    names = [p.name for p in params]
    assert names[-2:] == ["ax", "return_fig"]
    assert "save" not in names and "show" not in names
    assert all(p.annotation is not inspect.Parameter.empty for p in params)
    assert func.__doc__ and "Parameters\n    ----------" in func.__doc__
    assert func.__name__ in pb.pl.__all__


def test_ax_and_return_fig(airway):
    fig, axs = plt.subplots(1, 2)
    n_figs = len(plt.get_fignums())
    assert pb.pl.pvalue_hist(airway, DEX, ax=axs[0]) is axs[0]
    assert pb.pl.dispersions(airway, ax=axs[1]) is axs[1]
    assert len(plt.get_fignums()) == n_figs  # drew into the given axes, no new figure
    out = pb.pl.ma(airway, DEX, return_fig=True)
    assert isinstance(out, Figure)
    assert isinstance(pb.pl.design(airway), Axes)
    root = plt.figure(layout="constrained")
    sub = root.subfigures(1, 2)[0].subplots()
    assert pb.pl.volcano(airway, DEX, n_top=3, ax=sub, return_fig=True) is root  # labels placed in a SubFigure


def test_labels_without_adjusttext(airway, monkeypatch):
    monkeypatch.setitem(sys.modules, "adjustText", None)  # import fails
    ax = pb.pl.volcano(airway, DEX, n_top=4)
    labels = [t for t in ax.texts if t.get_text().startswith("ENSG")]
    assert len(labels) == 4
    ax.figure.draw_without_rendering()
    renderer = ax.figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text, not its leader line
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_labels_do_not_overlap(airway):
    ax = pb.pl.volcano(airway, DEX, n_top=15)
    ax.figure.draw_without_rendering()
    renderer = ax.figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_text().startswith("ENSG")]
    assert len(boxes) == 15
    overlapping = sum(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert overlapping == 0
    inside = ax.get_window_extent(renderer)
    assert all(inside.x0 - 1 <= b.x0 and b.x1 <= inside.x1 + 1 for b in boxes)


def test_gene_symbols(airway):
    a = airway[:, :2000].copy()
    a.var["symbol"] = [f"G{i}" for i in range(a.n_vars)]
    tested = f"G{np.flatnonzero(np.isfinite(pb.get.results(a, DEX)['padj']))[0]}"
    ax = pb.pl.volcano(a, DEX, n_top=3, gene_symbols="symbol", genes=[tested])
    texts = {t.get_text() for t in ax.texts}
    assert tested in texts and len(texts) == 4 and all(t.startswith("G") for t in texts)
    ax = pb.pl.counts(a, tested, gene_symbols="symbol")
    assert ax.get_title() == tested


def _all_text(fig) -> set[str]:
    texts = {t.get_text() for t in fig.findobj(Text)}
    return {line for t in texts for line in t.split("\n")}


@pytest.mark.parametrize(
    "plot",
    [
        lambda a: pb.pl.volcano(a, DEX, n_top=10, gene_symbols="symbol", return_fig=True),
        lambda a: pb.pl.ma(a, DEX, n_top=10, gene_symbols="symbol", return_fig=True),
        lambda a: pb.pl.effect_sizes(a, [DEX, "dex_lrt"], genes=TOP3, gene_symbols="symbol", return_fig=True),
        lambda a: pb.pl.coefficients(a, ["SPARCL1", "DUSP1"], gene_symbols="symbol", return_fig=True),
        lambda a: pb.pl.counts(a, "DUSP1", gene_symbols="symbol", return_fig=True),
    ],
    ids=["volcano", "ma", "effect_sizes", "coefficients", "counts"],
)
def test_bundled_symbols_label_every_gene_plot(airway, plot):
    texts = _all_text(plot(airway))
    assert "DUSP1" in texts  # ENSG00000120129
    assert not any(t.startswith("ENSG") for t in texts) and "nan" not in texts


def test_airway_symbols():
    a = pb.datasets.airway()
    sym = a.var["symbol"]
    assert sym["ENSG00000152583"] == "SPARCL1" and sym["ENSG00000120129"] == "DUSP1"
    assert int(sym.notna().sum()) == 35_329 and sym.isna().sum() == a.n_vars - 35_329


def test_gene_without_symbol_keeps_its_id(airway):
    res = pb.get.results(airway, DEX)
    unnamed = res.index[res["padj"].notna().to_numpy() & airway.var["symbol"].isna().to_numpy()][0]
    ax = pb.pl.volcano(airway, DEX, n_top=0, genes=[unnamed], gene_symbols="symbol")
    assert {t.get_text() for t in ax.texts} == {unnamed}
    table = res.assign(symbol=airway.var["symbol"])
    ax = pb.pl.volcano(table, n_top=0, genes=[unnamed], gene_symbols="symbol")
    assert {t.get_text() for t in ax.texts} == {unnamed}


def test_ma_log_cpm_axis(airway):
    df = pb.get.results(airway, DEX)
    df["log_cpm"] = np.log2(df["base_mean"] + 0.5)
    ax = pb.pl.ma(df, x="log_cpm")
    assert ax.get_xscale() == "linear"


def test_volcano_table_long_needs_group(pasilla_groups):
    long = pb.get.results(pasilla_groups, COND)
    with pytest.raises(ValueError, match="several groups.*paired-end"):
        pb.pl.volcano(long)
    ax = pb.pl.volcano(long, COND, group="single-read", n_top=0)
    assert ax.get_title() == f"{COND} (single-read)"


def test_counts_jitter_is_seeded(airway):
    first = pb.pl.counts(airway, TOP3[0], seed=3).collections[0].get_offsets().copy()
    again = pb.pl.counts(airway, TOP3[0], seed=3).collections[0].get_offsets()
    np.testing.assert_array_equal(first, again)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda a: pb.pl.volcano(a, "nope"),
        lambda a: pb.pl.ma(a, "nope"),
        lambda a: pb.pl.pvalue_hist(a, "nope"),
        lambda a: pb.pl.effect_sizes(a, [DEX, "nope"]),
    ],
    ids=["volcano", "ma", "pvalue_hist", "effect_sizes"],
)
def test_unknown_test_lists_stored(airway, call):
    with pytest.raises(KeyError, match=r"No test named 'nope'.*Stored tests: \['dex_trt_vs_untrt', 'dex_lrt'"):
        call(airway)


def test_test_required_when_several(airway):
    with pytest.raises(ValueError, match="Pass test=.*dex_lrt"):
        pb.pl.volcano(airway)


@pytest.mark.parametrize(
    "call",
    [
        lambda a: pb.pl.counts(a, "NOTAGENE"),
        lambda a: pb.pl.coefficients(a, [TOP3[0], "NOTAGENE"]),
        lambda a: pb.pl.volcano(a, DEX, genes=["NOTAGENE"]),
        lambda a: pb.pl.effect_sizes(a, [DEX, "dex_lrt"], genes=["NOTAGENE"]),
    ],
    ids=["counts", "coefficients", "volcano", "effect_sizes"],
)
def test_unknown_gene(airway, call):
    with pytest.raises(KeyError, match=r"Gene\(s\) \['NOTAGENE'\] not found in var_names.*ENSG"):
        call(airway)


def test_per_group_plot_without_groups(airway):
    with pytest.raises(ValueError, match="needs a per-group fit.*has no groups"):
        pb.pl.effect_sizes(airway, DEX)
    with pytest.raises(ValueError, match="has no groups"):
        pb.pl.volcano(airway, DEX, group="A")
    with pytest.raises(ValueError, match="has no groups"):
        pb.pl.effect_sizes(airway, [DEX, "dex_lrt"], groups=["A"])
    with pytest.raises(ValueError, match="has no groups"):
        pb.pl.dispersions(airway, group="A")


def test_group_required_and_checked(pasilla_groups):
    with pytest.raises(ValueError, match=r"per group \(groupby='type'\).*\['paired-end', 'single-read'\]"):
        pb.pl.volcano(pasilla_groups, COND)
    with pytest.raises(ValueError, match="per group"):
        pb.pl.dispersions(pasilla_groups)
    with pytest.raises(ValueError, match="per group"):
        pb.pl.counts(pasilla_groups, "FBgn0039155")
    with pytest.raises(KeyError, match=r"Group 'nope' was not fit; fitted groups: \['paired-end', 'single-read'\]"):
        pb.pl.design(pasilla_groups, group="nope")
    with pytest.raises(KeyError, match="Group.*'nope'.*not fit"):
        pb.pl.effect_sizes(pasilla_groups, COND, groups=["nope"])


def test_no_fit():
    a = pb.datasets.pasilla()[:, :50].copy()
    with pytest.raises(KeyError, match="No pbglm fit stored under key='pbglm'.*tl.fit"):
        pb.pl.dispersions(a)
    with pytest.raises(KeyError, match="No pbglm fit"):
        pb.pl.volcano(a, "x")
    with pytest.raises(KeyError, match="No size factors.*normalize=False"):
        pb.pl.counts(a, a.var_names[0], by="condition")
    ax = pb.pl.counts(a, a.var_names[0], by="condition", normalize=False)
    assert ax.get_ylabel() == "count + 0.5"


def test_bad_arguments(airway, edger_like):
    with pytest.raises(ValueError, match="kind='ql' needs.*method='edger'"):
        pb.pl.dispersions(airway, kind="ql")
    with pytest.raises(ValueError, match="kind='deseq2' needs.*edgeR fit"):
        pb.pl.dispersions(edger_like, kind="deseq2")
    with pytest.raises(KeyError, match=r"Coefficient\(s\) \['dex'\] are not in the design.*dex\[trt\]"):
        pb.pl.coefficients(airway, TOP3, coefs=["dex"])
    with pytest.raises(KeyError, match="by='nope' is not a column of .obs"):
        pb.pl.counts(airway, TOP3[0], by="nope")
    with pytest.raises(ValueError, match="kind must be"):
        pb.pl.effect_sizes(airway, [DEX, "dex_lrt"], kind="bars")
    with pytest.raises(ValueError, match="alpha must be in"):
        pb.pl.volcano(airway, DEX, alpha=2)
    with pytest.raises(ValueError, match="no 'padj' column"):
        pb.pl.volcano(pb.get.results(airway, DEX).drop(columns="padj"))
    with pytest.raises(TypeError, match="AnnData or a results DataFrame"):
        pb.pl.volcano(np.zeros(3))
    with pytest.raises(KeyError, match="key='other'"):
        pb.pl.design(airway, key="other")


def test_log_axis_under_two_decades_has_few_plain_labels():
    """Minor ticks of a short log axis are labelled sparsely, as plain numbers (they collided as 3x10^1, 4x10^1)."""
    import matplotlib.pyplot as plt

    from pbglm.pl._utils import readable_log_ticks

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter([17, 120], [1, 2])
    ax.set_xscale("log")
    readable_log_ticks(ax.xaxis)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    locs = [v for v in [*ax.xaxis.get_majorticklocs(), *ax.xaxis.get_minorticklocs()] if lo <= v <= hi]
    labels = [s for s in (ax.xaxis.get_minor_formatter()(v) for v in locs) if s]
    assert 2 <= len(labels) <= 6, labels
    assert all(s.replace(",", "").isdigit() for s in labels), labels  # plain numbers, no 3x10^1
    plt.close(fig)
