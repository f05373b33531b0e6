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
    a = pd.read_csv(d / "csv" / "results.csv", index_col=0)
    b = pd.read_csv(d / "h5" / "results.csv", index_col=0)
    pd.testing.assert_frame_equal(a, b)
    assert "significant at 10% FDR: 1330" in capsys.readouterr().out  # DESeq2: 1,330


def test_run_reports_bad_design(pasilla_tables, capsys):
    d = pasilla_tables
    code = main(["run", "--input", str(d / "pasilla.h5ad"), "--design", "~ condtion", "--contrast",
                 "condition,treated,untreated", "--out", str(d / "x")])
    assert code == 2
    assert "condtion" in capsys.readouterr().err
