"""Item features, ContentBased, the hybrids (WeightedHybrid, FeatureMF) and parameter counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_book.features import (
    ItemFeatures,
    build_item_features,
    genre_multi_hot,
    hstack,
    idf,
    tag_counts,
    tfidf,
    year_buckets,
)
from recsys_book.models.base import Recommender
from recsys_book.models.content import ContentBased
from recsys_book.models.hybrid import FeatureMF, WeightedHybrid, normalize_scores
from recsys_book.models.popularity import Popularity
from recsys_book.params import ParamCount, count_params, embedding_params, mlp_params

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def tiny_items():
    """Four items (indices 1..4) in a catalogue of n_items=6 (index 5 has no metadata)."""
    return pd.DataFrame(
        {
            "item_id": [10, 20, 30, 40],
            "item_idx": np.array([1, 2, 3, 4], dtype=np.int64),
            "year": pd.array([1995, 1999, 2003, None], dtype="Int64"),
            "genres": [["Action", "Comedy"], ["Comedy"], ["(no genres listed)"], ["Drama"]],
        }
    )


@pytest.fixture(scope="module")
def planted():
    """Users who each like one genre; items of one genre each; a per-user half/half split.

    Item ``i`` (1..120) has genre ``(i - 1) % 6``; items 121..132 are cold (never
    interacted with) but have genres too. User ``u`` (1..60) likes genre ``(u - 1) % 6``
    and interacts with 10 items, 9 of their genre and 1 at random.
    """
    rng = np.random.default_rng(0)
    n_users, n_items = 61, 133
    item_genre = (np.arange(n_items) - 1) % 6
    items = pd.DataFrame(
        {
            "item_idx": np.arange(1, n_items, dtype=np.int64),
            "year": pd.array(rng.integers(1960, 2020, n_items - 1), dtype="Int64"),
            "genres": [[GENRES[g]] for g in item_genre[1:]],
        }
    )
    warm = np.arange(1, 121)
    rows = []
    for u in range(1, n_users):
        own = warm[item_genre[warm] == (u - 1) % 6]
        chosen = list(rng.choice(own, 9, replace=False)) + [int(rng.choice(warm))]
        for t, i in enumerate(dict.fromkeys(chosen)):
            rows.append((u, int(i), float(rng.integers(3, 6)), t))
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "rating", "timestamp"])
    is_test = frame.groupby("user_idx").cumcount() >= 5
    features = build_item_features(items, n_items, years=False)
    return {
        "train": frame[~is_test].reset_index(drop=True),
        "test": frame[is_test].reset_index(drop=True),
        "n_users": n_users,
        "n_items": n_items,
        "item_genre": item_genre,
        "features": features,
        "items": items,
    }


def hit_rate(model: Recommender, test: pd.DataFrame, k: int = 10) -> float:
    """Share of test users with at least one test item in their top-k."""
    users = np.unique(test["user_idx"].to_numpy())
    recs = model.recommend(users, k=k)
    truth = test.groupby("user_idx")["item_idx"].apply(set)
    return float(np.mean([len(truth[u] & set(r)) > 0 for u, r in zip(users, recs, strict=True)]))


# --------------------------------------------------------------------------- features


def test_genre_multi_hot_aligns_rows_with_item_idx(tiny_items):
    f = genre_multi_hot(tiny_items, n_items=6)
    assert f.matrix.shape == (6, 3) and f.matrix.dtype == np.float32
    assert f.names == ("genre:Action", "genre:Comedy", "genre:Drama")
    dense = f.matrix.toarray()
    np.testing.assert_array_equal(dense[1], [1, 1, 0])
    np.testing.assert_array_equal(dense[4], [0, 0, 1])
    assert dense[0].sum() == dense[3].sum() == dense[5].sum() == 0  # padding, "no genre", unknown


def test_year_buckets_decades_and_missing_years(tiny_items):
    f = year_buckets(tiny_items, n_items=6)
    assert f.names == ("year:1990s", "year:2000s")
    np.testing.assert_array_equal(
        f.matrix.toarray()[[1, 2, 3, 4]], [[1, 0], [1, 0], [0, 1], [0, 0]]
    )
    assert year_buckets(tiny_items, 6, width=5).names == ("year:1995-1999", "year:2000-2004")
    with pytest.raises(ValueError, match="width"):
        year_buckets(tiny_items, 6, width=0)


def test_tag_counts_normalises_and_filters_rare_tags():
    tags = pd.DataFrame(
        {"item_idx": [1, 1, 2, 2, 3], "tag": ["Funny ", "funny", "funny", "dark", "dark"]}
    )
    f = tag_counts(tags, n_items=4, min_items=2)
    assert f.names == ("tag:dark", "tag:funny")
    np.testing.assert_array_equal(f.matrix.toarray(), [[0, 0], [0, 2], [1, 1], [1, 0]])
    assert tag_counts(tags, n_items=4, min_items=3).n_features == 0
    with pytest.raises(ValueError, match="min_items"):
        tag_counts(tags, 4, min_items=0)


def test_tfidf_matches_scikit_learn():
    from sklearn.feature_extraction.text import TfidfTransformer

    counts = sp.csr_matrix(
        np.array([[0, 0, 0, 0], [3, 0, 1, 0], [1, 1, 0, 0], [0, 2, 1, 1]], dtype=np.float32)
    )
    f = ItemFeatures(counts, ("a", "b", "c", "d"))
    for smooth in (True, False):
        for sublinear in (True, False):
            ours = tfidf(f, smooth=smooth, sublinear_tf=sublinear).matrix.toarray()
            ref = TfidfTransformer(smooth_idf=smooth, sublinear_tf=sublinear).fit_transform(
                counts[1:]
            )
            np.testing.assert_allclose(ours[1:], ref.toarray(), rtol=1e-5, atol=1e-6)
            assert ours[0].sum() == 0


def test_idf_by_hand():
    counts = sp.csr_matrix(np.array([[0, 0], [1, 1], [1, 0], [1, 0]], dtype=np.float32))
    # N = 3 items; df = (3, 1)
    np.testing.assert_allclose(idf(counts, smooth=False), [1.0, np.log(3) + 1], rtol=1e-6)
    np.testing.assert_allclose(idf(counts), [1.0, np.log(4 / 2) + 1], rtol=1e-6)


def test_tfidf_rejects_negative_counts_and_wrong_type():
    with pytest.raises(ValueError, match="non-negative"):
        tfidf(ItemFeatures(sp.csr_matrix(np.array([[0.0], [-1.0]])), ("x",)))
    with pytest.raises(TypeError, match="ItemFeatures"):
        tfidf(np.eye(3))


def test_build_item_features_with_tags_by_item_id(tiny_items):
    tags = pd.DataFrame({"item_id": [10, 20, 20, 99], "tag": ["heist", "heist", "Heist", "gone"]})
    f = build_item_features(tiny_items, 6, tags=tags, min_tag_items=2)
    assert f.names[-1] == "tag:heist" and f.n_items == 6
    norms = np.sqrt(np.asarray(f.matrix.multiply(f.matrix).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[[1, 2, 3]], 1.0, rtol=1e-5)  # item 4 has genre only: 1 too
    assert norms[0] == 0 and norms[5] == 0
    assert f.describe(2, top=1)[0][0] == "tag:heist"  # rare and applied twice: heaviest
    assert f.select("tag").n_features == 1
    assert f.to_frame([1, 2]).shape == (2, f.n_features)
    binary = build_item_features(tiny_items, 6, weighting="binary", years=False)
    np.testing.assert_allclose(binary.matrix.toarray()[1], [2**-0.5, 2**-0.5, 0], rtol=1e-6)


def test_feature_builders_validate_inputs(tiny_items):
    with pytest.raises(KeyError, match="item_idx"):
        genre_multi_hot(tiny_items.drop(columns="item_idx"), 6)
    with pytest.raises(KeyError, match="genres"):
        genre_multi_hot(tiny_items.drop(columns="genres"), 6)
    with pytest.raises(ValueError, match=r"1\.\.3"):
        genre_multi_hot(tiny_items, 4)
    with pytest.raises(ValueError, match="n_items"):
        genre_multi_hot(tiny_items, 1)
    with pytest.raises(ValueError, match="duplicates"):
        genre_multi_hot(pd.concat([tiny_items, tiny_items]), 6)
    with pytest.raises(TypeError, match="DataFrame"):
        genre_multi_hot(tiny_items.to_dict(), 6)
    with pytest.raises(ValueError, match="at least one block"):
        build_item_features(tiny_items, 6, genres=False, years=False)
    with pytest.raises(ValueError, match="weighting"):
        build_item_features(tiny_items, 6, weighting="bm25")
    with pytest.raises(KeyError, match="kind"):
        genre_multi_hot(tiny_items, 6).select("tag")
    with pytest.raises(ValueError, match="different numbers of rows"):
        hstack(genre_multi_hot(tiny_items, 6), genre_multi_hot(tiny_items, 7))
    with pytest.raises(ValueError, match="columns"):
        ItemFeatures(sp.csr_matrix((3, 2)), ("a",))


# --------------------------------------------------------------------------- ContentBased


def test_content_based_shapes_and_cosine_range(planted):
    p = planted
    model = ContentBased(p["features"], tie_break=None).fit(p["train"], p["n_users"], p["n_items"])
    scores = model.score(np.array([1, 2, 3]))
    assert scores.shape == (3, p["n_items"]) and scores.dtype == np.float32
    assert np.isneginf(scores[:, 0]).all()
    assert np.nanmax(scores[:, 1:]) <= 1 + 1e-6 and np.nanmin(scores[:, 1:]) >= -1 - 1e-6


def test_content_based_learns_planted_genres(planted):
    p = planted
    content = ContentBased(p["features"]).fit(p["train"], p["n_users"], p["n_items"])
    popular = Popularity().fit(p["train"], p["n_users"], p["n_items"])
    hr_content, hr_pop = hit_rate(content, p["test"]), hit_rate(popular, p["test"])
    assert hr_content > 0.9 and hr_content > hr_pop + 0.3
    # the top item of every user has the user's genre
    users = np.arange(1, p["n_users"])
    top = content.recommend(users, k=1)[:, 0]
    assert np.mean(p["item_genre"][top] == (users - 1) % 6) > 0.95


def test_content_based_scores_cold_items(planted):
    p = planted
    model = ContentBased(p["features"]).fit(p["train"], p["n_users"], p["n_items"])
    cold = np.arange(121, 133)
    assert p["train"]["item_idx"].isin(cold).sum() == 0
    users = np.arange(1, p["n_users"])
    s = model.score(users)[:, cold]
    own = p["item_genre"][cold][None, :] == ((users - 1) % 6)[:, None]
    assert s[own].min() > 0.5 and s[own].mean() > s[~own].mean() + 0.5


def test_content_based_recommend_excludes_seen(planted):
    p = planted
    model = ContentBased(p["features"]).fit(p["train"], p["n_users"], p["n_items"])
    users = np.arange(1, p["n_users"])
    recs = model.recommend(users, k=20)
    seen = p["train"].groupby("user_idx")["item_idx"].apply(set)
    assert all(not (set(r) & seen[u]) for u, r in zip(users, recs, strict=True))
    assert 0 not in recs


def test_content_based_weightings():
    # items 1, 2: genre A; items 3, 4: genre B. User 1 loves A (5 stars) and hates B (1 star).
    x = np.array([[0, 0], [1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    train = pd.DataFrame({"user_idx": [1, 1], "item_idx": [1, 3], "rating": [5.0, 1.0]})
    s_rating = ContentBased(x, "rating", tie_break=None).fit(train, 2, 5).score(np.array([1]))[0]
    s_center = ContentBased(x, "centered", tie_break=None).fit(train, 2, 5).score(np.array([1]))[0]
    s_liked = ContentBased(x, "binary", min_rating=4, tie_break=None).fit(train, 2, 5)
    assert s_rating[4] > 0  # the disliked genre still pulls the profile
    assert s_center[4] < 0 < s_center[2]  # centred: pushed away
    np.testing.assert_allclose(s_liked.score(np.array([1]))[0][1:], [1, 1, 0, 0], atol=1e-6)


def test_content_based_tie_break_orders_identical_items_by_popularity():
    x = np.array([[0], [1], [1], [1]], dtype=np.float32)  # three identical items
    train = pd.DataFrame({"user_idx": [1, 2, 3, 3], "item_idx": [1, 3, 3, 2]})
    model = ContentBased(x, "binary").fit(train, 4, 4)
    s = model.score(np.array([1]))[0]
    assert s[3] > s[2] > s[1] and s[3] - s[1] <= 1e-4


def test_content_based_explain_splits_the_cosine(planted):
    p = planted
    model = ContentBased(p["features"], tie_break=None).fit(p["train"], p["n_users"], p["n_items"])
    why = model.explain(1, 121, top=50)
    np.testing.assert_allclose(
        why["contribution"].sum(), model.score(np.array([1]))[0, 121], rtol=1e-5
    )
    assert why["feature"].iloc[0] == "genre:Action"  # user 1 likes genre 0; item 121 is genre 0
    with pytest.raises(ValueError, match="item"):
        model.explain(1, 0)
    with pytest.raises(ValueError, match="user"):
        model.explain(99, 5)


def test_content_based_validates(planted):
    p = planted
    with pytest.raises(ValueError, match="weighting"):
        ContentBased(p["features"], weighting="tfidf")
    with pytest.raises(ValueError, match="tie_break"):
        ContentBased(p["features"], tie_break="random")
    with pytest.raises(ValueError, match="min_rating"):
        ContentBased(p["features"], min_rating=float("nan"))
    with pytest.raises(TypeError, match="item_features"):
        ContentBased("genres")
    with pytest.raises(ValueError, match="rows but n_items"):
        ContentBased(p["features"]).fit(p["train"], p["n_users"], p["n_items"] + 1)
    with pytest.raises(KeyError, match="rating"):
        ContentBased(p["features"]).fit(p["train"].drop(columns="rating"), 61, 133)
    with pytest.raises(RuntimeError, match="not fitted"):
        ContentBased(p["features"]).score(np.array([1]))


# --------------------------------------------------------------------------- WeightedHybrid


def test_normalize_scores_methods():
    s = np.array([[-np.inf, 1.0, 2.0, 3.0], [-np.inf, 5.0, 5.0, 5.0]], dtype=np.float32)
    z = normalize_scores(s, "zscore")
    np.testing.assert_allclose(z[0, 1:], [-1.2247449, 0, 1.2247449], rtol=1e-5)
    assert z[0, 0] == 0 and (z[1] == 0).all()  # padding and a row without spread -> 0
    np.testing.assert_allclose(normalize_scores(s, "minmax")[0], [0, 0, 0.5, 1])
    np.testing.assert_allclose(normalize_scores(s, "rank")[0], [0, 0, 0.5, 1])
    np.testing.assert_allclose(normalize_scores(s, "none")[0], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="method"):
        normalize_scores(s, "softmax")


def test_weighted_hybrid_blends_normalised_scores(planted):
    p = planted
    args = (p["train"], p["n_users"], p["n_items"])
    content = ContentBased(p["features"]).fit(*args)
    popular = Popularity().fit(*args)
    users = np.arange(1, 11)
    only_content = WeightedHybrid([content, popular], [1, 0], refit=False).fit(*args)
    np.testing.assert_allclose(
        only_content.score(users)[:, 1:], normalize_scores(content.score(users))[:, 1:], atol=1e-6
    )
    blend = WeightedHybrid([ContentBased(p["features"]), Popularity()], [0.7, 0.3]).fit(*args)
    expected = 0.7 * normalize_scores(content.score(users)) + 0.3 * normalize_scores(
        popular.score(users)
    )
    np.testing.assert_allclose(blend.score(users)[:, 1:], expected[:, 1:], atol=1e-5)
    assert hit_rate(blend, p["test"]) > hit_rate(popular, p["test"])


def test_weighted_hybrid_validates(planted):
    p = planted
    c = ContentBased(p["features"])
    with pytest.raises(ValueError, match="at least two"):
        WeightedHybrid([c])
    with pytest.raises(TypeError, match="Recommender"):
        WeightedHybrid([c, "popularity"])
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("inf")]):
        with pytest.raises(ValueError, match="weights"):
            WeightedHybrid([c, Popularity()], bad)
    with pytest.raises(ValueError, match="normalize"):
        WeightedHybrid([c, Popularity()], normalize="l2")
    with pytest.raises(ValueError, match="not fitted"):
        WeightedHybrid([c, Popularity()], refit=False).fit(p["train"], 61, 133)
    small = Popularity().fit(p["train"], 61, 140)
    with pytest.raises(ValueError, match="n_items=140"):
        WeightedHybrid([c.fit(p["train"], 61, 133), small], refit=False).fit(p["train"], 61, 133)


# --------------------------------------------------------------------------- FeatureMF


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_feature_mf_learns_and_scores_cold_items(planted, loss):
    p = planted
    epochs = 15 if loss == "softmax" else 30
    model = FeatureMF(
        p["features"], dim=8, loss=loss, epochs=epochs, batch_size=64, learning_rate=0.02
    ).fit(p["train"], p["n_users"], p["n_items"])
    assert model.history_[-1] < model.history_[0]
    assert hit_rate(model, p["test"]) > hit_rate(Popularity().fit(p["train"], 61, 133), p["test"])
    # cold items have no trained ID part: their vector is exactly the feature part
    net = model.model_
    feat = p["features"].matrix.toarray() @ np.asarray(net.feature_embedding.embeddings)
    cold = np.arange(121, 133)
    np.testing.assert_allclose(model.item_factors_[cold], feat[cold], atol=1e-5)
    users = np.arange(1, p["n_users"])
    s = model.score(users)[:, cold]
    own = p["item_genre"][cold][None, :] == ((users - 1) % 6)[:, None]
    assert s[own].mean() > s[~own].mean()


def test_feature_mf_validates(planted):
    p = planted
    with pytest.raises(ValueError, match="loss"):
        FeatureMF(p["features"], loss="mse")
    with pytest.raises(ValueError, match="dim"):
        FeatureMF(p["features"], dim=0)
    with pytest.raises(ValueError, match="learning_rate"):
        FeatureMF(p["features"], learning_rate=0)
    with pytest.raises(ValueError, match="too large"):
        FeatureMF(sp.csr_matrix((100_000, 1_000), dtype=np.float32))
    with pytest.raises(ValueError, match="rows but n_items"):
        FeatureMF(p["features"], epochs=1).fit(p["train"], 61, 140)


# --------------------------------------------------------------------------- params


def test_count_params_splits_embeddings_from_dense_layers():
    import keras

    inputs = keras.Input((1,), dtype="int32")
    x = keras.layers.Flatten()(keras.layers.Embedding(100, 16)(inputs))
    x = keras.layers.Dense(8, activation="relu")(x)
    x = keras.layers.LayerNormalization()(x)
    out = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, out)
    c = count_params(model)
    assert c.embedding == embedding_params(100, 16) == 1600
    assert c.dense == mlp_params([16, 8, 1]) == 16 * 8 + 8 + 8 + 1
    assert c.other == 2 * 8  # LayerNormalization's scale and shift
    assert c.total == model.count_params()
    assert c.as_dict()["embedding_share"] == round(1600 / c.total, 4)


def test_count_params_of_recommenders(planted):
    p = planted
    mf = FeatureMF(p["features"], dim=4, epochs=1).fit(p["train"], 61, 133)
    n_feat = p["features"].n_features
    c = count_params(mf)
    assert c == ParamCount(
        embedding=embedding_params([61, 133, n_feat], 4) + 133 + n_feat,
        dense=0,
        other=0,
        non_trainable=133 * n_feat + 133,
    )
    cb = ContentBased(p["features"]).fit(p["train"], 61, 133)
    assert count_params(cb).other == cb.item_vectors_.nnz + cb.profiles_.nnz + 133
    blend = WeightedHybrid([cb, mf], refit=False).fit(p["train"], 61, 133)
    assert count_params(blend).total == count_params(cb).total + c.total


def test_count_params_validates():
    import keras

    with pytest.raises(ValueError, match="not built"):
        count_params(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(TypeError, match="Recommender"):
        count_params(np.zeros(3))
    with pytest.raises(ValueError, match="not fitted"):
        count_params(Popularity())
    with pytest.raises(ValueError, match="dim"):
        embedding_params(10, 0)
    with pytest.raises(ValueError, match="widths"):
        mlp_params([8])
