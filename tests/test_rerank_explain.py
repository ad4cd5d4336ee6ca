"""MMR re-ranking (recsys_book.rerank) and item-based explanations (recsys_book.explain)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_book.evaluation import top_k
from recsys_book.explain import explain_item_based
from recsys_book.metrics import intra_list_diversity
from recsys_book.models.neighborhood import ItemKNN
from recsys_book.rerank import mmr_rerank

# --------------------------------------------------------------------------- MMR


def _clusters():
    """Items 1-3 in cluster A (most relevant), 4-6 in cluster B; column 0 padding."""
    scores = np.array([[-np.inf, 1.0, 0.9, 0.8, 0.5, 0.4, 0.3]], dtype=np.float32)
    vectors = np.zeros((7, 2))
    vectors[1:4, 0] = 1.0
    vectors[4:7, 1] = 1.0
    return scores, vectors


def test_lambda_one_is_plain_top_k():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 40)).astype(np.float32)
    scores[:, 0] = -np.inf
    vectors = rng.normal(size=(40, 4))
    assert np.array_equal(mmr_rerank(scores, vectors, k=6, lam=1.0), top_k(scores, 6))


def test_mmr_alternates_clusters_when_diversity_wins():
    scores, vectors = _clusters()
    assert mmr_rerank(scores, vectors, k=2, lam=1.0).tolist() == [[1, 2]]
    # after item 1, item 2 has gain .5*.857 - .5*1 < 0, item 4 has .5*.286 - 0 > 0
    assert mmr_rerank(scores, vectors, k=2, lam=0.5).tolist() == [[1, 4]]
    assert mmr_rerank(scores, vectors, k=4, lam=0.0).tolist() == [[1, 4, 2, 3]]


def test_mmr_hand_computed_gain():
    """Worked example: relevance min-max scaled, gain = lam*rel - (1-lam)*max cos."""
    scores = np.array([[-np.inf, 3.0, 2.0, 1.0]])
    vectors = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    # rel = [1, .5, 0]; after item 1: cos(2,1) = .707, cos(3,1) = 0
    # lam=.6: item 2 -> .3 - .4*.707 = .017; item 3 -> 0 - 0 = 0, so item 2 wins
    assert mmr_rerank(scores, vectors, k=2, lam=0.6, n_candidates=3).tolist() == [[1, 2]]
    # lam=.5: item 2 -> .25 - .354 < 0 = item 3, so item 3 wins
    assert mmr_rerank(scores, vectors, k=2, lam=0.5, n_candidates=3).tolist() == [[1, 3]]


def test_diversity_rises_as_lambda_falls():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 60))
    scores[:, 0] = -np.inf
    vectors = (rng.random((60, 6)) < 0.3).astype(float) + 1e-3
    ild = [
        intra_list_diversity(mmr_rerank(scores, vectors, 10, lam), vectors).mean()
        for lam in (1.0, 0.5, 0.0)
    ]
    assert ild[0] < ild[1] < ild[2]


def test_exclude_mask_dense_and_sparse():
    scores, vectors = _clusters()
    mask = np.zeros_like(scores, dtype=bool)
    mask[0, [1, 4]] = True
    dense = mmr_rerank(scores, vectors, k=3, lam=1.0, exclude=mask)
    assert dense.tolist() == [[2, 3, 5]]
    sparse = mmr_rerank(scores, vectors, k=3, lam=1.0, exclude=sp.csr_matrix(mask))
    assert np.array_equal(dense, sparse)


def test_rows_independent_and_unique():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(8, 30))
    scores[:, 0] = -np.inf
    vectors = rng.random((30, 3))
    out = mmr_rerank(scores, vectors, k=10, lam=0.3, n_candidates=20)
    assert out.shape == (8, 10) and out.dtype == np.int64
    assert all(len(set(row)) == 10 for row in out.tolist())
    assert (out >= 1).all()
    single = mmr_rerank(scores[3:4], vectors, k=10, lam=0.3, n_candidates=20)
    assert np.array_equal(single[0], out[3])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lam": 1.5}, ValueError, "lam must lie"),
        ({"lam": "0.5"}, TypeError, "lam must be a number"),
        ({"k": 0}, ValueError, "k must be"),
        ({"k": 5, "n_candidates": 3}, ValueError, "exceeds n_candidates"),
        ({"n_candidates": 0}, ValueError, "n_candidates must be"),
        ({"exclude": np.zeros((1, 3), bool)}, ValueError, "boolean mask"),
        ({"exclude": np.zeros((1, 7))}, ValueError, "boolean mask"),
        ({"k": 7}, ValueError, "recommendable"),
    ],
)
def test_mmr_errors(kwargs, error, match):
    scores, vectors = _clusters()
    with pytest.raises(error, match=match):
        mmr_rerank(scores, vectors, **kwargs)


def test_mmr_bad_scores_and_vectors():
    scores, vectors = _clusters()
    with pytest.raises(ValueError, match="2-D float"):
        mmr_rerank(scores[0], vectors)
    with pytest.raises(ValueError, match="NaN"):
        mmr_rerank(np.where(scores == 1.0, np.nan, scores), vectors)
    with pytest.raises(ValueError, match="item_vectors must be"):
        mmr_rerank(scores, vectors[:5])
    bad = vectors.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="item_vectors contain NaN"):
        mmr_rerank(scores, bad)


# --------------------------------------------------------------------------- explain


def test_explain_matches_itemknn_score_decomposition():
    """The weights of all reasons sum to ItemKNN's score: the explanation is exact."""
    rng = np.random.default_rng(3)
    rows = [(u, i) for u in range(1, 30) for i in rng.choice(np.arange(1, 25), 6, replace=False)]
    train = pd.DataFrame(rows, columns=["user_idx", "item_idx"]).astype("int64")
    model = ItemKNN(k=30).fit(train, n_users=30, n_items=25)
    user = 5
    history = np.sort(train.loc[train.user_idx == user, "item_idx"].to_numpy())
    rec = model.recommend(np.array([user]), k=3)[0]
    table = explain_item_based(rec, history, weights=model.similarity_, n_reasons=len(history))
    total = table.groupby("item_idx")["weight"].sum()
    scores = model.score(np.array([user]))[0]
    np.testing.assert_allclose(total.loc[rec].to_numpy(), scores[rec], rtol=1e-5)
    np.testing.assert_allclose(table.groupby("item_idx")["share"].sum().loc[rec], 1.0)
    assert list(table.columns) == ["rank", "item_idx", "reason", "because_idx", "weight", "share"]
    assert set(table["because_idx"]) <= set(history.tolist())


def test_explain_orders_reasons_and_adds_titles():
    weights = np.zeros((5, 5))
    weights[4, 1], weights[4, 2], weights[4, 3] = 0.2, 0.7, 0.0
    titles = pd.Series(["pad", "A", "B", "C", "D"], index=range(5))
    table = explain_item_based([4], [1, 2, 3], weights=weights, n_reasons=3, titles=titles)
    assert table["because_idx"].tolist() == [2, 1]  # zero contribution is no reason
    assert table["reason"].tolist() == [1, 2]
    assert table["title"].tolist() == ["D", "D"]
    assert table["because_title"].tolist() == ["B", "A"]
    np.testing.assert_allclose(table["share"], [0.7 / 0.9, 0.2 / 0.9])
    arr = explain_item_based([4], [1, 2, 3], weights=weights, titles=titles.to_numpy())
    assert arr["because_title"].tolist() == ["B", "A"]


def test_explain_with_vectors_uses_cosine():
    vectors = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    table = explain_item_based([3], [1, 2], item_vectors=vectors, n_reasons=1)
    assert len(table) == 1 and table["because_idx"].iloc[0] == 1  # tie -> first liked item
    np.testing.assert_allclose(table["weight"], [np.sqrt(0.5)])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([2], [1]), {}, "exactly one"),
        (([2], [1]), {"weights": np.eye(4), "item_vectors": np.eye(4)}, "exactly one"),
        (([2], [1]), {"weights": np.ones((4, 3))}, "square"),
        (([2], [9]), {"weights": np.eye(4)}, "history must lie"),
        (([0], [1]), {"weights": np.eye(4)}, "recommended must lie"),
        ((np.array([], dtype=int), [1]), {"weights": np.eye(4)}, "empty"),
        (([2.0], [1]), {"weights": np.eye(4)}, "integer item indices"),
        (([2], [1]), {"weights": np.eye(4), "n_reasons": 0}, "n_reasons"),
        (([2], [1]), {"weights": np.full((4, 4), np.nan)}, "NaN"),
        (([2], [1]), {"item_vectors": np.array(["a", "b", "c", "d"])}, "numeric"),
        (([2], [1]), {"weights": np.eye(4), "titles": ["a", "b"]}, "titles"),
    ],
)
def test_explain_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        explain_item_based(*args, **kwargs)
