"""The command line: pbglm demo and pbglm run."""

from __future__ import annotations

import pandas as pd
import pytest

import pbglm as pb
from pbglm.cli import main


def test_demo_writes_results_and_volcano(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "significant at 10% FDR: 4819" in out  # DESeq2 1.38: 4,819 genes with padj < 0.1
    assert "significant at 10% FDR: 4819 (2604 up, 2215 down)" in out  # what the volcano colours
    assert "SPARCL1" in out  # the top gene, ENSG00000152583, by its symbol
    res = pd.read_csv(tmp_path / "results.csv", index_col=0)
    assert list(res.columns) == ["base_mean", "log2fc", "lfc_se", "stat", "pvalue", "padj"]
    assert (tmp_path / "volcano.png").stat().st_size > 10_000


@pytest.fixture
def pasilla_tables(tmp_path):
    a = pb.datasets.pasilla()
    counts = pd.DataFrame(a.X.T, index=a.var_names, columns=a.obs_names)
    counts.to_csv(tmp_path / "counts.csv")
    a.obs[["condition", "type"]].to_csv(tmp_path / "samples.csv")
    # a CSV carries no level order: strings become factors with sorted levels; do the same here
    a.obs["condition"] = a.obs["condition"].cat.reorder_categories(["treated", "untreated"])
    a.write_h5ad(tmp_path / "pasilla.h5ad")
    return tmp_path


def test_run_from_csv_and_h5ad_agree(pasilla_tables, capsys):
    d = pasilla_tables
    args = ["--design", "~ type + condition", "--contrast", "condition,treated,untreated"]
    assert main(["run", "--counts", str(d / "counts.csv"), "--samples", str(d / "samples.csv"), *args,
                 "--out", str(d / "csv")]) == 0
    assert main(["run", "--input", str(d / "pasilla.h5ad"), *args, "--out", str(d / "h5")]) == 0
    counts = pd.read_csv(d / "counts.csv", index_col=0)
    counts.to_csv(d / "counts.tsv", sep="\t")
    pd.read_csv(d / "samples.csv", index_col=0).to_csv(d / "samples.tsv", sep="\t")
    assert main(["run", "--counts", str(d / "counts.tsv"), "--samples", str(d / "samples.tsv"), *args,
                 "--out", str(d / "tsv")]) == 0
    a = pd.read_csv(d / "csv" / "results.csv", index_col=0)
    b = pd.read_csv(d / "h5" / "results.csv", index_col=0)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, pd.read_csv(d / "tsv" / "results.csv", index_col=0))
    assert "significant at 10% FDR: 1330" in capsys.readouterr().out  # DESeq2: 1,330


def test_run_reports_bad_design(pasilla_tables, capsys):
    d = pasilla_tables
    code = main(["run", "--input", str(d / "pasilla.h5ad"), "--design", "~ condtion", "--contrast",
                 "condition,treated,untreated", "--out", str(d / "x")])
    assert code == 2
    assert "condtion" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# input problems: one plain line on stderr and exit status 2 (issue 13; issue 14 items 3 and 7)
# ---------------------------------------------------------------------------------------------

CSV_ARGS = ["--design", "~ type + condition", "--contrast", "condition,treated,untreated"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("pbglm: error: ") or "error:" in err[-1]
    return err[-1]


def test_formula_error_is_one_line(pasilla_tables, capsys):
    d = pasilla_tables
    code = main(["run", "--input", str(d / "pasilla.h5ad"), "--design", "~ condition +", "--contrast",
                 "condition,treated,untreated", "--out", str(d / "x")])
    assert code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("compiling numba")]
    assert len(err) == 1 and err[0].startswith("pbglm: error: ") and "\x1b[" not in err[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("pbglm ")


def test_samples_without_counts_are_named(pasilla_tables, capsys):
    d = pasilla_tables
    counts = pd.read_csv(d / "counts.csv", index_col=0)
    counts.drop(columns="untreated3").to_csv(d / "fewer.csv")
    code = main(["run", "--counts", str(d / "fewer.csv"), "--samples", str(d / "samples.csv"), *CSV_ARGS,
                 "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "untreated3" in line and "have no counts" in line
    assert not (d / "x" / "results.csv").exists()


def test_counts_without_sample_rows_are_named(pasilla_tables, capsys):
    d = pasilla_tables
    samples = pd.read_csv(d / "samples.csv", index_col=0)
    samples.drop(index="treated2").to_csv(d / "fewer_samples.csv")
    code = main(["run", "--counts", str(d / "counts.csv"), "--samples", str(d / "fewer_samples.csv"), *CSV_ARGS,
                 "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "treated2" in line and "not in --samples" in line
    assert "match neither" not in line


def test_extra_sample_is_named(pasilla_tables, capsys):
    d = pasilla_tables
    samples = pd.read_csv(d / "samples.csv", index_col=0)
    samples.loc["treated9"] = ["treated", "paired-end"]
    samples.to_csv(d / "more_samples.csv")
    code = main(["run", "--counts", str(d / "counts.csv"), "--samples", str(d / "more_samples.csv"), *CSV_ARGS,
                 "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "treated9" in line and "match neither" not in line


def test_non_integer_csv_counts_in_cli_words(pasilla_tables, capsys):
    d = pasilla_tables
    counts = pd.read_csv(d / "counts.csv", index_col=0).astype(float)
    counts.iloc[3, 2] = 2.5
    counts.to_csv(d / "float.csv")
    code = main(["run", "--counts", str(d / "float.csv"), "--samples", str(d / "samples.csv"), *CSV_ARGS,
                 "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "--counts has a non-integer value" in line and counts.index[3] in line and counts.columns[2] in line
    assert "adata" not in line and "layer=" not in line


def test_text_column_in_counts(pasilla_tables, capsys):
    d = pasilla_tables
    counts = pd.read_csv(d / "counts.csv", index_col=0)
    counts["treated1"] = counts["treated1"].astype(str)
    counts.iloc[0, 0] = "12 reads"
    counts.to_csv(d / "text.csv")
    code = main(["run", "--counts", str(d / "text.csv"), "--samples", str(d / "samples.csv"), *CSV_ARGS,
                 "--out", str(d / "x")])
    assert code == 2
    assert "'treated1' is not numeric" in _error_line(capsys)


def test_h5ad_advice_uses_layer_option(pasilla_tables, capsys):
    d = pasilla_tables
    a = pb.datasets.pasilla()
    a.X = a.X / 2.0
    a.write_h5ad(d / "norm.h5ad")
    code = main(["run", "--input", str(d / "norm.h5ad"), *CSV_ARGS, "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "--layer" in line and "layer=" not in line


def test_missing_layer_message_has_no_quotes(pasilla_tables, capsys):
    d = pasilla_tables
    code = main(["run", "--input", str(d / "pasilla.h5ad"), "--layer", "counts", *CSV_ARGS, "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "counts" in line
    assert not line.removeprefix("pbglm: error: ").startswith(("'", '"'))


def test_transposed_h5ad_hints_swap(pasilla_tables, capsys):
    d = pasilla_tables
    a = pb.datasets.pasilla()
    t = a.T.copy()
    t.var = a.obs[["condition", "type"]].copy()
    t.write_h5ad(d / "transposed.h5ad")
    code = main(["run", "--input", str(d / "transposed.h5ad"), *CSV_ARGS, "--out", str(d / "x")])
    assert code == 2
    assert "genes and samples may be swapped" in _error_line(capsys)


def test_transposed_h5ad_without_annotation_hints_swap(pasilla_tables, capsys):
    d = pasilla_tables
    pb.datasets.pasilla().T.copy().write_h5ad(d / "bare.h5ad")
    code = main(["run", "--input", str(d / "bare.h5ad"), *CSV_ARGS, "--out", str(d / "x")])
    assert code == 2
    line = _error_line(capsys)
    assert "genes and samples may be swapped" in line and "Available columns: ." not in line


def test_contrast_with_reduced_is_refused(pasilla_tables, capsys):
    d = pasilla_tables
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--input", str(d / "pasilla.h5ad"), *CSV_ARGS, "--reduced", "~ type", "--out", str(d / "x")])
    assert exit_.value.code == 2
    assert "not allowed with argument --contrast" in capsys.readouterr().err


def test_out_naming_a_file(pasilla_tables, capsys):
    d = pasilla_tables
    (d / "taken").write_text("x")
    code = main(["run", "--input", str(d / "pasilla.h5ad"), *CSV_ARGS, "--out", str(d / "taken")])
    assert code == 2
    assert "is an existing file" in _error_line(capsys)
    assert (d / "taken").read_text() == "x"


@pytest.mark.parametrize("option", ["--input", "--counts", "--samples"])
def test_missing_input_file(pasilla_tables, capsys, option):
    d = pasilla_tables
    files = {"--counts": str(d / "counts.csv"), "--samples": str(d / "samples.csv")}
    if option == "--input":
        files = {"--input": str(d / "nope.h5ad")}
    else:
        files[option] = str(d / "nope.csv")
    argv = ["run", *[x for kv in files.items() for x in kv], *CSV_ARGS, "--out", str(d / "x")]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert f"{option} " in line and "no such file" in line


def test_cli_announces_compiling(pasilla_tables, capsys, monkeypatch):
    from pbglm import _compile_notice

    monkeypatch.setattr(_compile_notice, "kernels_need_compiling", lambda method: True)
    monkeypatch.setattr(_compile_notice, "_announced", set())
    d = pasilla_tables
    assert main(["run", "--input", str(d / "nope.h5ad"), *CSV_ARGS, "--out", str(d / "x")]) == 2
    assert _compile_notice.MESSAGE not in capsys.readouterr().err  # an input error: nothing is compiled
    code = main(["run", "--input", str(d / "pasilla.h5ad"), "--design", "~ condtion", "--contrast",
                 "condition,treated,untreated", "--out", str(d / "x")])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == _compile_notice.MESSAGE and "condtion" in err[1]
