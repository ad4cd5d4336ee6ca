"""Training logs and results tables: write them in one format, read them back.

A sequence model trained with ``verbose=True`` prints one line per epoch,

    epoch=3, loss=9.693, seconds=28.78, val_HR@10=0.0199, val_NDCG@10=0.01032

and the benchmark script (``benchmarks/bench_sequential.py``) ends its log with a
``TEST`` line and appends one row per run to a markdown table
(``benchmarks/results/sequential.md``). Chapter 3f draws its figures from those
files instead of training for hours, so the line format lives here, next to the
functions that read it back: :func:`epoch_line` writes a record,
:func:`read_run_log` parses a whole log, :func:`read_results_table` reads the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

__all__ = ["epoch_line", "parse_epoch_line", "read_run_log", "read_results_table"]

_FIELD = re.compile(r"([A-Za-z_]+(?:@\d+)?)=(-?(?:nan|inf)|[-+\d.eE]+)")
_TEST = re.compile(r"\b(HR@10|NDCG@10)=([\d.]+)")
_FIT = re.compile(r"\bfit (\d+(?:\.\d+)?) s wall")


def epoch_line(record: Mapping[str, float]) -> str:
    """One epoch's record as a log line: ``epoch=1, loss=10.29, seconds=83.77, ...``
    (4 significant digits, the order of ``record``)."""
    return ", ".join(f"{key}={value:.4g}" for key, value in record.items())


def parse_epoch_line(line: str) -> dict[str, float]:
    """The record of a line written by :func:`epoch_line` (values as floats).

    Raises:
        ValueError: the line does not start with ``epoch=``.
    """
    if not line.startswith("epoch="):
        raise ValueError(f"not an epoch line (it should start with 'epoch='): {line[:60]!r}")
    return {key: float(value) for key, value in _FIELD.findall(line)}


def read_run_log(path: str | Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-epoch records and test scores of one training log.

    Returns:
        ``(epochs, test)``: a DataFrame with one row per ``epoch=`` line (columns
        ``epoch``, ``loss``, ``seconds`` and, with validation, ``val_HR@10`` and
        ``val_NDCG@10``), and from the log's ``TEST`` line the test scores and the
        fit's wall seconds, ``{"HR@10": ..., "NDCG@10": ..., "fit wall s": ...}``
        (``{}`` for a run stopped before its test).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file has no epoch lines (not a training log).
    """
    path = Path(path)
    text = path.read_text()
    records = [parse_epoch_line(ln) for ln in text.splitlines() if ln.startswith("epoch=")]
    if not records:
        raise ValueError(f"{path} has no 'epoch=' lines: is it the log of a run with verbose=True?")
    test = {}
    if "TEST" in text:
        last = text.rsplit("TEST", 1)[1]
        test = {key: float(value) for key, value in _TEST.findall(last)}
        if fit := _FIT.search(last):
            test["fit wall s"] = float(fit.group(1))
    return pd.DataFrame(records), test


def read_results_table(path: str | Path) -> pd.DataFrame:
    """The first pipe table of a markdown file, as a DataFrame of strings.

    Cells are stripped of spaces; convert the numeric columns you need
    (``table["HR@10"].astype(float)``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file has no table (a header line, a ``|---|`` line, rows).
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("|")), None)
    if start is None or start + 1 >= len(lines) or not set(lines[start + 1]) <= set("|-: "):
        raise ValueError(f"{path} has no markdown table (a '| a | b |' header, then '|---|---|').")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    header = cells(lines[start])
    rows = [cells(ln) for ln in lines[start + 2 : end]]
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise ValueError(
            f"{path}: table row {bad[0] + 1} has {len(rows[bad[0]])} cells, the header "
            f"{len(header)}; a '|' inside a cell must be escaped."
        )
    return pd.DataFrame(rows, columns=header)
