"""Tests of recsys_book.metrics: hand-computed cases, properties, references, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from recsys_book import metrics as M

RANKING = [M.hit_rate_at_k, M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.mrr, M.map_at_k]
L2, L3, L4, L5 = (math.log2(x) for x in (2, 3, 4, 5))  # log2(rank + 1) for ranks 1..4


# --------------------------------------------------------------------------- hand-computed


@pytest.fixture
def example():
    """Four users, lists of length k = 5 (or 3 for the last user, padded with misses)."""
    hits = np.array(
        [
            [0, 1, 0, 1, 0],  # u0: hits at ranks 2 and 4, R = 3 relevant items
            [0, 0, 0, 0, 0],  # u1: no hit, R = 1
            [1, 0, 0, 0, 0],  # u2: hit at rank 1, R = 1
            [1, 1, 0, 0, 0],  # u3: hits at ranks 1 and 2, R = 7 > k
        ],
        dtype=bool,
    )
    return hits, np.array([3, 1, 1, 7])


def test_hit_rate_by_hand(example):
    hits, n = example
    # u0 has a hit, u1 none, u2 and u3 have hits.
    np.testing.assert_array_equal(M.hit_rate_at_k(hits, n), [1, 0, 1, 1])
    # at k = 1 only lists whose first item is relevant count: u2 and u3.
    np.testing.assert_array_equal(M.hit_rate_at_k(hits, n, k=1), [0, 0, 1, 1])


def test_precision_by_hand(example):
    hits, n = example
    # hits / k: 2/5, 0/5, 1/5, 2/5
    np.testing.assert_allclose(M.precision_at_k(hits, n), [0.4, 0.0, 0.2, 0.4])
    # k = 2: u0 1/2, u1 0, u2 1/2, u3 2/2
    np.testing.assert_allclose(M.precision_at_k(hits, k=2), [0.5, 0.0, 0.5, 1.0])


def test_recall_by_hand(example):
    hits, n = example
    # hits / R: 2/3, 0/1, 1/1, 2/7
    np.testing.assert_allclose(M.recall_at_k(hits, n), [2 / 3, 0.0, 1.0, 2 / 7])


def test_ndcg_by_hand(example):
    hits, n = example
    # u0: DCG = 1/log2(3) + 1/log2(5) = 0.6309 + 0.4307 = 1.0616;
    #     IDCG over min(R=3, k=5) = 3 ranks: 1/log2(2) + 1/log2(3) + 1/log2(4) = 2.1309
    u0 = (1 / L3 + 1 / L5) / (1 / L2 + 1 / L3 + 1 / L4)
    # u2: hit at rank 1, R = 1: 1 / 1 = 1
    # u3: DCG = 1 + 1/log2(3); IDCG over min(7, 5) = 5 ranks
    u3 = (1 / L2 + 1 / L3) / sum(1 / math.log2(j + 1) for j in range(1, 6))
    np.testing.assert_allclose(M.ndcg_at_k(hits, n), [u0, 0.0, 1.0, u3])
    assert u0 == pytest.approx(0.49819, abs=1e-5)
    # k = 3, u3: IDCG over min(7, 3) = 3 ranks = 2.1309, DCG = 1.6309 -> 0.7654
    assert M.ndcg_at_k(hits, n, k=3)[3] == pytest.approx((1 + 1 / L3) / (1 + 1 / L3 + 0.5))


def test_mrr_by_hand(example):
    hits, n = example
    # first hit at rank 2, none, rank 1, rank 1
    np.testing.assert_allclose(M.mrr(hits, n), [0.5, 0.0, 1.0, 1.0])
    # at k = 1 u0's first hit (rank 2) falls outside the list
    np.testing.assert_allclose(M.mrr(hits, k=1), [0.0, 0.0, 1.0, 1.0])


def test_map_by_hand(example):
    hits, n = example
    # u0: precision at the hit ranks: P@2 = 1/2, P@4 = 2/4; sum 1; / min(R=3, k=5) = 1/3
    # u2: P@1 = 1, / min(1, 5) = 1
    # u3: P@1 = 1, P@2 = 1; sum 2; / min(R=7, k=5) = 2/5
    np.testing.assert_allclose(M.map_at_k(hits, n), [1 / 3, 0.0, 1.0, 2 / 5])
    # k = 2, u3: 2 / min(7, 2) = 1 (a perfect list of length 2)
    assert M.map_at_k(hits, n, k=2)[3] == pytest.approx(1.0)


def test_integer_hits_are_accepted(example):
    hits, n = example
    np.testing.assert_allclose(M.ndcg_at_k(hits.astype(int), n), M.ndcg_at_k(hits, n))


def test_auc_by_hand():
    # scores 3, 2, 1, 0 with positives at 3 and 1: pairs (3>2), (3>0), (1<2), (1>0) -> 3/4
    s = np.array([[3.0, 2.0, 1.0, 0.0]])
    pos = np.array([[True, False, True, False]])
    np.testing.assert_allclose(M.auc(s, pos), [0.75])
    # a tie counts one half: one pair, tied -> 0.5
    np.testing.assert_allclose(M.auc(np.array([[1.0, 1.0]]), np.array([[True, False]])), [0.5])
    # a non-candidate (score 5) is ignored: the positive beats the one negative -> 1
    s = np.array([[0.0, 5.0, 1.0]])
    pos = np.array([[False, False, True]])
    cand = np.array([[True, False, True]])
    np.testing.assert_allclose(M.auc(s, pos, cand), [1.0])


def test_rmse_mae_by_hand():
    # errors 0, 1, 2: MSE = (0 + 1 + 4) / 3 = 5/3, RMSE = sqrt(5/3) = 1.2910; MAE = 3/3 = 1
    assert M.rmse([1, 2, 3], [1.0, 3.0, 5.0]) == pytest.approx(math.sqrt(5 / 3))
    assert M.mae([1, 2, 3], [1.0, 3.0, 5.0]) == pytest.approx(1.0)


def test_catalog_coverage_by_hand():
    # n_items = 6 -> 5 real items; lists use {1, 2, 3} -> 3/5
    assert M.catalog_coverage(np.array([[1, 2], [2, 3]]), 6) == pytest.approx(0.6)


def test_novelty_by_hand():
    # popularity of items 1..3 = 2, 1, 1 (sum 4): p = 1/2, 1/4, 1/4 -> self-information 1, 2, 2 bits
    pop = np.array([99, 2, 1, 1])  # entry 0 is padding and ignored
    # list [1, 2]: (1 + 2) / 2 = 1.5 bits; list [2, 3]: (2 + 2) / 2 = 2 bits
    np.testing.assert_allclose(M.novelty(np.array([[1, 2], [2, 3]]), pop), [1.5, 2.0])


def test_intra_list_diversity_by_hand():
    vectors = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    # cos(1,2) = 0, cos(1,3) = cos(2,3) = 1/sqrt(2); distances 1, 0.2929, 0.2929 -> mean 0.5286
    expected = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    np.testing.assert_allclose(M.intra_list_diversity(np.array([[1, 2, 3]]), vectors), [expected])
    # a list of identical directions has no diversity
    np.testing.assert_allclose(
        M.intra_list_diversity(np.array([[1, 1]]), vectors), [0.0], atol=1e-12
    )


# --------------------------------------------------------------------------- properties


def _random_hits(rng, batch=500, k=10, max_relevant=15):
    n_relevant = rng.integers(1, max_relevant + 1, size=batch)
    hits = rng.random((batch, k)) < 0.3
    # keep hits consistent with n_relevant: never more hits than relevant items
    too_many = np.cumsum(hits, axis=1) > n_relevant[:, None]
    return hits & ~too_many, n_relevant


@pytest.mark.parametrize("metric", RANKING)
def test_bounds(metric):
    hits, n = _random_hits(np.random.default_rng(0))
    values = metric(hits, n)
    assert values.shape == (len(n),) and values.dtype == np.float64
    assert (values >= 0).all() and (values <= 1).all()
    assert values.max() > 0  # not trivially zero


def test_perfect_ranking_scores_one():
    rng = np.random.default_rng(1)
    k = 10
    n = rng.integers(1, k + 1, size=200)  # R <= k
    hits = np.arange(k) < n[:, None]  # all relevant items on top
    for metric in (M.hit_rate_at_k, M.ndcg_at_k, M.mrr, M.recall_at_k, M.map_at_k):
        np.testing.assert_allclose(metric(hits, n), 1.0, err_msg=metric.__name__)
    # with R > k, NDCG and MAP still reach 1 (their ideal is limited to k), recall does not
    n_big = np.full(5, 25)
    full = np.ones((5, k), bool)
    np.testing.assert_allclose(M.ndcg_at_k(full, n_big), 1.0)
    np.testing.assert_allclose(M.map_at_k(full, n_big), 1.0)
    np.testing.assert_allclose(M.recall_at_k(full, n_big), k / 25)


def test_monotonic_in_k():
    hits, n = _random_hits(np.random.default_rng(2), k=20)
    for metric in (M.hit_rate_at_k, M.recall_at_k):
        previous = np.zeros(len(n))
        for k in range(1, 21):
            current = metric(hits, n, k=k)
            assert (current >= previous).all(), (metric.__name__, k)
            previous = current


def test_random_ranking_matches_theory():
    # n candidates, R relevant, a random permutation: closed-form expectations
    rng = np.random.default_rng(3)
    users, n_cand, R, k = 20_000, 50, 3, 10
    relevant = np.zeros((users, n_cand), bool)
    relevant[:, :R] = True
    perm = np.argsort(rng.random((users, n_cand)), axis=1)
    hits = np.take_along_axis(relevant, perm[:, :k], axis=1)
    n = np.full(users, R)
    hr_theory = 1 - math.comb(n_cand - R, k) / math.comb(n_cand, k)  # P(at least one hit)
    assert M.hit_rate_at_k(hits, n).mean() == pytest.approx(hr_theory, abs=0.015)
    assert M.precision_at_k(hits, n).mean() == pytest.approx(R / n_cand, abs=0.005)
    assert M.recall_at_k(hits, n).mean() == pytest.approx(k / n_cand, abs=0.005)
    # each rank j holds a relevant item with probability R / n: E[DCG] = (R/n) sum_j 1/log2(j+1)
    idcg = sum(1 / math.log2(j + 1) for j in range(1, R + 1))
    ndcg_theory = R / n_cand * sum(1 / math.log2(j + 1) for j in range(1, k + 1)) / idcg
    assert M.ndcg_at_k(hits, n).mean() == pytest.approx(ndcg_theory, abs=0.01)


def test_ndcg_agrees_with_sklearn():
    # binary relevance, continuous scores (no ties): the definitions coincide
    rng = np.random.default_rng(4)
    y_true = (rng.random((60, 30)) < 0.2).astype(int)
    y_true[:, 0] = 1  # at least one relevant item per user
    y_score = rng.random((60, 30))
    for k in (1, 5, 10, 30):
        order = np.argsort(-y_score, axis=1)[:, :k]
        hits = np.take_along_axis(y_true, order, axis=1).astype(bool)
        ours = M.ndcg_at_k(hits, y_true.sum(axis=1))
        for u in range(0, 60, 7):
            assert ours[u] == pytest.approx(ndcg_score(y_true[u : u + 1], y_score[u : u + 1], k=k))
        assert ours.mean() == pytest.approx(ndcg_score(y_true, y_score, k=k))


def test_auc_agrees_with_sklearn_with_ties_and_masks():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(40, 25)).astype(np.float32)  # many ties
    scores[:, 3] = -np.inf
    positives = rng.random((40, 25)) < 0.3
    candidates = rng.random((40, 25)) < 0.8
    positives[:, 0] = candidates[:, 0] = True
    candidates[:, 1] = True
    positives[:, 1] = False
    ours = M.auc(scores, positives, candidates)
    for u in range(40):
        c = candidates[u]
        ref = roc_auc_score(positives[u][c], np.nan_to_num(scores[u][c], neginf=-1e30))
        assert ours[u] == pytest.approx(ref)


def test_auc_constant_scores_is_chance():
    pos = np.zeros((3, 8), bool)
    pos[:, 2] = True
    np.testing.assert_allclose(M.auc(np.zeros((3, 8)), pos), 0.5)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("metric", RANKING)
def test_ranking_errors(metric):
    hits, n = np.array([[True, False, True]]), np.array([2])
    with pytest.raises(ValueError, match="positive integer"):
        metric(hits, n, k=0)
    with pytest.raises(ValueError, match="positive integer"):
        metric(hits, n, k=-1)
    with pytest.raises(ValueError, match="exceeds"):
        metric(hits, n, k=4)
    with pytest.raises(ValueError, match="0 columns"):
        metric(np.zeros((1, 0), bool), n)
    with pytest.raises(ValueError, match="2-D"):
        metric(np.array([True, False]), n)
    with pytest.raises(ValueError, match="boolean"):
        metric(np.array([[0.5, 1.0, 0.0]]), n)
    with pytest.raises(ValueError, match="boolean"):
        metric(np.array([[2, 0, 0]]), n)
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        metric(hits, np.array([2, 2]))
    with pytest.raises(ValueError, match="integers"):
        metric(hits, np.array([np.nan]))
    with pytest.raises(ValueError, match="no relevant item"):
        metric(np.array([[False]]), np.array([0]))
    with pytest.raises(ValueError, match="more hits than n_relevant"):
        metric(hits, np.array([1]))


@pytest.mark.parametrize("metric", [M.recall_at_k, M.ndcg_at_k, M.map_at_k])
def test_metrics_needing_n_relevant_say_so(metric):
    with pytest.raises(ValueError, match="n_relevant"):
        metric(np.array([[True]]), None)


def test_auc_errors():
    s, pos = np.zeros((2, 3)), np.array([[True, False, False]] * 2)
    with pytest.raises(ValueError, match="NaN"):
        M.auc(np.array([[np.nan, 0.0, 0.0]] * 2), pos)
    with pytest.raises(ValueError, match="float"):
        M.auc(np.zeros((2, 3), dtype=int), pos)
    with pytest.raises(ValueError, match="positives must be a boolean"):
        M.auc(s, pos[:, :2])
    with pytest.raises(ValueError, match="candidates must be a boolean"):
        M.auc(s, pos, np.ones((2, 3), int))
    with pytest.raises(ValueError, match="without a positive"):
        M.auc(s, np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="without a positive or without a negative"):
        M.auc(s, np.ones((2, 3), bool))


def test_rating_errors():
    with pytest.raises(ValueError, match="same length"):
        M.rmse([1, 2], [1.0])
    with pytest.raises(ValueError, match="empty"):
        M.mae([], [])
    with pytest.raises(ValueError, match="NaN"):
        M.rmse([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="numeric"):
        M.mae(["a", "b"], [1.0, 2.0])


def test_beyond_accuracy_errors():
    with pytest.raises(ValueError, match="lie in 1..5"):
        M.catalog_coverage(np.array([[0, 1]]), 6)
    with pytest.raises(ValueError, match="lie in 1..5"):
        M.catalog_coverage(np.array([[6, 1]]), 6)
    with pytest.raises(ValueError, match="n_items"):
        M.catalog_coverage(np.array([[1]]), 1)
    with pytest.raises(ValueError, match="integer item indices"):
        M.catalog_coverage(np.array([[1.0, 2.0]]), 6)
    with pytest.raises(ValueError, match="2-D"):
        M.catalog_coverage(np.array([1, 2]), 6)
    with pytest.raises(ValueError, match="pseudo-count"):
        M.novelty(np.array([[1, 2]]), np.array([0, 3, 0]))
    with pytest.raises(ValueError, match="non-negative"):
        M.novelty(np.array([[1]]), np.array([0, -1.0]))
    with pytest.raises(ValueError, match="k >= 2"):
        M.intra_list_diversity(np.array([[1]]), np.eye(3))
    with pytest.raises(ValueError, match="all-zero vector"):
        M.intra_list_diversity(np.array([[1, 2]]), np.array([[1, 0], [0, 0], [1, 1]], float))
    with pytest.raises(ValueError, match="2-D numeric"):
        M.intra_list_diversity(np.array([[1, 2]]), np.ones(3))
