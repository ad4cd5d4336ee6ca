"""Collaborative-filtering models: Popularity, ItemKNN, UserKNN, EASE, BiasedMF, BPR.

Two kinds of data:

* a 4 x 5 matrix small enough to check the formulas by hand (or by a naive loop);
* a planted-cluster data set: users and items fall into 4 groups and a user
  interacts mostly with items of their own group, with equal popularity across
  groups, so a model that learns who-likes-what beats chance and popularity by
  a wide margin, while popularity itself is near chance.

Keras models are trained for a few epochs on small data to keep this file fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from recsys_book.data import make_synthetic
from recsys_book.models.bpr import BPR, sample_triplets
from recsys_book.models.ease import EASE
from recsys_book.models.mf import BiasedMF
from recsys_book.models.neighborhood import ItemKNN, UserKNN, cosine_topk
from recsys_book.models.popularity import Popularity

# ------------------------------------------------------------------ data

# users 1..4 (rows), items 1..5 (columns); index 0 is padding
TINY = np.array(
    [
        [1, 1, 0, 0, 1],
        [1, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 0, 1, 0],
    ],
    dtype=np.float32,
)


def frame_of(matrix: np.ndarray) -> pd.DataFrame:
    u, i = np.nonzero(matrix)
    return pd.DataFrame({"user_idx": u + 1, "item_idx": i + 1}).astype(np.int64)


@pytest.fixture(scope="module")
def tiny():
    return frame_of(TINY)


def planted_clusters(n_users=160, n_items=60, n_groups=4, p_in=0.5, p_out=0.02, seed=0):
    """``(train, test, n_users, n_items)``: 4 taste groups, 20 % of each user's rows held out."""
    rng = np.random.default_rng(seed)
    gu = np.arange(n_users) % n_groups
    gi = np.arange(n_items) % n_groups
    prob = np.where(gu[:, None] == gi[None, :], p_in, p_out)
    u, i = np.nonzero(rng.random((n_users, n_items)) < prob)
    frame = pd.DataFrame({"user_idx": u + 1, "item_idx": i + 1}).astype(np.int64)
    frame["rating"] = np.float32(5.0)
    test = rng.random(len(frame)) < 0.2
    return frame[~test], frame[test], n_users + 1, n_items + 1


@pytest.fixture(scope="module")
def clusters():
    return planted_clusters()


def hit_rate(model, train, test, k=10) -> float:
    """Share of test users with at least one test item in their top-k (seen excluded)."""
    users = np.unique(test["user_idx"].to_numpy())
    recs = model.recommend(users, k=k)
    relevant = set(zip(test["user_idx"], test["item_idx"], strict=True))
    hits = [any((u, i) in relevant for i in row) for u, row in zip(users, recs, strict=True)]
    return float(np.mean(hits))


def ndcg(model, train, test, k=10) -> float:
    from recsys_book.evaluation import evaluate

    return float(evaluate(model, train, test, n_items=model.n_items, k=k)["NDCG@10"].iloc[0])


def small_mf(**kw):
    return BiasedMF(
        **{
            "n_factors": 4,
            "epochs": 8,
            "batch_size": 128,
            "learning_rate": 0.02,
            "l2": 0.01,
            "init_std": 0.1,
            **kw,
        }
    )


def small_bpr(**kw):
    return BPR(
        **{
            "n_factors": 8,
            "epochs": 8,
            "batch_size": 128,
            "learning_rate": 0.02,
            "l2": 1e-4,
            "init_std": 0.1,
            **kw,
        }
    )


NUMPY_MODELS = {
    "Popularity": Popularity,
    "ItemKNN": lambda: ItemKNN(k=20),
    "UserKNN": lambda: UserKNN(k=20),
    "EASE": lambda: EASE(l2=10.0),
}

# ------------------------------------------------------------------ hand-checked formulas


def test_popularity_counts_interactions(tiny):
    model = Popularity().fit(tiny, 5, 6)
    np.testing.assert_array_equal(model.counts_, [0, 3, 3, 2, 2, 1])
    scores = model.score(np.array([1, 2]))
    np.testing.assert_array_equal(scores[0, 1:], scores[1, 1:])
    # user 1 has items 1, 2, 5: next most popular are 3 and 4 (tie), then nothing left
    assert set(model.recommend(np.array([1]), k=2)[0]) == {3, 4}


def test_cosine_topk_matches_dense_cosine_when_k_is_large():
    sim = cosine_topk(TINY.T, k=10).toarray()  # item-item
    expected = cosine_similarity(TINY.T)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(sim, expected, rtol=1e-6)


def test_cosine_topk_keeps_k_neighbours_and_shrinks():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 40)) < 0.3).astype(np.float32)
    sim = cosine_topk(x.T, k=3, block_size=7)  # several blocks
    assert (np.diff(sim.indptr) <= 3).all() and sim.diagonal().sum() == 0
    full = cosine_similarity(x.T)
    np.fill_diagonal(full, 0.0)
    # the kept values are each row's 3 largest
    for row in (0, 17, 39):
        kept = np.sort(sim[row].data)[::-1]
        np.testing.assert_allclose(kept, np.sort(full[row])[::-1][: len(kept)], rtol=1e-5)
    shrunk = cosine_topk(x.T, k=40, shrinkage=5.0).toarray()
    plain = cosine_topk(x.T, k=40).toarray()
    assert (shrunk <= plain + 1e-7).all() and shrunk.sum() < plain.sum()


def test_item_knn_score_is_the_neighbourhood_sum(tiny):
    model = ItemKNN(k=10).fit(tiny, 5, 6)
    sim = cosine_similarity(TINY.T)
    np.fill_diagonal(sim, 0.0)
    np.testing.assert_allclose(model.score(np.arange(1, 5))[:, 1:], TINY @ sim, rtol=1e-5)
    # k=1: each item keeps one neighbour; row j of similarity_ has at most 1 entry
    one = ItemKNN(k=1).fit(tiny, 5, 6)
    assert (np.diff(one.similarity_.indptr) <= 1).all()


def test_user_knn_score_is_the_neighbourhood_sum(tiny):
    model = UserKNN(k=10).fit(tiny, 5, 6)
    sim = cosine_similarity(TINY)
    np.fill_diagonal(sim, 0.0)
    np.testing.assert_allclose(model.score(np.arange(1, 5))[:, 1:], sim @ TINY, rtol=1e-5)


def test_ease_equals_per_item_ridge_regression_without_the_item(tiny):
    """The zero-diagonal constraint is the same as leaving item j out of its own regression."""
    lam = 2.0
    model = EASE(l2=lam).fit(tiny, 5, 6)
    b = model.B_[1:, 1:]
    np.testing.assert_allclose(np.diag(b), 0.0)
    for j in range(TINY.shape[1]):
        others = [c for c in range(TINY.shape[1]) if c != j]
        a = TINY[:, others]
        w = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ TINY[:, j])
        np.testing.assert_allclose(b[others, j], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(1, 5))[:, 1:], TINY @ b, rtol=1e-5)


# ------------------------------------------------------------------ contract, every model


@pytest.mark.parametrize("name", list(NUMPY_MODELS))
def test_numpy_model_contract(name, clusters):
    train, test, n_users, n_items = clusters
    model = NUMPY_MODELS[name]().fit(train, n_users, n_items)
    users = np.array([1, 5, 9])
    scores = model.score(users)
    assert scores.shape == (3, n_items) and scores.dtype == np.float32
    assert np.isneginf(scores[:, 0]).all() and np.isfinite(scores[:, 1:]).all()
    recs = model.recommend(users, k=10)
    assert recs.shape == (3, 10) and recs.dtype == np.int64
    seen = set(zip(train["user_idx"], train["item_idx"], strict=True))
    assert not any((u, i) in seen for u, row in zip(users, recs, strict=True) for i in row)
    assert (recs > 0).all()
    # numpy models are deterministic
    again = NUMPY_MODELS[name]().fit(train, n_users, n_items)
    np.testing.assert_array_equal(again.score(users), scores)


@pytest.fixture(scope="module")
def fitted_keras(clusters):
    train, test, n_users, n_items = clusters
    return {
        "BiasedMF": small_mf().fit(train, n_users, n_items),
        "BPR": small_bpr().fit(train, n_users, n_items),
    }


@pytest.mark.parametrize("name", ["BiasedMF", "BPR"])
def test_keras_model_contract(name, fitted_keras, clusters):
    train, _, _, n_items = clusters
    model = fitted_keras[name]
    users = np.array([2, 3])
    scores = model.score(users)
    assert scores.shape == (2, n_items) and scores.dtype == np.float32
    assert np.isneginf(scores[:, 0]).all() and np.isfinite(scores[:, 1:]).all()
    recs = model.recommend(users, k=5)
    seen = set(zip(train["user_idx"], train["item_idx"], strict=True))
    assert recs.shape == (2, 5)
    assert not any((u, i) in seen for u, row in zip(users, recs, strict=True) for i in row)
    assert len(model.history_) == model.epochs and model.fit_seconds_ > 0
    assert model.history_[-1] < model.history_[0]  # the loss went down


# ------------------------------------------------------------------ learning the planted signal


def test_personalised_models_beat_chance_and_popularity(clusters, fitted_keras):
    train, test, n_users, n_items = clusters
    pop = ndcg(Popularity().fit(train, n_users, n_items), train, test)
    # ~2 test items per user among ~50 unseen items: popularity is near chance here
    assert pop < 0.15
    for name, make in NUMPY_MODELS.items():
        if name == "Popularity":
            continue
        model = make().fit(train, n_users, n_items)
        assert ndcg(model, train, test) > pop + 0.3, name
        assert hit_rate(model, train, test) > 0.85, name
    assert ndcg(fitted_keras["BPR"], train, test) > pop + 0.3


def test_bpr_beats_random_scores_on_make_synthetic():
    frame = make_synthetic(n_users=150, n_items=120, n_interactions=4500, seed=1)
    frame = frame.assign(user_idx=frame["user_id"], item_idx=frame["item_id"])
    test = frame.sample(frac=0.2, random_state=0)
    train = frame.drop(test.index)
    model = small_bpr(epochs=5).fit(train, 151, 121)
    random_hr = hit_rate(_RandomScores(seed=0).fit(train, 151, 121), train, test)
    assert random_hr < 0.5
    assert hit_rate(model, train, test) > random_hr + 0.25


class _RandomScores(Popularity):
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def _score(self, users):
        return self.rng.random((len(users), self.n_items)).astype(np.float32)


def test_biased_mf_beats_the_global_mean_on_ratings():
    frame = make_synthetic(n_users=150, n_items=120, n_interactions=4500, seed=2)
    frame = frame.assign(user_idx=frame["user_id"], item_idx=frame["item_id"])
    test = frame.sample(frac=0.2, random_state=0)
    train = frame.drop(test.index)
    model = small_mf(epochs=10).fit(train, 151, 121)
    pred = model.predict(test["user_idx"].to_numpy(), test["item_idx"].to_numpy())
    assert pred.shape == (len(test),) and pred.dtype == np.float32
    assert pred.min() >= 1.0 and pred.max() <= 5.0  # clipped to the training range
    rmse = np.sqrt(np.mean((pred - test["rating"].to_numpy()) ** 2))
    baseline = np.sqrt(np.mean((train["rating"].mean() - test["rating"].to_numpy()) ** 2))
    assert model.global_mean_ == pytest.approx(train["rating"].mean(), rel=1e-5)
    assert rmse < 0.9 * baseline
    # score ranks by the (unclipped) predicted rating of every item
    s = model.score(test["user_idx"].to_numpy()[:5])
    np.testing.assert_allclose(
        np.clip(s[np.arange(5), test["item_idx"].to_numpy()[:5]], 1, 5), pred[:5], rtol=1e-5
    )


@pytest.mark.parametrize("make", [small_mf, small_bpr], ids=["BiasedMF", "BPR"])
def test_keras_models_are_deterministic_for_a_seed(make, clusters):
    train, _, n_users, n_items = clusters
    users = np.arange(1, 6)
    first = make(epochs=2).fit(train, n_users, n_items).score(users)
    again = make(epochs=2).fit(train, n_users, n_items).score(users)
    np.testing.assert_allclose(again, first, rtol=1e-5)
    other = make(epochs=2, seed=7).fit(train, n_users, n_items).score(users)
    assert not np.allclose(other[:, 1:], first[:, 1:])


def test_sample_triplets_draws_unseen_negatives():
    rng = np.random.default_rng(0)
    pairs = np.array([[1, 1], [1, 2], [1, 3], [2, 1], [2, 4]])
    t = sample_triplets(np.repeat(pairs, 200, axis=0), n_items=6, rng=rng)
    assert t.shape == (1000, 3) and t.dtype == np.int32
    np.testing.assert_array_equal(t[:, :2], np.repeat(pairs, 200, axis=0))
    assert set(t[t[:, 0] == 1, 2]) == {4, 5}  # user 1 saw 1, 2, 3
    assert set(t[t[:, 0] == 2, 2]) == {2, 3, 5}


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ItemKNN(k=0), "k .*positive integer"),
        (lambda: UserKNN(k=2.5), "k .*positive integer"),
        (lambda: ItemKNN(shrinkage=-1.0), "shrinkage"),
        (lambda: ItemKNN(shrinkage="10"), "shrinkage"),
        (lambda: UserKNN(block_size=0), "block_size"),
        (lambda: EASE(l2=0.0), "l2"),
        (lambda: EASE(l2=-5), "l2"),
        (lambda: EASE(l2=float("nan")), "l2"),
        (lambda: BiasedMF(l2=-0.1), "l2 must be"),
        (lambda: BiasedMF(l2_bias=-1.0), "l2_bias"),
        (lambda: BiasedMF(n_factors=0), "n_factors"),
        (lambda: BiasedMF(learning_rate=0.0), "learning_rate"),
        (lambda: BiasedMF(epochs=0), "epochs"),
        (lambda: BiasedMF(seed=-1), "seed"),
        (lambda: BPR(l2=-1e-3), "l2 must be"),
        (lambda: BPR(batch_size=0), "batch_size"),
        (lambda: BPR(n_factors=True), "n_factors"),
        (lambda: BPR(init_std=float("inf")), "init_std"),
    ],
)
def test_bad_hyper_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make", [Popularity, ItemKNN, UserKNN, EASE, BiasedMF, BPR], ids=lambda m: m.__name__
)
def test_unfitted_models_raise(make):
    with pytest.raises(RuntimeError, match="not fitted"):
        make().score(np.array([1]))
    with pytest.raises(RuntimeError, match="not fitted"):
        make().recommend(np.array([1]), k=3)


@pytest.mark.parametrize("k", [0, -3, 2.5, "10"])
def test_bad_k_in_recommend_raises(tiny, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ItemKNN().fit(tiny, 5, 6).recommend(np.array([1]), k=k)


def test_bad_users_raise(tiny):
    model = EASE(l2=1.0).fit(tiny, 5, 6)
    with pytest.raises(ValueError, match="user indices must lie in 1..4"):
        model.score(np.array([5]))
    with pytest.raises(ValueError, match="1-D array"):
        model.score(np.array([[1]]))


def test_bad_training_frames_raise(tiny):
    with pytest.raises(KeyError, match="encode raw ids"):
        Popularity().fit(pd.DataFrame({"user_id": [1], "item_id": [1]}))
    with pytest.raises(KeyError, match="'rating' column"):
        small_mf(epochs=1).fit(tiny, 5, 6)  # tiny has no ratings
    bad = tiny.assign(rating=np.float32(np.nan))
    with pytest.raises(ValueError, match="NaN"):
        small_mf(epochs=1).fit(bad, 5, 6)
    with pytest.raises(ValueError, match="two real items"):
        small_bpr(epochs=1).fit(pd.DataFrame({"user_idx": [1], "item_idx": [1]}), 2, 2)


def test_predict_validates_pairs(tiny):
    model = small_mf(epochs=1).fit(tiny.assign(rating=np.float32(4.0)), 5, 6)
    np.testing.assert_allclose(model.predict(np.array([1]), np.array([2])), [4.0], atol=1e-3)
    with pytest.raises(ValueError, match="same length"):
        model.predict(np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="item indices must lie in 1..5"):
        model.predict(np.array([1]), np.array([6]))
    with pytest.raises(ValueError, match="user indices"):
        model.predict(np.array([0]), np.array([1]))
