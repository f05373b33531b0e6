"""Command line: ``pbglm demo`` and ``pbglm run``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import anndata as ad
import pandas as pd


def _load_tables(counts_path: str, samples_path: str) -> ad.AnnData:
    """Counts CSV (genes in rows, samples in columns; or the transpose) plus a samples CSV."""
    counts = pd.read_csv(counts_path, index_col=0)
    samples = pd.read_csv(samples_path, index_col=0)
    samples.index = samples.index.astype(str)
    counts.columns = counts.columns.astype(str)
    counts.index = counts.index.astype(str)
    if set(samples.index) <= set(counts.columns):
        matrix = counts.loc[:, samples.index].T
    elif set(samples.index) <= set(counts.index):
        matrix = counts.loc[samples.index]
    else:
        raise SystemExit(
            "error: the sample names (first column of --samples) match neither the columns nor the rows of --counts."
        )
    return ad.AnnData(X=matrix.to_numpy(), obs=samples, var=pd.DataFrame(index=matrix.columns))


def _parse_contrast(text: str | None):
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    return tuple(parts) if len(parts) == 3 else text


def _summary(res: pd.DataFrame, name: str, alpha: float, n_top: int = 10) -> str:
    tested = int(res["pvalue"].notna().sum())
    sig = res[res["padj"] < alpha]
    up, down = int((sig["log2fc"] > 0).sum()), int((sig["log2fc"] < 0).sum())
    top = res.dropna(subset=["padj"]).sort_values("padj").head(n_top)
    lines = [
        f"test: {name}",
        f"genes tested: {tested} of {len(res)}",
        f"significant at {alpha:.0%} FDR: {len(sig)} ({up} up, {down} down)",
        "top genes:",
        top[["base_mean", "log2fc", "pvalue", "padj"]].to_string(float_format=lambda v: f"{v:.4g}"),
    ]
    return "\n".join(lines)


def _run(adata: ad.AnnData, design: str, contrast, *, method: str, reduced: str | None, layer: str | None,
         out: Path, alpha: float) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pbglm as pb

    out.mkdir(parents=True, exist_ok=True)
    pb.tl.fit(adata, design, method=method, layer=layer)
    if reduced is not None:
        pb.tl.test(adata, contrast, reduced=reduced, name="lrt", alpha=alpha)
        name = "lrt"
    else:
        if contrast is None:
            raise SystemExit("error: give --contrast factor,level,reference (or a coefficient name) or --reduced.")
        pb.tl.test(adata, contrast, alpha=alpha)
        name = list(adata.uns["pbglm"]["tests"])[-1]
    res = pb.get.results(adata, name)
    res.to_csv(out / "results.csv")
    fig = pb.pl.volcano(adata, name, alpha=alpha, return_fig=True)
    fig.savefig(out / "volcano.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    sys.stdout.write(_summary(res, name, alpha) + "\n")
    sys.stdout.write(f"wrote {out / 'results.csv'} and {out / 'volcano.png'}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pbglm`` command."""
    parser = argparse.ArgumentParser(prog="pbglm", description="NB-GLM differential expression (DESeq2 / edgeR-QL).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit ~ cell + dex on the bundled airway data and test trt vs untrt")
    demo.add_argument("--out", default="pbglm_demo", help="output folder (default: pbglm_demo)")
    demo.add_argument("--method", default="deseq2", choices=["deseq2", "edger"])
    run = sub.add_parser("run", help="run a design on your data")
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="an .h5ad file (samples x genes, raw counts in X or --layer)")
    src.add_argument("--counts", help="a counts CSV: genes in rows, samples in columns (needs --samples)")
    run.add_argument("--samples", help="a samples CSV whose first column holds the sample names")
    run.add_argument("--layer", default=None, help="layer of the .h5ad holding raw counts")
    run.add_argument("--design", required=True, help='design formula, e.g. "~ batch + condition"')
    run.add_argument("--contrast", help="factor,level,reference or a coefficient name")
    run.add_argument("--reduced", help="reduced formula for a likelihood-ratio test")
    run.add_argument("--method", default="deseq2", choices=["deseq2", "edger"])
    run.add_argument("--alpha", type=float, default=0.1, help="FDR level (default 0.1)")
    run.add_argument("--out", default="pbglm_results", help="output folder")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "demo":
        import pbglm as pb

        adata = pb.datasets.airway()
        return _run(adata, "~ cell + dex", ("dex", "trt", "untrt"), method=args.method, reduced=None, layer=None,
                    out=Path(args.out), alpha=0.1)
    if args.input:
        adata = ad.read_h5ad(args.input)
    else:
        if not args.samples:
            parser.error("--counts needs --samples")
        adata = _load_tables(args.counts, args.samples)
    try:
        return _run(adata, args.design, _parse_contrast(args.contrast), method=args.method, reduced=args.reduced,
                    layer=args.layer, out=Path(args.out), alpha=args.alpha)
    except (KeyError, ValueError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
