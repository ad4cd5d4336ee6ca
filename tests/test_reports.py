"""Training logs and results tables: the written format reads back, bad files say why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys_book.reports import epoch_line, parse_epoch_line, read_results_table, read_run_log

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_an_epoch_line_reads_back_to_its_record():
    record = {
        "epoch": 3,
        "loss": 9.69312,
        "seconds": 28.78,
        "val_HR@10": 0.0199,
        "val_NDCG@10": 0.010321,
    }
    line = epoch_line(record)
    assert line == "epoch=3, loss=9.693, seconds=28.78, val_HR@10=0.0199, val_NDCG@10=0.01032"
    back = parse_epoch_line(line)
    assert list(back) == list(record)
    assert back == pytest.approx(record, rel=1e-3)
    odd = parse_epoch_line("epoch=1, loss=nan, seconds=1e+03, val_HR@10=-inf")
    assert np.isnan(odd["loss"]) and odd["seconds"] == 1000.0 and odd["val_HR@10"] == -np.inf
    with pytest.raises(ValueError, match="start with 'epoch='"):
        parse_epoch_line("TEST (full ranking): HR@10=0.1")


def test_a_run_log_gives_its_epochs_and_its_test_scores(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(
        "Keras backend: tensorflow | devices: CPU:0\n"
        + epoch_line({"epoch": 1, "loss": 10.3, "seconds": 84.0, "val_HR@10": 0.0126, "val_NDCG@10": 0.0065})
        + "\n"
        + epoch_line({"epoch": 2, "loss": 9.88, "seconds": 24.2, "val_HR@10": 0.0184, "val_NDCG@10": 0.0095})
        + "\n\nTEST (full ranking of all 54542 items): HR@10=0.0267 NDCG@10=0.0144 (published 0.0338 / 0.0187); best epoch 2 of 2; fit 2438 s wall, 4101 s CPU\n"
    )  # fmt: skip
    epochs, test = read_run_log(log)
    assert epochs["epoch"].tolist() == [1, 2]
    assert epochs["val_HR@10"].tolist() == [0.0126, 0.0184]
    # not the published numbers after the scores, nor the CPU seconds after the wall seconds
    assert test == {"HR@10": 0.0267, "NDCG@10": 0.0144, "fit wall s": 2438.0}
    stopped = tmp_path / "stopped.log"
    stopped.write_text(log.read_text().split("\n\nTEST")[0])
    assert read_run_log(stopped)[1] == {}
    empty = tmp_path / "empty.log"
    empty.write_text("Keras backend: tensorflow\n")
    with pytest.raises(ValueError, match="no 'epoch=' lines"):
        read_run_log(empty)


def test_the_results_table_reads_with_its_header(tmp_path):
    path = tmp_path / "results.md"
    path.write_text(
        "# Title\n\nSome prose.\n\n| model | HR@10 |\n|---|---|\n| sasrec | 0.0540 |\n"
        "| bert4rec | 0.0267 |\n\nNotes, with a | in the prose.\n"
    )
    table = read_results_table(path)
    assert table.columns.tolist() == ["model", "HR@10"]
    assert table["model"].tolist() == ["sasrec", "bert4rec"]
    assert table["HR@10"].astype(float).max() == 0.054
    path.write_text("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n")
    with pytest.raises(ValueError, match="row 1 has 3 cells"):
        read_results_table(path)
    path.write_text("no table here\n")
    with pytest.raises(ValueError, match="no markdown table"):
        read_results_table(path)


def test_the_committed_benchmark_files_parse():
    table = read_results_table(RESULTS / "sequential.md")
    assert {"model", "loss", "HR@10", "NDCG@10", "options"} <= set(table.columns)
    assert (table["HR@10"].astype(float) > 0).all()
    logs = sorted((RESULTS / "cpu").glob("*.log"))
    assert logs
    for log in logs:
        epochs, test = read_run_log(log)
        assert (epochs["epoch"].diff().dropna() == 1).all(), log.name
        assert not test or (0 < test["HR@10"] < 1 and test["fit wall s"] > 0), log.name
