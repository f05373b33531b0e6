"""Regenerate ``docs/gallery.md`` and its images: ``python docs/_static/gallery/make_gallery.py``.

Each entry's code is run as shown on the page, so the page always shows the code that made the
image. The edgeR section is written only when ``pbglm.tl.fit(..., method="edger")`` works.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
PAGE = HERE.parents[1] / "gallery.md"
DPI = 100

SETUP = """\
import pbglm as pb

airway = pb.datasets.airway()
pb.tl.fit(airway, "~ cell + dex")
pb.tl.test(airway, ("dex", "trt", "untrt"))            # stored as "dex_trt_vs_untrt"
pb.tl.test(airway, reduced="~ cell", name="dex_lrt")
pb.tl.test(airway, ("cell", "N061011", "N052611"))     # "cell_N061011_vs_N052611"
pb.tl.test(airway, ("cell", "N080611", "N052611"))

pasilla = pb.datasets.pasilla()
pb.tl.fit(pasilla, "~ condition", groupby="type")      # one fit per library type
pb.tl.test(pasilla, ("condition", "treated", "untreated"))
"""

EDGER_SETUP = """\
edger = pb.datasets.pasilla()
pb.tl.fit(edger, "~ type + condition", method="edger")
"""

# (section title, text, code, image name); the code's last expression is an Axes or a Figure
ENTRIES = [
    (
        "Volcano plot",
        "{func}`pbglm.pl.volcano`: log2 fold change against -log10 adjusted p-value. Genes with "
        "`padj < alpha` are coloured (the genes `pbglm demo` counts; `lfc_threshold=` adds a fold-change "
        "cut), the `n_top` most significant are labelled without overlaps (with "
        "[adjustText](https://github.com/Phlya/adjustText) when installed), here by the gene symbols "
        "bundled with airway. p-values of exactly 0 are drawn at the smallest non-zero p-value as triangles.",
        'pb.pl.volcano(airway, "dex_trt_vs_untrt", gene_symbols="symbol")',
        "volcano",
    ),
    (
        "Volcano plot of a results table",
        "Any table from {func}`pbglm.get.results` works too. Here raw p-values (the dashed line is "
        "the largest p-value with `padj < 0.1`), no fold-change threshold, and an extra gene "
        "labelled (circled).",
        'res = pb.get.results(airway, "dex_trt_vs_untrt")\n'
        'pb.pl.volcano(res, use_padj=False, lfc_threshold=0, n_top=5, genes=["ENSG00000000003"])',
        "volcano_table",
    ),
    (
        "Per-group results side by side",
        "For per-group fits (`tl.fit(..., groupby=)`) pick the group with `group=`; every function "
        "draws into `ax=` when given.",
        "import matplotlib.pyplot as plt\n\n"
        'fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")\n'
        'for ax, group in zip(axs, ["paired-end", "single-read"]):\n'
        "    pb.pl.volcano(pasilla, group=group, n_top=5, lfc_threshold=0.5, ax=ax)\n"
        "fig",
        "volcano_groups",
    ),
    (
        "MA plot",
        "{func}`pbglm.pl.ma`: log2 fold change against the mean of normalised counts. With `ylim`, "
        "genes beyond the limits are drawn at the border as triangles.",
        'pb.pl.ma(airway, "dex_trt_vs_untrt", ylim=(-4, 4), n_top=5, gene_symbols="symbol")',
        "ma",
    ),
    (
        "p-value histogram",
        "{func}`pbglm.pl.pvalue_hist`: tested genes in colour, genes removed by independent "
        "filtering (a p-value but no adjusted p-value) stacked in grey.",
        'pb.pl.pvalue_hist(airway, "dex_trt_vs_untrt")',
        "pvalue_hist",
    ),
    (
        "Effect sizes across contrasts",
        "{func}`pbglm.pl.effect_sizes` with several tests: genes x tests, coloured by log2 fold "
        "change on a diverging scale centred at 0; a star marks `padj < alpha`. Genes: the "
        "`n_top` most significant in any column, clustered.",
        'tests = ["dex_trt_vs_untrt", "cell_N061011_vs_N052611", "cell_N080611_vs_N052611"]\n'
        'pb.pl.effect_sizes(airway, tests, gene_symbols="symbol")',
        "effect_sizes_tests",
    ),
    (
        "Effect sizes across groups",
        "With one test of a per-group fit the columns are the groups. `kind=\"dots\"`: the dot "
        "area grows with -log10 padj, significant entries are outlined.",
        'pb.pl.effect_sizes(pasilla, "condition_treated_vs_untreated", kind="dots", n_top=15)',
        "effect_sizes_groups",
    ),
    (
        "Coefficients",
        "{func}`pbglm.pl.coefficients`: a forest plot of the fitted coefficients (log2 scale) "
        "with 95% Wald intervals (coef ± 1.96 se) for a few genes.",
        'pb.pl.coefficients(airway, ["SPARCL1", "DUSP1", "SAMHD1"], gene_symbols="symbol")',
        "coefficients",
    ),
    (
        "Dispersions (DESeq2)",
        "{func}`pbglm.pl.dispersions`, as DESeq2's `plotDispEsts`: gene-wise estimates (black), "
        "fitted trend (red), final values (blue), dispersion outliers circled; gene-wise "
        "estimates at the lower bound are drawn as triangles at the bottom.",
        "pb.pl.dispersions(airway)",
        "dispersions",
    ),
    (
        "Design matrix",
        "{func}`pbglm.pl.design`: the design matrix of the fit, samples x coefficients, with the "
        "design's factors next to the sample names.",
        "pb.pl.design(airway)",
        "design",
    ),
    (
        "Counts of one gene",
        "{func}`pbglm.pl.counts`, as DESeq2's `plotCounts`: normalised counts (counts / size "
        "factor, + 0.5 on the log axis) per group, jittered with a fixed seed; a bar marks each "
        "group's median, and `paired_by` joins the samples of each donor.",
        'pb.pl.counts(airway, "SPARCL1", paired_by="cell", gene_symbols="symbol")',
        "counts",
    ),
]

EDGER_ENTRIES = [
    (
        "Dispersions (edgeR)",
        "For edgeR fits: `kind=\"bcv\"` (edgeR's `plotBCV`: tagwise, common and trended biological "
        "coefficient of variation against average log2 CPM) and `kind=\"ql\"` (`plotQLDisp`: raw, "
        "squeezed and prior quasi-likelihood dispersions, quarter-root scale).",
        "import matplotlib.pyplot as plt\n\n"
        'fig, axs = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")\n'
        'pb.pl.dispersions(edger, kind="bcv", ax=axs[0])\n'
        'pb.pl.dispersions(edger, kind="ql", ax=axs[1])\n'
        "fig",
        "dispersions_edger",
    ),
]


def _run(code: str, namespace: dict):
    """Run ``code``; return the value of its last line (an expression)."""
    *body, last = code.strip().splitlines()
    exec("\n".join(body), namespace)  # noqa: S102 - our own snippets
    return eval(last, namespace)  # noqa: S307


def main() -> None:
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the per-group pasilla fits have few residual df
        exec(SETUP, namespace)  # noqa: S102
    entries = list(ENTRIES)
    try:
        exec(EDGER_SETUP, namespace)  # noqa: S102
    except Exception as err:  # noqa: BLE001 - the edgeR pipeline may not be wired up yet
        print(f"edgeR section skipped: {type(err).__name__}: {err}")
        edger = False
    else:
        entries += EDGER_ENTRIES
        edger = True
    parts = [
        "# Plot gallery\n",
        "Every plotting function of {mod}`pbglm.pl`, on the data sets bundled with pbglm. Each "
        "function takes the AnnData first, draws into `ax=` (or a new figure) and returns the Axes "
        "(the Figure with `return_fig=True`). The images are made by "
        "`docs/_static/gallery/make_gallery.py`, which runs the code shown.\n",
        "Setup (fits and tests used below):\n",
        "```python\n" + SETUP + ("\n" + EDGER_SETUP if edger else "") + "```\n",
    ]
    for title, text, code, name in entries:
        out = _run(code, namespace)
        fig = out if isinstance(out, matplotlib.figure.Figure) else out.figure
        fig.savefig(HERE / f"{name}.png", dpi=DPI)
        plt.close("all")
        shown = code.strip()
        if shown.endswith("\nfig"):
            shown = shown[: -len("\nfig")]
        parts.append(f"## {title}\n")
        parts.append(textwrap.fill(text, 100) + "\n")
        parts.append("```python\n" + shown + "\n```\n")
        parts.append(f"![{title}](_static/gallery/{name}.png)\n")
    PAGE.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
