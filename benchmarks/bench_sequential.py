"""Train and evaluate a sequence model under the leave-one-out protocol of the papers.

Data: Amazon Beauty as preprocessed for BERT4Rec (``load_beauty``; 40,226 users,
54,542 items, order from the ``position`` column), or MovieLens ml-1m / ml-100k
(order from ``timestamp``). Protocol: each user's last item is the test, the one
before it the validation, the rest train (``leave_one_out_split``); the epoch is
chosen on validation NDCG@10 (on up to ``--val-users`` users, as Klenitskiy &
Vasilev use 10,000); the test history is train + validation item (no retraining);
the test item is ranked among **all** items, training and validation items excluded;
HR@10 and NDCG@10 are averaged over users.

Published full-ranking results on the same Beauty file (Klenitskiy & Vasilev,
RecSys 2023): SASRec with full cross-entropy HR@10 .0533 / NDCG@10 .0327; SASRec
with BCE and one negative .0246 / .0126; BERT4Rec .0338 / .0187.

    RECSYS_BOOK_DATA=../shared/data .venv/bin/python benchmarks/bench_sequential.py \
        --model sasrec --loss softmax --epochs 10 --dataset beauty

One line per run is appended to ``benchmarks/results/sequential.md`` (or ``--results``):
metrics, epochs, wall and CPU time, peak host memory (``resource.getrusage``), load
average, backend, precision and device. The same script runs on a GPU under any Keras
backend, e.g. on the JAX backend in bfloat16 with a 5-minute budget:

    KERAS_BACKEND=jax python benchmarks/bench_sequential.py --model sasrec \
        --loss softmax --epochs 200 --patience 10 --max-minutes 5 --mixed-precision bfloat16
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from datetime import date
from pathlib import Path

import pandas as pd

from recsys_book.runtime import setup

PUBLISHED = {  # Klenitskiy & Vasilev (RecSys 2023), Beauty, full ranking: (HR@10, NDCG@10)
    ("sasrec", "softmax"): (0.0533, 0.0327),
    ("sasrec", "bce"): (0.0246, 0.0126),
    ("bert4rec", "softmax"): (0.0338, 0.0187),
}
RESULTS = Path(__file__).parent / "results" / "sequential.md"
HEADER = (
    "| date | dataset | model | loss | epochs (best) | max_len | d | batch | lr | "
    "HR@10 | NDCG@10 | published HR / NDCG | fit wall s | fit CPU s | peak RSS GB | load avg | "
    "backend / precision | machine | options |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
NOT_OPTIONS = ("results", "no_save")  # where the row goes, not how it was made


def load(dataset: str) -> tuple[pd.DataFrame, str]:
    """Encoded interactions, 5-core as distributed (Beauty) or as is, and their order column."""
    from recsys_book import data
    from recsys_book.preprocessing import encode_ids

    if dataset == "beauty":  # no timestamps in this file: each user's order is `position`
        frame, order_by = data.load_beauty(), "position"
    else:
        frame, order_by = data.load_movielens(dataset).ratings, "timestamp"
    encoded, _ = encode_ids(frame)
    return encoded, order_by


def machine(info) -> str:
    """The cores and, when the backend sees one, the accelerator's name."""
    text = f"{os.cpu_count()} cores, {platform.machine()}"
    if info.has_gpu and info.backend == "jax":
        import jax

        text += f", {jax.devices()[0].device_kind}"
    elif info.has_gpu and info.backend == "torch":
        import torch

        text += f", {torch.cuda.get_device_name(0)}"
    elif info.has_gpu:
        text += ", GPU"
    return text


def options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The command-line flags of this run that differ from their defaults, e.g.
    ``--loss sampled --negatives 16384 --scale-embeddings``: the row's recipe."""
    flags = []
    for action in parser._actions:
        name = action.dest
        if not action.option_strings or name in NOT_OPTIONS or name == "help":
            continue
        value = getattr(args, name)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        flags.append(flag if isinstance(action, argparse._StoreTrueAction) else f"{flag} {value}")
    return " ".join(f"`{f}`" for f in flags) or "-"


def add_row(path: Path, row: str) -> None:
    """Add ``row`` to the results table of ``path``: after the table's last row, so
    that notes written below the table stay below it (a new file gets a header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# Sequential models: leave-one-out, full ranking\n\n"
            "Written by `benchmarks/bench_sequential.py`; see its docstring for the protocol.\n\n"
            + HEADER
        )
    lines = path.read_text().splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    end = table[0]
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):  # the first table only
        end += 1
    lines.insert(end + 1, row)
    path.write_text("\n".join(lines) + "\n")


def make_model(args):
    from recsys_book.models.bert4rec import BERT4Rec
    from recsys_book.models.gru4rec import GRU4Rec
    from recsys_book.models.sasrec import SASRec

    common = dict(
        max_len=args.max_len, embedding_dim=args.dim, loss=args.loss, epochs=args.epochs,
        batch_size=args.batch_size, max_positions=args.max_positions,
        learning_rate=args.lr, lr_schedule=args.lr_schedule, n_negatives=args.negatives,
        position_weighted=args.position_weighted,
        proposal=args.proposal,
        seed=args.seed, verbose=True,
        jit_compile=args.jit,
    )  # fmt: skip
    if args.model == "sasrec":
        return SASRec(n_layers=args.layers, n_heads=args.heads, dropout=args.dropout,
                      scale_embeddings=args.scale_embeddings, block=args.block,
                      d_ff=args.d_ff, positions=args.positions, **common)  # fmt: skip
    if args.model == "bert4rec":
        return BERT4Rec(n_layers=args.layers, n_heads=args.heads, dropout=args.dropout,
                        scale_embeddings=args.scale_embeddings, mask_prob=args.mask_prob,
                        **common)  # fmt: skip
    return GRU4Rec(dropout=args.dropout, **common)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("sasrec", "gru4rec", "bert4rec"), default="sasrec")
    parser.add_argument("--loss", choices=("softmax", "sampled", "bce"), default="softmax")
    parser.add_argument("--dataset", choices=("beauty", "ml-1m", "ml-100k"), default="beauty")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument(
        "--scale-embeddings",
        action="store_true",
        help="SASRec, BERT4Rec: input item embeddings times sqrt(d), as Kang & McAuley's SASRec",
    )
    parser.add_argument(
        "--block",
        choices=("pre_ln", "sasrec"),
        default="pre_ln",
        help="SASRec: transformer block wiring (sasrec: Kang & McAuley's, ReLU FFN d wide)",
    )
    parser.add_argument("--d-ff", type=int, default=None, help="SASRec: feed-forward width")
    parser.add_argument(
        "--positions",
        choices=("from_end", "from_start"),
        default="from_end",
        help="SASRec: count positional embeddings from the last item or from the first",
    )
    parser.add_argument(
        "--proposal",
        choices=("uniform", "popularity"),
        default="popularity",
        help="where --loss sampled draws its negatives (logQ-corrected)",
    )
    parser.add_argument(
        "--mask-prob", type=float, default=0.2,
        help="BERT4Rec: share of each training sequence's items hidden behind [mask]",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-positions", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="cosine: the step size falls from --lr to 0 over --epochs (set --epochs to what fits)",
    )
    parser.add_argument(
        "--position-weighted",
        action="store_true",
        help="every training target weighs the same (not every batch): sum / mean targets",
    )
    parser.add_argument("--negatives", type=int, default=256)
    parser.add_argument("--val-users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--max-minutes", type=float, default=None, help="training time budget")
    parser.add_argument("--mixed-precision", choices=("float16", "bfloat16"), default=None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the table to append to")
    parser.add_argument("--no-save", action="store_true", help="do not append to the results")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()

    info = setup(seed=args.seed, mixed_precision=args.mixed_precision or False)
    from recsys_book.evaluation import evaluate
    from recsys_book.preprocessing import leave_one_out_split

    frame, order_by = load(args.dataset)
    split = leave_one_out_split(frame, order_by=order_by)
    print(split.protocol)
    print(f"{args.dataset}: {split.n_users - 1} users, {split.n_items - 1} items, "
          f"{len(split.train)} training interactions")  # fmt: skip

    model = make_model(args)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.fit(
        split.train, split.n_users, split.n_items, validation=split.validation,
        patience=args.patience, max_validation_users=args.val_users,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
    )  # fmt: skip
    fit_wall, fit_cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    train_val = pd.concat([split.train, split.validation])
    table = evaluate(model.scorer(train_val), train_val, split.test, n_items=split.n_items,
                     k=10, metrics=("HR", "NDCG"))  # fmt: skip
    hr, ndcg = float(table["HR@10"].iloc[0]), float(table["NDCG@10"].iloc[0])
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    load_avg = os.getloadavg()[0]
    published = PUBLISHED.get((args.model, args.loss)) if args.dataset == "beauty" else None
    pub = f"{published[0]:.4f} / {published[1]:.4f}" if published else "-"
    print(f"\nTEST ({table.attrs['protocol']}): HR@10={hr:.4f} NDCG@10={ndcg:.4f} "
          f"(published {pub}); best epoch {model.best_epoch_} of {len(model.history_)}; "
          f"fit {fit_wall:.0f} s wall, {fit_cpu:.0f} s CPU; peak RSS {peak_gb:.2f} GB")  # fmt: skip

    if not args.no_save:
        add_row(
            args.results,
            f"| {date.today()} | {args.dataset} | {args.model} | {args.loss} | "
            f"{len(model.history_)} ({model.best_epoch_}) | {args.max_len} | {args.dim} | "
            f"{args.batch_size} | {args.lr} | {hr:.4f} | {ndcg:.4f} | {pub} | "
            f"{fit_wall:.0f} | {fit_cpu:.0f} | {peak_gb:.2f} | {load_avg:.1f} | "
            f"{info.backend} / {info.precision} | {machine(info)} | {options(parser, args)} |",
        )


if __name__ == "__main__":
    main()
