"""Reproduce the results tables of chapter 3b (collaborative filtering) on ml-100k.

Two protocols, each run for several seeds and reported as mean +- std:

* **Book default** (table A): ratings >= 4 are positives; global temporal split
  (the last 20 % of positives by time are the test, test rows of users or items
  unseen in training removed); full ranking of all items, training items
  excluded. HR@10, NDCG@10, Recall@10 and training time per model. The split has
  no randomness, so the spread comes from the models' seeds only.
* **Published protocol** (table B): the Recommenders library's benchmark split
  (75/25 random, stratified by user; a new split per seed). Rating prediction
  (RMSE, MAE) for BiasedMF; top-10 ranking with all ratings as interactions,
  training items excluded, all items ranked: nDCG@10, Precision@10, Recall@10
  and MAP (average precision divided by the number of relevant items, the
  definition behind the library's published "MAP" column).

Hyper-parameters: EASE's lambda and the neighbourhood size k of ItemKNN/UserKNN
are chosen per seed on a validation split carved out of the training part
(temporal for table A, random for table B), then the model is refitted on the
whole training part. BiasedMF and BPR use the package defaults, which were
chosen on the table-B validation split; ``--tune`` prints that grid again.

    .venv/bin/python benchmarks/bench_chapter3.py [--seeds 5] [--tune] [--out PATH]

Prints both tables and writes them to ``benchmarks/results/chapter3.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_book.runtime import setup

setup(seed=0, verbose=False)

from recsys_book import data  # noqa: E402
from recsys_book import preprocessing as pp  # noqa: E402
from recsys_book.evaluation import evaluate, evaluate_ratings  # noqa: E402
from recsys_book.models.bpr import BPR  # noqa: E402
from recsys_book.models.ease import EASE  # noqa: E402
from recsys_book.models.mf import BiasedMF  # noqa: E402
from recsys_book.models.neighborhood import ItemKNN, UserKNN  # noqa: E402
from recsys_book.models.popularity import Popularity  # noqa: E402

try:  # the softmax two-tower model lives in another module of the package
    from recsys_book.models.two_tower import TwoTower  # noqa: E402
except ImportError:  # pragma: no cover - optional
    TwoTower = None

EASE_GRID = (50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0)
K_GRID = (20, 50, 100, 200)
TWO_TOWER = dict(embedding_dim=32, batch_size=512, epochs=8, learning_rate=0.01)
PUBLISHED = {  # Recommenders library README, "Algorithm Comparison", ml-100k, 75/25 split
    "BiVAE (published)": {
        "NDCG@10": 0.475077,
        "Precision@10": 0.411771,
        "Recall@10": 0.219145,
        "MAP": 0.146126,
    },
    "BPR (published)": {
        "NDCG@10": 0.441997,
        "Precision@10": 0.388229,
        "Recall@10": 0.212522,
        "MAP": 0.132478,
    },
    "LightGCN (published)": {
        "NDCG@10": 0.419846,
        "Precision@10": 0.379626,
        "Recall@10": 0.144336,
        "MAP": 0.088526,
    },
}
PUBLISHED_RMSE = {"SVD (published)": 0.938681, "ALS (published)": 0.965038}


def ndcg(model, train, test, n_items) -> float:
    return float(evaluate(model, train, test, n_items=n_items)["NDCG@10"].iloc[0])


def tune(train, validation, n_users, n_items) -> tuple[float, int, int]:
    """EASE lambda and the k of ItemKNN and UserKNN with the best validation NDCG@10."""
    best_l2 = max(
        EASE_GRID,
        key=lambda lam: ndcg(EASE(l2=lam).fit(train, n_users, n_items), train, validation, n_items),
    )
    best_k = {
        cls: max(
            K_GRID,
            key=lambda k: ndcg(cls(k=k).fit(train, n_users, n_items), train, validation, n_items),
        )
        for cls in (ItemKNN, UserKNN)
    }
    return best_l2, best_k[ItemKNN], best_k[UserKNN]


def ranking_models(seed: int, l2: float, k_item: int, k_user: int) -> dict:
    models = {
        "Popularity": Popularity(),
        "UserKNN": UserKNN(k=k_user),
        "ItemKNN": ItemKNN(k=k_item),
        "EASE": EASE(l2=l2),
        "BPR": BPR(seed=seed),
    }
    if TwoTower is not None:
        models["TwoTower (softmax)"] = TwoTower(seed=seed, **TWO_TOWER)
    return models


def fit_timed(model, train, n_users, n_items) -> float:
    start = time.perf_counter()
    model.fit(train, n_users, n_items)
    return time.perf_counter() - start


def map_over_relevant(per_user: pd.DataFrame, test: pd.DataFrame) -> float:
    """MAP with AP divided by all relevant items R (the package's MAP@10 divides by min(R, 10))."""
    r = test.groupby("user_idx").size().reindex(per_user["user_idx"]).to_numpy()
    return float(np.mean(per_user["MAP@10"].to_numpy() * np.minimum(r, 10) / r))


def table_a(seed: int, ratings: pd.DataFrame, n_users: int, n_items: int) -> list[dict]:
    """Book default protocol: implicit (rating >= 4), global temporal split."""
    positives = pp.to_implicit(ratings, min_rating=4.0)
    split = pp.temporal_split(positives, test_fraction=0.2, n_users=n_users, n_items=n_items)
    inner = pp.temporal_split(split.train, test_fraction=0.125, n_users=n_users, n_items=n_items)
    l2, k_item, k_user = tune(inner.train, inner.test, n_users, n_items)
    cut = split.test["timestamp"].min()
    rows = []
    models = ranking_models(seed, l2, k_item, k_user)
    models["BiasedMF (ratings)"] = BiasedMF(seed=seed)
    for name, model in models.items():
        # BiasedMF learns from every rating made before the test period, not only positives.
        train = ratings[ratings["timestamp"] < cut] if name.startswith("BiasedMF") else split.train
        seconds = fit_timed(model, train, n_users, n_items)
        m = evaluate(model, split.train, split.test, n_items=n_items).iloc[0]
        rows.append(
            {
                "model": name,
                "seed": seed,
                "HR@10": m["HR@10"],
                "NDCG@10": m["NDCG@10"],
                "Recall@10": m["Recall@10"],
                "fit (s)": seconds,
            }
        )
    print(
        f"  A seed {seed}: EASE lambda={l2:g}, ItemKNN k={k_item}, UserKNN k={k_user}; "
        f"{split.protocol}",
        flush=True,
    )
    return rows


def table_b(seed: int, ratings: pd.DataFrame, n_users: int, n_items: int) -> tuple[list, list]:
    """Published protocol: 75/25 user-stratified random split, all ratings as interactions."""
    split = pp.random_split(
        ratings, test_fraction=0.25, seed=seed, n_users=n_users, n_items=n_items
    )
    inner = pp.random_split(
        split.train, test_fraction=0.25, seed=seed + 1000, n_users=n_users, n_items=n_items
    )
    l2, k_item, k_user = tune(inner.train, inner.test, n_users, n_items)
    mf = BiasedMF(seed=seed)
    seconds = fit_timed(mf, split.train, n_users, n_items)
    rating_rows = [
        {
            "model": "BiasedMF",
            "seed": seed,
            "fit (s)": seconds,
            **evaluate_ratings(mf.predict, split.test).iloc[0][["RMSE", "MAE"]],
        },
        {
            "model": "global mean",
            "seed": seed,
            "fit (s)": 0.0,
            **evaluate_ratings(
                lambda u, i: np.full(len(u), split.train["rating"].mean()), split.test
            ).iloc[0][["RMSE", "MAE"]],
        },
    ]
    models = ranking_models(seed, l2, k_item, k_user)
    ranking_rows = []
    for name, model in {**models, "BiasedMF (ratings)": mf}.items():
        if model is not mf:
            seconds = fit_timed(model, split.train, n_users, n_items)
        else:
            seconds = rating_rows[0]["fit (s)"]
        per_user = evaluate(model, split.train, split.test, n_items=n_items, per_user=True)
        ranking_rows.append(
            {
                "model": name,
                "seed": seed,
                "NDCG@10": per_user["NDCG@10"].mean(),
                "Precision@10": per_user["Precision@10"].mean(),
                "Recall@10": per_user["Recall@10"].mean(),
                "MAP": map_over_relevant(per_user, split.test),
                "fit (s)": seconds,
            }
        )
    print(
        f"  B seed {seed}: EASE lambda={l2:g}, ItemKNN k={k_item}, UserKNN k={k_user}", flush=True
    )
    return rating_rows, ranking_rows


def tune_keras(ratings: pd.DataFrame, n_users: int, n_items: int, seed: int = 42) -> None:
    """The validation grid behind the BiasedMF and BPR defaults (table-B protocol)."""
    split = pp.random_split(
        ratings, test_fraction=0.25, seed=seed, n_users=n_users, n_items=n_items
    )
    inner = pp.random_split(
        split.train, test_fraction=0.25, seed=seed + 1000, n_users=n_users, n_items=n_items
    )
    for n_factors in (16, 64):
        for l2 in (0.05, 0.1, 0.2):
            mf = BiasedMF(n_factors=n_factors, l2=l2).fit(inner.train, n_users, n_items)
            rmse = evaluate_ratings(mf.predict, inner.test)["RMSE"].iloc[0]
            print(f"  BiasedMF n_factors={n_factors} l2={l2}: validation RMSE {rmse:.4f}")
    for n_factors in (32, 64):
        for l2 in (0.003, 0.01, 0.03):
            bpr = BPR(n_factors=n_factors, l2=l2).fit(inner.train, n_users, n_items)
            value = ndcg(bpr, inner.train, inner.test, n_items)
            print(f"  BPR n_factors={n_factors} l2={l2}: validation NDCG@10 {value:.4f}")


def mean_std(rows: list[dict], columns: list[str], digits: int = 4) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    grouped = frame.groupby("model", sort=False)[columns]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    out = pd.DataFrame(index=mean.index)
    for c in columns:
        d = 1 if c == "fit (s)" else digits
        out[c] = [f"{m:.{d}f} ± {s:.{d}f}" for m, s in zip(mean[c], std[c], strict=True)]
    return out


def published_rows(table: dict, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(table).T.reindex(columns=columns)
    return frame.map(lambda v: "" if pd.isna(v) else f"{v:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--tune", action="store_true", help="print the BiasedMF/BPR grid first")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "chapter3.md"))
    args = parser.parse_args()

    ml = data.load_movielens("ml-100k")
    ratings, encoder = pp.encode_ids(ml.ratings, items=ml.items)
    n_users, n_items = encoder.n_users, encoder.n_items
    if args.tune:
        print("Validation grid for BiasedMF and BPR (random 75/25 split, seed 42):")
        tune_keras(ratings, n_users, n_items)

    start = time.perf_counter()
    rows_a, rating_rows, ranking_rows = [], [], []
    for seed in range(args.seeds):
        rows_a += table_a(seed, ratings, n_users, n_items)
        r, k = table_b(seed, ratings, n_users, n_items)
        rating_rows += r
        ranking_rows += k
    total = time.perf_counter() - start

    cols_a = ["HR@10", "NDCG@10", "Recall@10", "fit (s)"]
    cols_rank = ["NDCG@10", "Precision@10", "Recall@10", "MAP", "fit (s)"]
    table_a_md = mean_std(rows_a, cols_a).to_markdown()
    rating = pd.concat(
        [
            mean_std(rating_rows, ["RMSE", "MAE", "fit (s)"]),
            published_rows(
                {k: {"RMSE": v} for k, v in PUBLISHED_RMSE.items()}, ["RMSE", "MAE", "fit (s)"]
            ),
        ]
    )
    ranking = pd.concat([mean_std(ranking_rows, cols_rank), published_rows(PUBLISHED, cols_rank)])
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover - not on every platform
        load = "n/a"
    machine = (
        f"{platform.platform()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, load average {load} at the end; "
        f"{args.seeds} seeds in {total / 60:.1f} min"
    )
    text = "\n".join(
        [
            "## Chapter 3b: collaborative filtering on ml-100k",
            "",
            f"Produced by `benchmarks/bench_chapter3.py --seeds {args.seeds}` on "
            f"{time.strftime('%Y-%m-%d')} ({machine}). Mean ± standard deviation over seeds "
            f"0..{args.seeds - 1}; training times are wall-clock seconds on a shared machine and "
            "vary with its load.",
            "",
            "**A. Book default protocol.** Ratings >= 4 are positives; global temporal split "
            "(last 20 % of positives by time are the test; test rows of users or items unseen in "
            "training removed); full ranking of all 1,682 items with training items excluded. The "
            "split is the same for every seed, so the spread comes from the models' seeds only "
            "(the NumPy models have none). BiasedMF learns from every rating made before the test "
            "period. EASE lambda and KNN k chosen on a temporal validation split.",
            "",
            table_a_md,
            "",
            "**B. Published protocol** (Recommenders library benchmark: 75/25 random split "
            "stratified by user, a new split per seed). Rating prediction on the test ratings:",
            "",
            rating.to_markdown(),
            "",
            "Top-10 ranking, all ratings as interactions, training items excluded, all items "
            "ranked. MAP = average precision divided by the number of relevant items (the "
            "published column's definition). Published rows: Recommenders README, \"Algorithm "
            'Comparison" table (commit 005dcd0).',
            "",
            ranking.to_markdown(),
            "",
        ]
    )
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
