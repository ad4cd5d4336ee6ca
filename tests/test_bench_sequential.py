"""The benchmark script's recipe column: each results row names the flags that made it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
bench = pytest.importorskip("bench_sequential")


def test_options_lists_only_flags_that_differ_from_the_defaults():
    parser = bench.build_parser()
    args = parser.parse_args(
        ["--loss", "sampled", "--negatives", "16384", "--scale-embeddings", "--dropout", "0.2",
         "--results", "/tmp/elsewhere.md", "--no-save"]
    )  # fmt: skip
    text = bench.options(parser, args)
    assert text == "`--loss sampled` `--scale-embeddings` `--negatives 16384`"
    assert bench.options(parser, parser.parse_args([])) == "-"
    cosine = parser.parse_args(["--lr", "0.004", "--lr-schedule", "cosine"])
    assert bench.options(parser, cosine) == "`--lr 0.004` `--lr-schedule cosine`"
    assert bench.make_model(cosine).lr_schedule == "cosine"
    masked = parser.parse_args(["--model", "bert4rec", "--mask-prob", "0.4"])
    assert bench.options(parser, masked) == "`--model bert4rec` `--mask-prob 0.4`"
    assert bench.make_model(masked).mask_prob == 0.4
    assert bench.make_model(parser.parse_args(["--model", "bert4rec"])).mask_prob == 0.2


def test_header_and_row_have_the_same_columns():
    header = bench.HEADER.splitlines()
    assert header[0].count("|") == header[1].count("|")
    assert header[0].rstrip().endswith("| options |")


def test_rows_go_under_the_table_and_above_the_notes(tmp_path):
    path = tmp_path / "results.md"
    bench.add_row(path, "| first |")
    text = path.read_text()
    assert text.startswith("# Sequential models") and text.rstrip().endswith("| first |")
    path.write_text(text + "\nNotes on the first row.\n")
    bench.add_row(path, "| second |")
    lines = path.read_text().splitlines()
    assert lines.index("| second |") == lines.index("| first |") + 1
    assert lines[-1] == "Notes on the first row."


def test_the_gpu_check_passes_flags_the_script_accepts():
    """benchmarks/gpu_check.sh runs on a borrowed GPU: a misspelt flag would waste the loan."""
    script = (Path(bench.__file__).parent / "gpu_check.sh").read_text().replace("\\\n", " ")
    base = re.search(r'BENCH="[^"]*?bench_sequential\.py([^"]*)"', script).group(1)
    base = base.replace("$MINUTES", "5").replace("$OUT", "/tmp")
    runs = [ln.split(">")[0].replace("$BENCH", base).split()
            for ln in script.splitlines() if ln.startswith("$BENCH")]  # fmt: skip
    parser = bench.build_parser()
    parsed = [parser.parse_args(run) for run in runs]  # exits (SystemExit) on an unknown flag
    assert [a.model for a in parsed] == ["sasrec", "sasrec", "bert4rec"]
    assert all(a.dataset == "beauty" and a.max_minutes == 5.0 and a.jit for a in parsed)
    assert parsed[1].mixed_precision == "bfloat16"
    assert parsed[2].mask_prob == 0.4 and parsed[2].dropout == 0.3 and parsed[2].position_weighted
