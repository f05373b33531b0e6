"""Command line: ``pbglm demo`` and ``pbglm run``.

Errors of the user's making (files, tables, design, contrast) end with one line on stderr,
``pbglm: error: ...``, and exit status 2, as argparse does for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd


class CliError(Exception):
    """A problem with the command's input, reported as one line and exit status 2."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pbglm")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _names(values, n: int = 5) -> str:
    values = [str(v) for v in values]
    shown = ", ".join(values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def _existing_file(path: str, option: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CliError(f"{option} {path}: no such file.")
    if p.is_dir():
        raise CliError(f"{option} {path} is a folder, not a file.")
    return p


def _read_table(path: Path, option: str) -> pd.DataFrame:
    """A CSV, or a tab-separated file (detected from the header line), first column as the index."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            header = fh.readline()
        sep = "\t" if header.count("\t") > header.count(",") else ","
        table = pd.read_csv(path, sep=sep, index_col=0)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise CliError(f"{option} {path} cannot be read as a table: {err}") from None
    table.index = table.index.astype(str)
    table.columns = table.columns.astype(str)
    return table


def _check_counts(counts: pd.DataFrame) -> np.ndarray:
    """Counts (genes x samples) as integers, or an error naming the offending gene and sample."""
    for sample in counts.columns:
        col = counts[sample]
        if not pd.api.types.is_numeric_dtype(col):
            bad = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
            raise CliError(
                f"--counts: the column of sample {sample!r} is not numeric (e.g. {bad.iloc[0]!r} for gene "
                f"{bad.index[0]!r}); the table must hold read counts only, with gene names in the first column."
            )
    values = counts.to_numpy(dtype=float)
    problems = (
        (np.isnan(values), "has an empty cell", "fill it with the count (0 if none)"),
        (np.isinf(values), "has an infinite value", "pbglm needs raw read counts"),
        (values < 0, "has a negative value", "pbglm needs raw read counts"),
        (values != np.round(values), "has a non-integer value",
         "pbglm needs raw read counts, not normalised or log-transformed values"),
    )
    for mask, what, fix in problems:
        with np.errstate(invalid="ignore"):
            hit = np.argwhere(mask)
        if hit.size:
            g, s = hit[0]
            raise CliError(
                f"--counts {what} (gene {counts.index[g]!r}, sample {counts.columns[s]!r}: {values[g, s]:g}); {fix}."
            )
    return values.astype(np.int64)


def _load_tables(counts_path: str, samples_path: str):
    """Counts table (genes in rows, samples in columns; or the transpose) plus a samples table."""
    import anndata as ad

    counts = _read_table(_existing_file(counts_path, "--counts"), "--counts")
    samples = _read_table(_existing_file(samples_path, "--samples"), "--samples")
    wanted = list(samples.index)
    if len(set(wanted)) < len(wanted):
        dup = samples.index[samples.index.duplicated()].unique()
        raise CliError(f"--samples names a sample more than once: {_names(dup)}.")
    in_cols = len(set(wanted) & set(counts.columns))
    in_rows = len(set(wanted) & set(counts.index))
    if in_cols == 0 and in_rows == 0:
        raise CliError(
            f"none of the {len(wanted)} sample names in the first column of --samples ({_names(wanted, 3)}) is a "
            f"column or row name of --counts (columns: {_names(counts.columns, 3)}; rows: {_names(counts.index, 3)})."
        )
    unit = "column"
    if in_rows > in_cols:  # samples in rows
        counts, unit = counts.T, "row"
    have = list(counts.columns)
    missing = [s for s in wanted if s not in set(have)]
    extra = [s for s in have if s not in set(wanted)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} sample(s) of --samples have no counts in --counts: {_names(missing)}")
        if extra:
            parts.append(f"{len(extra)} sample(s) of --counts are not in --samples: {_names(extra)}")
        raise CliError("; ".join(parts) + f". Give every sample a {unit} of counts and a row in --samples.")
    counts = counts.loc[:, wanted]
    values = _check_counts(counts)
    return ad.AnnData(X=values.T.copy(), obs=samples, var=pd.DataFrame(index=counts.index))


def _load_h5ad(path: str):
    import anndata as ad

    p = _existing_file(path, "--input")
    try:
        return ad.read_h5ad(p)
    except (OSError, KeyError, ValueError) as err:
        raise CliError(f"--input {path} cannot be read as an .h5ad file: {_plain(err)}") from None


def _check_design_columns(adata, design: str, option: str) -> None:
    """Design columns missing from the samples: hint that genes and samples may be swapped."""
    from ._design import design_variables

    try:
        variables = design_variables(design)
    except ValueError:
        return  # tl.fit reports the formula itself
    missing = [v for v in variables if v not in adata.obs.columns]
    if not missing:
        return
    in_var = all(v in adata.var.columns for v in missing)
    if in_var or (adata.obs.shape[1] == 0 and adata.n_obs > adata.n_vars):
        where = "are columns of the genes table (.var), not of the samples (.obs)" if in_var else (
            "are not columns of the samples table (.obs is empty)")
        raise CliError(
            f"the design uses {_names(missing)}, which {where}: genes and samples may be swapped ({option} holds "
            f"{adata.n_obs} rows x {adata.n_vars} columns; pbglm wants samples in rows and genes in columns, "
            "e.g. write adata.T)."
        )


def _plain(err: BaseException) -> str:
    """An exception's message on one line, without KeyError's quotes or ANSI colour codes."""
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]
    else:
        text = str(err)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _cli_words(text: str) -> str:
    """Library advice in the command line's words (``layer='counts'`` -> ``--layer counts``)."""
    text = re.sub(r"\blayer=(['\"])([^'\"]*)\1", r"--layer \2", text)
    return re.sub(r"\blayer=", "--layer", text)


def _parse_contrast(text: str | None):
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    return tuple(parts) if len(parts) == 3 else text


def _summary(res: pd.DataFrame, name: str, alpha: float, n_top: int = 10, lfc: float = 1.0,
             symbols: pd.Series | None = None) -> str:
    tested = int(res["pvalue"].notna().sum())
    sig = res[res["padj"] < alpha]
    up, down = int((sig["log2fc"] > 0).sum()), int((sig["log2fc"] < 0).sum())
    big = sig[sig["log2fc"].abs() > lfc]
    big_up, big_down = int((big["log2fc"] > 0).sum()), int((big["log2fc"] < 0).sum())
    top = res.dropna(subset=["padj"]).sort_values("padj").head(n_top)[["base_mean", "log2fc", "pvalue", "padj"]]
    if symbols is not None:
        top.insert(0, "symbol", symbols.reindex(top.index).fillna(""))
    lines = [
        f"test: {name}",
        f"genes tested: {tested} of {len(res)}",
        f"significant at {alpha:.0%} FDR: {len(sig)} ({up} up, {down} down)",
        f"  of which |log2FC| > {lfc:g}: {len(big)} ({big_up} up, {big_down} down)",
        "top genes:",
        top.to_string(float_format=lambda v: f"{v:.4g}"),
    ]
    return "\n".join(lines)


def _out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {path} is an existing file; --out names a folder for results.csv and volcano.png.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"--out {path}: cannot create the folder ({err.strerror}).") from None
    return out


def _run(adata, design: str, contrast, *, method: str, reduced: str | None, layer: str | None, out: Path,
         alpha: float, gene_symbols: str | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pbglm as pb

    from ._compile_notice import notify_compile

    notify_compile(method, stream=sys.stderr)  # before tl.fit, which then only logs it
    pb.tl.fit(adata, design, method=method, layer=layer)
    if reduced is not None:
        pb.tl.test(adata, reduced=reduced, name="lrt", alpha=alpha)
        name = "lrt"
    else:
        pb.tl.test(adata, contrast, alpha=alpha)
        name = list(adata.uns["pbglm"]["tests"])[-1]
    res = pb.get.results(adata, name)
    res.to_csv(out / "results.csv")
    fig = pb.pl.volcano(adata, name, alpha=alpha, gene_symbols=gene_symbols, return_fig=True)
    fig.savefig(out / "volcano.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    symbols = adata.var[gene_symbols] if gene_symbols is not None else None
    sys.stdout.write(_summary(res, name, alpha, symbols=symbols) + "\n")
    sys.stdout.write(f"wrote {out / 'results.csv'} and {out / 'volcano.png'}\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbglm", description="NB-GLM differential expression (DESeq2 / edgeR-QL).")
    parser.add_argument("--version", action="version", version=f"pbglm {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit ~ cell + dex on the bundled airway data and test trt vs untrt")
    demo.add_argument("--out", default="pbglm_demo", help="output folder (default: pbglm_demo)")
    demo.add_argument("--method", default="deseq2", choices=["deseq2", "edger"])
    run = sub.add_parser("run", help="run a design on your data")
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="an .h5ad file (samples x genes, raw counts in X or --layer)")
    src.add_argument("--counts", help="a counts CSV or TSV: genes in rows, samples in columns (needs --samples)")
    run.add_argument("--samples", help="a samples CSV or TSV whose first column holds the sample names")
    run.add_argument("--layer", default=None, help="layer of the .h5ad holding raw counts")
    run.add_argument("--design", required=True, help='design formula, e.g. "~ batch + condition"')
    test = run.add_mutually_exclusive_group(required=True)
    test.add_argument("--contrast", help="Wald / QL F-test of factor,level,reference or of a coefficient name")
    test.add_argument("--reduced", help="likelihood-ratio test against this reduced formula (instead of --contrast)")
    run.add_argument("--method", default="deseq2", choices=["deseq2", "edger"])
    run.add_argument("--alpha", type=float, default=0.1, help="FDR level (default 0.1)")
    run.add_argument("--out", default="pbglm_results", help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pbglm`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "run" and args.counts and not args.samples:
        parser.error("--counts needs --samples (the table of samples and their design columns)")
    if args.command == "run" and args.input and args.samples:
        parser.error("--samples goes with --counts; an .h5ad file carries its samples table (obs)")
    if args.command == "run" and args.counts and args.layer:
        parser.error("--layer names a layer of an .h5ad file (--input); a --counts table has none")
    if args.command == "run" and not 0 < args.alpha < 1:
        parser.error(f"--alpha must be between 0 and 1 (an FDR level such as 0.1), got {args.alpha:g}")
    try:
        out = _out_dir(args.out)
        if args.command == "demo":
            import pbglm as pb

            adata = pb.datasets.airway()
            return _run(adata, "~ cell + dex", ("dex", "trt", "untrt"), method=args.method, reduced=None,
                        layer=None, out=out, alpha=0.1, gene_symbols="symbol" if "symbol" in adata.var else None)
        if args.input:
            adata = _load_h5ad(args.input)
            option = "--input"
        else:
            adata = _load_tables(args.counts, args.samples)
            option = "--samples"
        _check_design_columns(adata, args.design, option)
        return _run(adata, args.design, _parse_contrast(args.contrast), method=args.method, reduced=args.reduced,
                    layer=args.layer, out=out, alpha=args.alpha)
    except CliError as err:
        sys.stderr.write(f"pbglm: error: {err}\n")
        return 2
    except (KeyError, ValueError, TypeError) as err:
        text = _plain(err)
        sys.stderr.write(f"pbglm: error: {_cli_words(text) if args.command == 'run' and args.input else text}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
