"""Time the full-ranking evaluator on an ML-1M-sized problem.

Random float32 scores for 6,040 users x 3,706 items (+1 padding column), 20
training ("seen") items and 1-5 test items per user. ``evaluate`` is timed end
to end (CSR building, scoring, masking, top-k, all six metrics at k=10), best of
``--repeat`` runs; then the same with AUC (a full sort per user) and the sampled
protocol (100 uniform negatives per user), for reference.

    .venv/bin/python benchmarks/bench_evaluator.py [--users 6040] [--items 3706]

The result is recorded in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from recsys_book.evaluation import DEFAULT_METRICS, evaluate, evaluate_sampled


def make_problem(n_users: int, n_items: int, n_seen: int, max_test: int, seed: int = 0):
    """Random encoded train/test frames and a score function over ``n_items + 1`` columns."""
    rng = np.random.default_rng(seed)
    n_test = rng.integers(1, max_test + 1, size=n_users)
    # Distinct items per user: the n_seen + max_test smallest of random keys.
    picks = np.argsort(rng.random((n_users, n_items)), axis=1)[:, : n_seen + max_test] + 1
    users = np.arange(1, n_users + 1)
    train = pd.DataFrame(
        {"user_idx": np.repeat(users, n_seen), "item_idx": picks[:, :n_seen].ravel()}
    )
    test_mask = np.arange(max_test) < n_test[:, None]
    test = pd.DataFrame(
        {
            "user_idx": np.repeat(users, n_test),
            "item_idx": picks[:, n_seen:][test_mask],
        }
    )
    scores = rng.random((n_users + 1, n_items + 1), dtype=np.float32)
    scores[:, 0] = -np.inf
    return train, test, (lambda u: scores[u])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--seen", type=int, default=20, help="training items per user")
    parser.add_argument("--max-test", type=int, default=5, help="test items per user: 1..this")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    train, test, score_fn = make_problem(args.users, args.items, args.seen, args.max_test)
    n_items = args.items + 1
    common = dict(n_items=n_items, k=10, batch_size=args.batch_size)
    runs = {
        "evaluate (6 metrics @10)": lambda: evaluate(score_fn, train, test, **common),
        "evaluate + AUC": lambda: evaluate(
            score_fn, train, test, metrics=(*DEFAULT_METRICS, "AUC"), **common
        ),
        "evaluate_sampled (100 negatives)": lambda: evaluate_sampled(
            score_fn, train, test, **common
        ),
    }
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"problem: {args.users} users x {n_items} columns, {len(train)} seen, "
        f"{len(test)} test pairs, batch_size={args.batch_size}; best of {args.repeat}"
    )
    for name, run in runs.items():
        best = min(_timed(run) for _ in range(args.repeat))
        print(f"{name:<34} {best:6.3f} s  {args.users / best:>9,.0f} users/s")
    print(evaluate(score_fn, train, test, **common).round(4).to_string(index=False))


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
