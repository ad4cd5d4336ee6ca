"""recsys_book.models.base: the one interface every recommender answers to."""

import numpy as np
import pandas as pd
import pytest

from recsys_book.models.base import Recommender, check_interactions, interaction_matrix


class FixedScores(Recommender):
    """Scores item j as j (higher index = better), for every user."""

    def _fit(self, train):
        pass

    def _score(self, users):
        return np.tile(np.arange(self.n_items, dtype=np.float32), (len(users), 1))


@pytest.fixture
def train():
    return pd.DataFrame({"user_idx": [1, 1, 2], "item_idx": [5, 4, 1]})


def test_recommend_is_best_first_without_seen_items(train):
    model = FixedScores().fit(train, n_users=3, n_items=6)
    recs = model.recommend(np.array([1, 2]), k=3)
    assert recs.shape == (2, 3) and recs.dtype == np.int64
    np.testing.assert_array_equal(recs[0], [3, 2, 1])  # 5 and 4 were seen by user 1
    np.testing.assert_array_equal(recs[1], [5, 4, 3])
    assert 0 not in recs


def test_recommend_can_keep_seen_items(train):
    model = FixedScores().fit(train, n_users=3, n_items=6)
    np.testing.assert_array_equal(model.recommend(np.array([1]), k=2, exclude_seen=False), [[5, 4]])


def test_score_masks_padding_column(train):
    scores = FixedScores().fit(train, n_users=3, n_items=6).score(np.array([1]))
    assert scores.shape == (1, 6) and scores.dtype == np.float32
    assert np.isneginf(scores[0, 0])


def test_sizes_default_to_max_index_plus_one(train):
    model = FixedScores().fit(train)
    assert (model.n_users, model.n_items) == (3, 6)


def test_interaction_matrix_counts_and_values():
    frame = pd.DataFrame({"user_idx": [1, 1, 2], "item_idx": [2, 2, 3], "rating": [4.0, 5.0, 1.0]})
    m = interaction_matrix(frame, 3, 4)
    assert m.shape == (3, 4) and m[1, 2] == 2.0 and m[2, 3] == 1.0
    assert interaction_matrix(frame, 3, 4, values="rating")[1, 2] == 9.0
    with pytest.raises(ValueError, match="exceed the vocabulary"):
        interaction_matrix(frame, 2, 4)


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        ([1, 2], TypeError, "DataFrame"),
        (pd.DataFrame({"user_id": [1], "item_id": [1]}), KeyError, "encode_ids"),
        (pd.DataFrame({"user_idx": [], "item_idx": []}, dtype=np.int64), ValueError, "empty"),
        (pd.DataFrame({"user_idx": [1.0], "item_idx": [1]}), TypeError, "integers"),
        (pd.DataFrame({"user_idx": [0], "item_idx": [1]}), ValueError, "padding"),
    ],
)
def test_check_interactions_errors(frame, error, match):
    with pytest.raises(error, match=match):
        check_interactions(frame)


def test_bad_calls_name_the_problem(train):
    with pytest.raises(RuntimeError, match="not fitted"):
        FixedScores().score(np.array([1]))
    model = FixedScores().fit(train, n_users=3, n_items=6)
    with pytest.raises(ValueError, match="positive integer"):
        model.recommend(np.array([1]), k=0)
    with pytest.raises(ValueError, match="1..2"):
        model.score(np.array([3]))
    with pytest.raises(ValueError, match="1-D array of integer"):
        model.score(np.array([[1]]))
