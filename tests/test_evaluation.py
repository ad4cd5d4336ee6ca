"""Tests of recsys_book.evaluation: top_k, evaluate, evaluate_sampled, evaluate_ratings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recsys_book.evaluation import (
    evaluate,
    evaluate_ratings,
    evaluate_sampled,
    top_k,
)
from recsys_book.models.base import Recommender

# --------------------------------------------------------------------------- fixtures


def frame(pairs) -> pd.DataFrame:
    users, items = zip(*pairs, strict=True)
    return pd.DataFrame({"user_idx": np.array(users, np.int64), "item_idx": np.array(items)})


@pytest.fixture
def tiny():
    """Two users, five items (n_items = 6 with padding) and a fixed score table.

    user 1 saw item 1 in training, will interact with items 2 and 4;
    user 2 saw item 5, will interact with item 3.
    """
    train = frame([(1, 1), (2, 5)])
    test = frame([(1, 2), (1, 4), (2, 3)])
    table = np.array(
        [
            # pad  i1   i2   i3   i4   i5
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # user 0 (padding)
            [0.0, 0.9, 0.1, 0.8, 0.7, 0.2],  # user 1
            [0.0, 0.5, 0.4, 0.3, 0.2, 0.9],  # user 2
        ],
        dtype=np.float32,
    )
    return train, test, (lambda users: table[users])


def random_problem(seed=0, n_users=60, n_items=41, n_seen=6, max_test=4, ties=False):
    """Random encoded train/test frames (disjoint per user) and a score table."""
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((n_users, n_items - 1)), axis=1)[:, : n_seen + max_test] + 1
    n_test = rng.integers(1, max_test + 1, size=n_users)
    users = np.arange(1, n_users + 1)
    train = pd.DataFrame(
        {"user_idx": np.repeat(users, n_seen), "item_idx": picks[:, :n_seen].ravel()}
    )
    mask = np.arange(max_test) < n_test[:, None]
    test = pd.DataFrame({"user_idx": np.repeat(users, n_test), "item_idx": picks[:, n_seen:][mask]})
    if ties:
        scores = rng.integers(0, 3, size=(n_users + 1, n_items)).astype(np.float32)
    else:
        scores = rng.random((n_users + 1, n_items), dtype=np.float32)
    return train, test, scores


def reference_per_user(scores, train, test, k, exclude_seen=True):
    """A deliberately plain loop over users: pessimistic ties, then textbook formulas."""
    rows = []
    for u in np.unique(test["user_idx"]):
        relevant = set(test.loc[test["user_idx"] == u, "item_idx"])
        seen = set(train.loc[train["user_idx"] == u, "item_idx"]) if exclude_seen else set()
        candidates = [i for i in range(1, scores.shape[1]) if i not in seen]
        # best score first; among equal scores irrelevant items first, then by index
        ranked = sorted(candidates, key=lambda i: (-scores[u, i], i in relevant, i))[:k]
        rel = [i in relevant for i in ranked]
        n_rel = len(relevant)
        dcg = sum(1 / math.log2(j + 2) for j, r in enumerate(rel) if r)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(n_rel, k)))
        ap = sum(sum(rel[: j + 1]) / (j + 1) for j, r in enumerate(rel) if r) / min(n_rel, k)
        first = next((j for j, r in enumerate(rel) if r), None)
        rows.append(
            {
                "user_idx": u,
                f"HR@{k}": float(any(rel)),
                f"NDCG@{k}": dcg / idcg,
                f"Recall@{k}": sum(rel) / n_rel,
                f"Precision@{k}": sum(rel) / k,
                f"MRR@{k}": 0.0 if first is None else 1 / (first + 1),
                f"MAP@{k}": ap,
            }
        )
    return pd.DataFrame(rows)


class TableModel(Recommender):
    """A Recommender whose scores are a fixed table (for interface tests)."""

    def __init__(self, table):
        self.table = table

    def _fit(self, train):
        pass

    def _score(self, users):
        return self.table[users]


# --------------------------------------------------------------------------- top_k


def test_top_k_order_and_ties():
    s = np.array([[1.0, 5.0, 5.0, 5.0, 0.0], [-np.inf, 2.0, 3.0, 3.0, 1.0]])
    # row 0: three items tie at 5; the smaller indices win, also at the cut-off
    np.testing.assert_array_equal(top_k(s, 2), [[1, 2], [2, 3]])
    np.testing.assert_array_equal(top_k(s, 4), [[1, 2, 3, 0], [2, 3, 1, 4]])
    np.testing.assert_array_equal(top_k(s, 5)[1], [2, 3, 1, 4, 0])
    assert top_k(s, 2).dtype == np.int64


def test_top_k_matches_a_stable_sort():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(50, 30)).astype(np.float64)  # many ties
    s[rng.random(s.shape) < 0.1] = -np.inf
    for k in (1, 3, 10, 30):
        expected = np.argsort(-s, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(top_k(s, k), expected)


def test_top_k_errors():
    with pytest.raises(ValueError, match="1..3"):
        top_k(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="1..3"):
        top_k(np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match="float"):
        top_k(np.zeros((2, 3), dtype=int), 1)
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([[0.0, np.nan]]), 1)


# --------------------------------------------------------------------------- evaluate


def test_evaluate_tiny_by_hand(tiny):
    train, test, score = tiny
    table = evaluate(score, train, test, n_items=6, k=2)
    # user 1: item 1 (seen) removed; ranking 3 (0.8), 4 (0.7), 5, 2 -> top 2 = [3, 4]
    #   hits [0, 1], R = 2: HR 1, P 1/2, Recall 1/2, MRR 1/2,
    #   NDCG = (1/log2 3) / (1 + 1/log2 3) = 0.3869, MAP = (1/2 * P@2 = 1/2) / min(2, 2) = 1/4
    # user 2: item 5 (seen) removed; ranking 1, 2, 3, 4 -> top 2 = [1, 2], no hit: all 0
    ndcg_u1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    expected = {
        "HR@2": 0.5,
        "NDCG@2": ndcg_u1 / 2,
        "Recall@2": 0.25,
        "Precision@2": 0.25,
        "MRR@2": 0.25,
        "MAP@2": 0.125,
        "users": 2,
    }
    assert list(table.columns) == list(expected)
    assert len(table) == 1
    for column, value in expected.items():
        assert table[column].iloc[0] == pytest.approx(value), column
    assert "full ranking of all 5 items" in table.attrs["protocol"]


def test_seen_items_are_excluded(tiny):
    train, test, score = tiny
    # without exclusion user 1's top 2 is [1 (seen), 3] and user 2's is [5 (seen), 1]: no hit
    table = evaluate(score, train, test, n_items=6, k=2, exclude_seen=False)
    assert table["HR@2"].iloc[0] == 0.0
    # a model that puts every seen item first: with exclusion the seen items never show up,
    # so a test item that is next in line is found at rank 1
    train2, test2, scores = random_problem(seed=1)
    boosted = scores.copy()
    boosted[train2["user_idx"], train2["item_idx"]] += 100.0
    boosted[test2["user_idx"], test2["item_idx"]] += 50.0
    t = evaluate(lambda u: boosted[u], train2, test2, n_items=41, k=1, metrics=["HR"])
    assert t["HR@1"].iloc[0] == 1.0
    t = evaluate(lambda u: boosted[u], None, test2, n_items=41, k=1, exclude_seen=False)
    assert t["HR@1"].iloc[0] == 0.0


@pytest.mark.parametrize("ties", [False, True])
def test_evaluate_matches_reference_loop(ties):
    train, test, scores = random_problem(seed=2, ties=ties)
    ours = evaluate(lambda u: scores[u], train, test, n_items=41, k=5, per_user=True)
    ref = reference_per_user(scores, train, test, k=5)
    pd.testing.assert_frame_equal(ours, ref, check_dtype=False)


def test_constant_model_gets_no_credit():
    train, test, _ = random_problem(seed=3)
    table = evaluate(
        lambda u: np.zeros((len(u), 41), np.float32),
        train,
        test,
        n_items=41,
        k=10,
        metrics=["HR", "NDCG", "MRR", "AUC"],
    )
    assert table["HR@10"].iloc[0] == 0.0
    assert table["NDCG@10"].iloc[0] == 0.0
    assert table["AUC"].iloc[0] == pytest.approx(0.5)


def test_batching_does_not_change_results():
    train, test, scores = random_problem(seed=4, ties=True)
    kwargs = dict(n_items=41, k=(1, 5, 10), metrics=("HR", "NDCG", "MAP", "AUC"), per_user=True)
    one = evaluate(lambda u: scores[u], train, test, batch_size=1, **kwargs)
    big = evaluate(lambda u: scores[u], train, test, batch_size=1024, **kwargs)
    pd.testing.assert_frame_equal(one, big)


def test_several_k_columns_and_monotonicity():
    train, test, scores = random_problem(seed=5)
    table = evaluate(lambda u: scores[u], train, test, n_items=41, k=[10, 1, 5])
    assert list(table.columns[:6]) == [
        "HR@1",
        "NDCG@1",
        "Recall@1",
        "Precision@1",
        "MRR@1",
        "MAP@1",
    ]
    hr = table[["HR@1", "HR@5", "HR@10"]].iloc[0].to_numpy()
    recall = table[["Recall@1", "Recall@5", "Recall@10"]].iloc[0].to_numpy()
    assert (np.diff(hr) >= 0).all() and (np.diff(recall) >= 0).all()
    assert hr[-1] > 0


def test_auc_matches_sklearn():
    train, test, scores = random_problem(seed=6, ties=True)
    per_user = evaluate(
        lambda u: scores[u], train, test, n_items=41, metrics=["AUC"], per_user=True
    )
    assert list(per_user.columns) == ["user_idx", "AUC"]
    for row in per_user.itertuples():
        u = row.user_idx
        seen = set(train.loc[train["user_idx"] == u, "item_idx"])
        relevant = set(test.loc[test["user_idx"] == u, "item_idx"])
        items = [i for i in range(1, 41) if i not in seen]
        labels = [i in relevant for i in items]
        assert row.AUC == pytest.approx(roc_auc_score(labels, scores[u, items]))


def test_per_user_and_user_subset():
    train, test, scores = random_problem(seed=7)
    per_user = evaluate(lambda u: scores[u], train, test, n_items=41, per_user=True)
    mean = evaluate(lambda u: scores[u], train, test, n_items=41)
    assert len(per_user) == test["user_idx"].nunique()
    assert per_user["user_idx"].is_monotonic_increasing
    assert per_user["NDCG@10"].mean() == pytest.approx(mean["NDCG@10"].iloc[0])
    subset = evaluate(lambda u: scores[u], train, test, n_items=41, users=[3, 1], per_user=True)
    assert subset["user_idx"].tolist() == [1, 3]
    pd.testing.assert_frame_equal(
        subset.reset_index(drop=True),
        per_user[per_user["user_idx"].isin([1, 3])].reset_index(drop=True),
    )


def test_accepts_a_recommender():
    train, test, scores = random_problem(seed=8)
    model = TableModel(scores).fit(train, n_users=61, n_items=41)
    via_model = evaluate(model, train, test, n_items=41)
    via_fn = evaluate(lambda u: scores[u], train, test, n_items=41)
    pd.testing.assert_frame_equal(via_model, via_fn)


# --------------------------------------------------------------------------- evaluate: errors


def test_evaluate_errors(tiny):
    train, test, score = tiny
    with pytest.raises(ValueError, match="test is empty"):
        evaluate(score, train, test.iloc[:0], n_items=6)
    with pytest.raises(KeyError, match="item_idx"):
        evaluate(score, train, test.drop(columns="item_idx"), n_items=6)
    with pytest.raises(ValueError, match="exceed the vocabulary"):
        evaluate(score, train, test, n_items=4, k=2)
    with pytest.raises(ValueError, match="positive integer"):
        evaluate(score, train, test, n_items=6, k=0)
    with pytest.raises(ValueError, match="positive integer"):
        evaluate(score, train, test, n_items=6, k=[])
    with pytest.raises(ValueError, match="exceeds the number of real items"):
        evaluate(score, train, test, n_items=6, k=6)
    with pytest.raises(ValueError, match="unknown metric 'F1'"):
        evaluate(score, train, test, n_items=6, k=2, metrics=["HR", "F1"])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(score, train, test, n_items=6, k=2, batch_size=0)
    with pytest.raises(ValueError, match="no test items"):
        evaluate(score, train, test, n_items=6, k=2, users=[1, 9])
    with pytest.raises(ValueError, match="train is required"):
        evaluate(score, None, test, n_items=6, k=2)
    with pytest.raises(ValueError, match="n_items must be an integer"):
        evaluate(score, train, test, n_items=1)
    with pytest.raises(TypeError, match="Recommender"):
        evaluate("not a model", train, test, n_items=6, k=2)


def test_evaluate_rejects_bad_scores(tiny):
    train, test, score = tiny
    with pytest.raises(ValueError, match=r"shape \(2, 5\).*\(2, 6\)"):
        evaluate(lambda u: score(u)[:, 1:], train, test, n_items=6, k=2)
    with pytest.raises(ValueError, match="dtype int64"):
        evaluate(lambda u: np.zeros((len(u), 6), np.int64), train, test, n_items=6, k=2)

    def with_nan(u):
        s = score(u).copy()
        s[0, 3] = np.nan
        return s

    with pytest.raises(ValueError, match="NaN"):
        evaluate(with_nan, train, test, n_items=6, k=2)


def test_evaluate_checks_the_model_sizes():
    train, test, scores = random_problem(seed=9)
    model = TableModel(scores).fit(train, n_users=61, n_items=41)
    with pytest.raises(ValueError, match="scores 41 items but n_items=42"):
        evaluate(model, train, test, n_items=42)
    small = TableModel(scores).fit(train[train["user_idx"] < 30], n_users=30, n_items=41)
    with pytest.raises(ValueError, match="outside the model's score range"):
        evaluate(small, train, test, n_items=41)


# --------------------------------------------------------------------------- sampled


def loo_problem(seed=10, n_users=400, n_items=501):
    """Leave-one-out: one test item per user, random float scores."""
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((n_users, n_items - 1)), axis=1)[:, :11] + 1
    users = np.arange(1, n_users + 1)
    train = pd.DataFrame({"user_idx": np.repeat(users, 10), "item_idx": picks[:, :10].ravel()})
    test = pd.DataFrame({"user_idx": users, "item_idx": picks[:, 10]})
    scores = rng.random((n_users + 1, n_items), dtype=np.float32)
    return train, test, scores


def test_sampled_hr_exceeds_full_for_a_random_model():
    train, test, scores = loo_problem()
    full = evaluate(lambda u: scores[u], train, test, n_items=501, k=10)
    sampled = evaluate_sampled(lambda u: scores[u], train, test, n_items=501, k=10)
    # random model: HR@10 is about 10/490 under full ranking and 10/101 under sampling
    assert full["HR@10"].iloc[0] < 0.05
    assert 0.06 < sampled["HR@10"].iloc[0] < 0.14
    assert sampled["HR@10"].iloc[0] > full["HR@10"].iloc[0]
    assert list(sampled.columns) == list(full.columns)
    assert "100 uniform-sampled" in sampled.attrs["protocol"]


def test_sampled_is_deterministic_and_batch_invariant():
    train, test, scores = loo_problem(n_users=80)
    run = dict(n_items=501, k=(5, 10), per_user=True)
    a = evaluate_sampled(lambda u: scores[u], train, test, seed=3, batch_size=7, **run)
    b = evaluate_sampled(lambda u: scores[u], train, test, seed=3, batch_size=1024, **run)
    c = evaluate_sampled(lambda u: scores[u], train, test, seed=4, **run)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_sampled_never_ranks_seen_items():
    # seen items get the top scores and the test item the next: it must be at rank 1
    train, test, scores = loo_problem(n_users=50)
    boosted = scores.copy()
    boosted[train["user_idx"], train["item_idx"]] += 100.0
    boosted[test["user_idx"], test["item_idx"]] += 50.0
    for strategy in ("uniform", "popularity"):
        t = evaluate_sampled(lambda u: boosted[u], train, test, n_items=501, k=1, strategy=strategy)
        assert t["HR@1"].iloc[0] == 1.0


def test_popularity_sampling_never_draws_items_unseen_in_training():
    # the model ranks items that nobody trained on first; under popularity sampling they
    # are never candidates, so the test item (next in line) is at rank 1
    train, test, scores = loo_problem(n_users=50)
    never_trained = np.setdiff1d(np.arange(1, 501), train["item_idx"])
    never_trained = np.setdiff1d(never_trained, test["item_idx"])
    assert never_trained.size > 0
    boosted = scores.copy()
    boosted[:, never_trained] += 100.0
    boosted[test["user_idx"], test["item_idx"]] += 50.0
    run = dict(n_items=501, k=1, metrics=["HR"])
    popular = evaluate_sampled(lambda u: boosted[u], train, test, strategy="popularity", **run)
    uniform = evaluate_sampled(lambda u: boosted[u], train, test, strategy="uniform", **run)
    assert popular["HR@1"].iloc[0] == 1.0
    assert uniform["HR@1"].iloc[0] < 1.0


def test_sampled_errors():
    train, test, scores = loo_problem(n_users=20)
    fn = lambda u: scores[u]  # noqa: E731
    with pytest.raises(ValueError, match="larger than n_negatives"):
        evaluate_sampled(fn, train, test, n_items=501, k=10, n_negatives=5)
    with pytest.raises(ValueError, match="n_negatives must be a positive"):
        evaluate_sampled(fn, train, test, n_items=501, n_negatives=0)
    with pytest.raises(ValueError, match="exceeds the number of real items"):
        evaluate_sampled(fn, train, test, n_items=501, n_negatives=600)
    with pytest.raises(ValueError, match="strategy"):
        evaluate_sampled(fn, train, test, n_items=501, strategy="hard")
    with pytest.raises(ValueError, match="fewer than n_negatives"):
        evaluate_sampled(fn, train, test, n_items=501, n_negatives=495, k=1)
    with pytest.raises(ValueError, match="seed"):
        evaluate_sampled(fn, train, test, n_items=501, seed=-1)


# --------------------------------------------------------------------------- ratings


def test_evaluate_ratings_by_hand():
    test = frame([(1, 1), (1, 2), (2, 3)]).assign(rating=[4.0, 2.0, 5.0])
    # predictions 3 everywhere: errors 1, -1, 2 -> RMSE sqrt(6/3) = 1.4142, MAE 4/3
    table = evaluate_ratings(lambda u, i: np.full(len(u), 3.0), test, batch_size=2)
    assert table["RMSE"].iloc[0] == pytest.approx(math.sqrt(2))
    assert table["MAE"].iloc[0] == pytest.approx(4 / 3)
    assert table["ratings"].iloc[0] == 3
    # a (n, 1) column of predictions is accepted
    assert evaluate_ratings(lambda u, i: np.full((len(u), 1), 3.0), test)["MAE"].iloc[0] == (
        pytest.approx(4 / 3)
    )


def test_evaluate_ratings_errors():
    test = frame([(1, 1), (2, 3)]).assign(rating=[4.0, 5.0])
    with pytest.raises(KeyError, match="rating"):
        evaluate_ratings(lambda u, i: u * 1.0, test.drop(columns="rating"))
    with pytest.raises(ValueError, match="one prediction per"):
        evaluate_ratings(lambda u, i: np.zeros(5), test)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ratings(lambda u, i: np.full(len(u), np.nan), test)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ratings(lambda u, i: np.ones(len(u)), test.assign(rating=[np.nan, 1.0]))
    with pytest.raises(ValueError, match="test is empty"):
        evaluate_ratings(lambda u, i: u * 1.0, test.iloc[:0])
    with pytest.raises(TypeError, match="callable"):
        evaluate_ratings(None, test)
