"""recsys_book.preprocessing: ids, filters, splits, sequences and negatives keep their promises."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_book import preprocessing as P


def frame_of(rows) -> pd.DataFrame:
    """A ratings frame with the data module's dtypes from ``(user, item, rating, time)`` rows."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return frame.astype(
        {"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"}
    )


def random_frame(n_users=60, n_items=40, n=1500, seed=0, n_times=300) -> pd.DataFrame:
    """Unique random (user, item) pairs with raw ids that are not 1..n and many tied timestamps."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    return frame_of(
        {
            "user_id": 1000 + 7 * (pairs // n_items),
            "item_id": 50 + 3 * (pairs % n_items),
            "rating": rng.integers(1, 6, size=n),
            "timestamp": 10**9 + 60 * rng.integers(0, n_times, size=n),
        }
    )


@pytest.fixture
def encoded() -> pd.DataFrame:
    return P.encode_ids(random_frame())[0]


# --------------------------------------------------------------------------- validation


def test_validate_accepts_a_clean_frame():
    P.validate_interactions(random_frame())


@pytest.mark.parametrize(
    ("frame", "error", "words"),
    [
        (frame_of([]), ValueError, "empty"),
        (frame_of([(1, 1, 4.0, 5)]).drop(columns="item_id"), KeyError, "item_id"),
        (frame_of([(1, 1, 4.0, 5), (1, 2, np.nan, 6)]), ValueError, "NaN"),
        (frame_of([(1, 1, 4.0, 5), (1, 2, np.inf, 6)]), ValueError, "infinite"),
        (frame_of([(1, 1, 4.0, 5)]).astype({"user_id": "float64"}), TypeError, "integers"),
        (frame_of([(1, 1, 4.0, 5)]).astype({"item_id": "str"}), TypeError, "factorize"),
        (frame_of([(1, 1, 4.0, 5)]).astype({"timestamp": "float64"}), TypeError, "unix seconds"),
        (frame_of([(1, 1, 4.0, 5)]).astype({"rating": "str"}), TypeError, "numeric"),
        (frame_of([(1, 1, 4.0, 5)]).assign(user_idx=0, item_idx=1), ValueError, "padding"),
        ("not a frame", TypeError, "DataFrame"),
    ],
)
def test_validate_names_the_problem(frame, error, words):
    with pytest.raises(error, match=words):
        P.validate_interactions(frame)


def test_validate_reports_missing_ids():
    frame = pd.DataFrame({"user_id": [1.0, np.nan], "item_id": [1, 2]})
    with pytest.raises(ValueError, match=r"user_id.*1 missing.*dropna"):
        P.validate_interactions(frame)


def test_validate_counts_duplicates_and_names_the_fix():
    frame = frame_of([(1, 1, 4.0, 5), (1, 1, 3.0, 6), (1, 1, 2.0, 7), (2, 1, 5.0, 8)])
    with pytest.raises(ValueError, match=r"2 duplicate .* e\.g\. \(1, 1\).*deduplicate"):
        P.validate_interactions(frame)
    P.validate_interactions(frame, allow_duplicates=True)


def test_missing_encoded_columns_point_to_encode_ids():
    with pytest.raises(KeyError, match="encode_ids"):
        P.validate_interactions(random_frame(), required=("user_idx", "item_idx"))


def test_deduplicate_keeps_the_latest_or_earliest_in_time():
    # rows out of time order: the latest (1, 1) row is the first one
    frame = frame_of([(1, 1, 5.0, 9), (1, 1, 3.0, 2), (2, 2, 4.0, 1), (1, 1, 1.0, 9)])
    last = P.deduplicate(frame, keep="last")
    np.testing.assert_array_equal(last["rating"], [4.0, 1.0])  # ties at t=9: later row wins
    assert list(last.index) == [2, 3]  # original order and labels
    first = P.deduplicate(frame, keep="first")
    np.testing.assert_array_equal(first["rating"], [3.0, 4.0])
    P.validate_interactions(last)
    with pytest.raises(ValueError, match="keep"):
        P.deduplicate(frame, keep="middle")


# --------------------------------------------------------------------------- ids


def test_encoding_round_trips_and_reserves_zero():
    frame = random_frame()
    encoded, encoder = P.encode_ids(frame)
    assert encoded["user_idx"].dtype == np.int64 and encoded["item_idx"].dtype == np.int64
    assert encoder.n_users == frame["user_id"].nunique() + 1
    assert encoder.n_items == frame["item_id"].nunique() + 1
    # contiguous 1..n-1, 0 never used
    assert set(encoded["user_idx"]) == set(range(1, encoder.n_users))
    assert set(encoded["item_idx"]) == set(range(1, encoder.n_items))
    np.testing.assert_array_equal(encoder.users_to_raw(encoded["user_idx"]), frame["user_id"])
    np.testing.assert_array_equal(encoder.items_to_raw(encoded["item_idx"]), frame["item_id"])
    np.testing.assert_array_equal(encoder.users_to_idx(frame["user_id"]), encoded["user_idx"])
    # the order of raw ids is kept
    by_raw = encoded.sort_values("user_id")["user_idx"].to_numpy()
    assert (np.diff(by_raw) >= 0).all()
    # the input is untouched, the rows are the same
    assert "user_idx" not in frame.columns
    pd.testing.assert_frame_equal(encoded[frame.columns], frame)


def test_encoder_is_immutable():
    _, encoder = P.encode_ids(random_frame())
    with pytest.raises(dataclasses.FrozenInstanceError):
        encoder.user_ids = np.arange(3)
    with pytest.raises(ValueError):
        encoder.item_ids[0] = 7
    assert repr(encoder) == f"IdEncoder(n_users={encoder.n_users}, n_items={encoder.n_items})"


def test_items_frame_gives_cold_items_an_index():
    ratings = frame_of([(5, 20, 4.0, 1), (6, 10, 3.0, 2)])
    items = pd.DataFrame({"item_id": [30, 10, 20, 40]})
    encoded, encoder = P.encode_ids(ratings, items)
    assert encoder.n_items == 5
    np.testing.assert_array_equal(encoded["item_idx"], [2, 1])
    np.testing.assert_array_equal(encoder.items_to_idx([30, 40]), [3, 4])
    with pytest.raises(KeyError, match=r"missing from the items frame: 99"):
        P.encode_ids(frame_of([(5, 99, 4.0, 1)]), items)


def test_unknown_ids_raise_or_are_dropped():
    _, encoder = P.encode_ids(frame_of([(1, 1, 4.0, 1), (2, 2, 4.0, 2)]))
    new = frame_of([(1, 2, 4.0, 3), (3, 1, 4.0, 4), (2, 9, 4.0, 5)])
    with pytest.raises(KeyError, match=r"1 user id\(s\) unknown.*3.*unknown='drop'"):
        encoder.transform(new)
    kept = encoder.transform(new, unknown="drop")
    assert list(kept.index) == [0]
    np.testing.assert_array_equal(kept[["user_idx", "item_idx"]].to_numpy(), [[1, 2]])
    with pytest.raises(ValueError, match="unknown must be"):
        encoder.transform(new, unknown="ignore")
    with pytest.raises(KeyError, match="item id"):
        encoder.items_to_idx([9])
    with pytest.raises(ValueError, match="padding"):
        encoder.users_to_raw([0])
    with pytest.raises(ValueError, match=r"1\.\.2"):
        encoder.items_to_raw([3])


def test_movielens_100k_ids_map_to_themselves(shared_data):
    data = pytest.importorskip("recsys_book.data")
    ratings = data.load_movielens("ml-100k").ratings
    encoded, encoder = P.encode_ids(ratings)
    assert (encoder.n_users, encoder.n_items) == (944, 1683)
    assert (encoded["user_idx"] == encoded["user_id"]).all()
    assert (encoded["item_idx"] == encoded["item_id"]).all()


# --------------------------------------------------------------------------- filters


def test_kcore_iterates_until_every_user_and_item_has_enough():
    # item 3 is rated twice; once it goes, user 2 has one rating left and goes too,
    # which leaves item 4 with one rating, so it goes: three rounds.
    rows = [(1, 1, 4, 1), (1, 2, 4, 2), (1, 4, 4, 3), (2, 3, 4, 4), (2, 4, 4, 5), (3, 1, 4, 6)]
    rows += [(3, 2, 4, 7), (4, 3, 4, 8)]
    out = P.kcore_filter(frame_of(rows), min_user_interactions=2, min_item_interactions=2)
    assert sorted(zip(out["user_id"], out["item_id"], strict=True)) == [
        (1, 1),
        (1, 2),
        (3, 1),
        (3, 2),
    ]


def test_kcore_result_satisfies_the_thresholds():
    frame = random_frame(n_users=100, n_items=80, n=2000, seed=3)
    out = P.kcore_filter(frame, 14, 19)
    assert 0 < len(out) < len(frame)
    assert out["user_id"].value_counts().min() >= 14
    assert out["item_id"].value_counts().min() >= 19
    # the same rows as a plain pandas loop (the largest such subset is unique)
    ref = frame
    while True:
        ok = ref["user_id"].map(ref["user_id"].value_counts()).ge(14) & ref["item_id"].map(
            ref["item_id"].value_counts()
        ).ge(19)
        if ok.all():
            break
        ref = ref[ok]
    pd.testing.assert_frame_equal(out, ref)


@pytest.mark.parametrize(("k_user", "k_item", "error"), [(0, 5, ValueError), (5, -1, ValueError)])
def test_kcore_rejects_non_positive_thresholds(k_user, k_item, error):
    with pytest.raises(error, match="positive integer"):
        P.kcore_filter(random_frame(), k_user, k_item)


def test_kcore_rejects_non_integer_thresholds_and_empty_results():
    with pytest.raises(TypeError, match="positive integer"):
        P.kcore_filter(random_frame(), 2.5, 5)
    with pytest.raises(ValueError, match="no interactions survive"):
        P.kcore_filter(random_frame(), 1000, 1)


def test_to_implicit_keeps_high_ratings():
    frame = random_frame()
    out = P.to_implicit(frame, min_rating=4.0)
    assert len(out) == (frame["rating"] >= 4).sum() and (out["rating"] >= 4).all()
    assert list(out.columns) == list(frame.columns)
    for bad in (6.0, 0.5, "4"):
        with pytest.raises(ValueError, match=r"observed rating scale \[1, 5\]"):
            P.to_implicit(frame, min_rating=bad)
    with pytest.raises(KeyError, match="rating"):
        P.to_implicit(frame.drop(columns="rating"))


# --------------------------------------------------------------------------- temporal split


def assert_partition(split: P.Split, frame: pd.DataFrame, removed: int = 0) -> None:
    labels = [part.index for part in split.parts().values()]
    total = sum(len(index) for index in labels)
    assert total + removed == len(frame)
    assert len(labels[0].append(labels[1:]).unique()) == total  # no row in two parts


def test_temporal_split_never_trains_on_the_future(encoded):
    split = P.temporal_split(encoded, 0.2, remove_cold=False)
    assert split.train["timestamp"].max() < split.test["timestamp"].min()
    assert abs(len(split.test) / len(encoded) - 0.2) < 0.02
    assert_partition(split, encoded)
    assert split.validation is None and split.cold_removed == {}
    assert (split.n_users, split.n_items) == (
        encoded["user_idx"].max() + 1,
        encoded["item_idx"].max() + 1,
    )


def test_temporal_split_keeps_tied_timestamps_together():
    # 10 rows; target test size 2, but rows 6..9 share one timestamp: the cut cannot
    # fall inside that group, so the test is either those four rows or a later group.
    times = [1, 2, 3, 4, 5, 6, 7, 7, 7, 7]
    frame = frame_of([(u, u, 4.0, t) for u, t in zip(range(1, 11), times, strict=True)])
    frame, _ = P.encode_ids(frame)
    split = P.temporal_split(frame, 0.2, remove_cold=False)
    assert split.train["timestamp"].max() < split.test["timestamp"].min()
    assert set(split.test["timestamp"]) == {7} and len(split.test) == 4
    # the cut is the distinct time whose test share is closest to the target (5 rows)
    closer = P.temporal_split(frame, 0.5, remove_cold=False)
    assert len(closer.test) == 5 and closer.test["timestamp"].min() == 6


def test_temporal_split_with_validation_is_ordered_in_time(encoded):
    split = P.temporal_split(encoded, 0.2, 0.1, remove_cold=False)
    assert split.train["timestamp"].max() < split.validation["timestamp"].min()
    assert split.validation["timestamp"].max() < split.test["timestamp"].min()
    assert abs(len(split.validation) / len(encoded) - 0.1) < 0.02
    assert_partition(split, encoded)
    assert list(split.summary().index) == ["train", "validation", "test"]


def test_temporal_split_removes_cold_users_and_items():
    train_rows = [(1, 1, 4, 1), (2, 2, 4, 2), (1, 2, 4, 3), (2, 3, 4, 4)]
    # test (t >= 5): item 4 is cold, user 3 is cold, the other two are warm
    test_rows = [(1, 4, 4, 5), (3, 1, 4, 6), (2, 1, 4, 7), (1, 3, 4, 8)]
    frame = frame_of(train_rows + test_rows)
    encoded, _ = P.encode_ids(frame)
    split = P.temporal_split(encoded, 0.5)
    # test = t >= 5: (1,4) cold item, (3,1) cold user, (2,1) and (1,3) warm
    assert split.cold_removed == {"test": 2}
    assert sorted(zip(split.test["user_id"], split.test["item_id"], strict=True)) == [
        (1, 3),
        (2, 1),
    ]
    assert "2 test rows of users/items unseen in training removed" in split.protocol
    assert_partition(split, encoded, removed=2)
    kept = P.temporal_split(encoded, 0.5, remove_cold=False)
    assert len(kept.test) == 4 and "cold users/items kept" in kept.protocol


@pytest.mark.parametrize(
    ("test_fraction", "validation_fraction", "words"),
    [
        (0.0, 0.0, "test_fraction"),
        (1.0, 0.0, "test_fraction"),
        (-0.1, 0.0, "test_fraction"),
        (True, 0.0, "test_fraction"),
        ("0.2", 0.0, "test_fraction"),
        (0.2, -0.1, "validation_fraction"),
        (0.6, 0.5, "leaves nothing to train on"),
    ],
)
def test_temporal_split_rejects_bad_fractions(encoded, test_fraction, validation_fraction, words):
    with pytest.raises(ValueError, match=words):
        P.temporal_split(encoded, test_fraction, validation_fraction)


def test_temporal_split_errors(encoded):
    with pytest.raises(KeyError, match="encode_ids"):
        P.temporal_split(random_frame())
    with pytest.raises(KeyError, match="timestamp"):
        P.temporal_split(encoded.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="distinct timestamp"):
        P.temporal_split(encoded.assign(timestamp=7))
    with pytest.raises(ValueError, match="n_items=3 is too small"):
        P.temporal_split(encoded, n_items=3)
    assert P.temporal_split(encoded, n_items=500).n_items == 500


# --------------------------------------------------------------------------- leave-one-out


def test_leave_one_out_holds_out_each_users_last_items(encoded):
    split = P.leave_one_out_split(encoded)
    ordered = encoded.sort_values(["user_idx", "timestamp"], kind="stable")
    last = ordered.groupby("user_idx").tail(1)
    second = ordered.drop(last.index).groupby("user_idx").tail(1)
    assert sorted(split.test.index) == sorted(last.index)
    assert sorted(split.validation.index) == sorted(second.index)
    assert split.test["user_idx"].is_unique and split.validation["user_idx"].is_unique
    assert_partition(split, encoded)
    # per user, train <= validation <= test in time
    t = {name: part.groupby("user_idx")["timestamp"] for name, part in split.parts().items()}
    assert (t["train"].max() <= t["validation"].max().loc[t["train"].max().index]).all()
    assert (t["validation"].max() <= t["test"].max()).all()


def test_leave_one_out_breaks_ties_by_row_order():
    frame = frame_of([(1, 5, 4, 10), (1, 6, 4, 10), (1, 7, 4, 10), (1, 8, 4, 3)])
    encoded, _ = P.encode_ids(frame)
    split = P.leave_one_out_split(encoded)
    assert split.test["item_id"].tolist() == [7]
    assert split.validation["item_id"].tolist() == [6]
    assert split.train["item_id"].tolist() == [5, 8]
    no_val = P.leave_one_out_split(encoded, validation=False)
    assert no_val.validation is None and no_val.test["item_id"].tolist() == [7]
    assert len(no_val.train) == 3


def test_leave_one_out_rejects_or_drops_short_users():
    frame = frame_of([(1, 1, 4, 1), (1, 2, 4, 2), (1, 3, 4, 3), (2, 1, 4, 1), (2, 2, 4, 2)])
    encoded, _ = P.encode_ids(frame)
    with pytest.raises(ValueError, match=r"1 user\(s\) have fewer than 3.*drop_short_users=True"):
        P.leave_one_out_split(encoded)
    split = P.leave_one_out_split(encoded, drop_short_users=True)
    assert set(split.train["user_id"]) == {1} and "1 users with fewer than 3" in split.protocol
    assert len(P.leave_one_out_split(encoded, validation=False).test) == 2


# --------------------------------------------------------------------------- random split


def test_random_split_is_deterministic_per_seed(encoded):
    a = P.random_split(encoded, seed=1)
    b = P.random_split(encoded, seed=1)
    c = P.random_split(encoded, seed=2)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test.index.equals(c.test.index)
    assert "random" in a.protocol and "leaky in time" in a.protocol


def test_random_split_is_stratified_by_user(encoded):
    lonely = encoded.iloc[:1].assign(user_id=-1, user_idx=encoded["user_idx"].max() + 1)
    frame = pd.concat([encoded, lonely], ignore_index=True)
    split = P.random_split(frame, 0.25)
    per_user = frame.groupby("user_idx").size()
    in_test = split.test.groupby("user_idx").size().reindex(per_user.index, fill_value=0)
    expected = np.minimum(np.floor(0.25 * per_user + 0.5), per_user - 1)
    np.testing.assert_array_equal(in_test, expected)
    assert set(split.train["user_idx"]) == set(frame["user_idx"])  # every user in train
    assert in_test.iloc[-1] == 0  # the one-interaction user stays in train
    assert_partition(split, frame)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.25])
def test_random_split_rejects_bad_fractions(encoded, bad):
    with pytest.raises(ValueError, match="test_fraction"):
        P.random_split(encoded, bad)


# --------------------------------------------------------------------------- sequences


def test_sequences_are_left_padded_truncated_and_in_time_order():
    rows = [(1, 10, 4, 5), (1, 11, 4, 1), (1, 12, 4, 3), (1, 13, 4, 3), (3, 20, 4, 9)]
    rows += [(1, 14, 4, 8)]
    encoded, encoder = P.encode_ids(frame_of(rows))
    seqs = P.build_sequences(encoded, max_len=4, n_users=4)
    assert seqs.shape == (4, 4) and seqs.dtype == np.int64
    raw = {u: encoder.items_to_raw(seqs[u][seqs[u] > 0]).tolist() for u in (1, 2)}
    # user 1 in time order: 11 (t=1), 12 and 13 (t=3, row order), 10, 14; truncated to 4
    assert raw[1] == [12, 13, 10, 14]
    assert seqs[2, :3].tolist() == [0, 0, 0] and raw[2] == [20]
    assert (seqs[0] == 0).all() and (seqs[3] == 0).all()  # padding user, user without data
    longer = P.build_sequences(encoded, max_len=7)
    assert longer.shape == (3, 7) and longer[1, :2].tolist() == [0, 0]


def test_sequences_allow_repeated_items_and_check_arguments(encoded):
    repeat = pd.concat([encoded.iloc[:1], encoded.iloc[:1].assign(timestamp=2 * 10**9)])
    assert (
        P.build_sequences(repeat, 3)[repeat["user_idx"].iloc[0]].tolist()[1:]
        == [repeat["item_idx"].iloc[0]] * 2
    )
    with pytest.raises(ValueError, match="max_len"):
        P.build_sequences(encoded, 0)
    with pytest.raises(ValueError, match="n_users=2 is too small"):
        P.build_sequences(encoded, 5, n_users=2)


def test_shifted_sequences_pair_each_item_with_the_next():
    seqs = np.array([[0, 0, 3, 4, 5], [0, 0, 0, 0, 9], [1, 2, 3, 4, 5]])
    inputs, targets = P.shifted_sequences(seqs)
    np.testing.assert_array_equal(inputs, [[0, 0, 3, 4], [0, 0, 0, 0], [1, 2, 3, 4]])
    np.testing.assert_array_equal(targets, [[0, 0, 4, 5], [0, 0, 0, 0], [2, 3, 4, 5]])
    with pytest.raises(ValueError, match="at least 2 columns"):
        P.shifted_sequences(seqs[:, :1])
    with pytest.raises(TypeError, match="integer"):
        P.shifted_sequences(seqs.astype(float))


# --------------------------------------------------------------------------- negatives


def seen_matrix(frame: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    ones = np.ones(len(frame), dtype=np.float32)
    return sp.csr_matrix((ones, (frame["user_idx"], frame["item_idx"])), shape=(n_users, n_items))


def test_negatives_are_unseen_distinct_and_never_padding(encoded):
    n_users, n_items = encoded["user_idx"].max() + 1, encoded["item_idx"].max() + 1
    seen = seen_matrix(encoded, n_users, n_items)
    users = np.repeat(np.arange(1, n_users), 3)
    neg = P.sample_negatives(users, 8, seen, n_items, seed=3)
    assert neg.shape == (len(users), 8) and neg.dtype == np.int64
    assert neg.min() >= 1 and neg.max() < n_items
    assert not seen[np.repeat(users, 8), neg.ravel()].any()
    assert (np.diff(np.sort(neg, axis=1), axis=1) > 0).all()  # distinct within each row
    np.testing.assert_array_equal(neg, P.sample_negatives(users, 8, seen, n_items, seed=3))
    assert not np.array_equal(neg, P.sample_negatives(users, 8, seen, n_items, seed=4))


def test_negatives_fill_users_who_have_seen_almost_everything():
    # user 1 has seen items 1..45 of 49: exactly items 46..49 are left
    n_items = 50
    seen = sp.csr_matrix((np.ones(45), (np.ones(45, int), np.arange(1, 46))), shape=(3, n_items))
    for strategy, counts in (("uniform", None), ("popularity", np.arange(n_items))):
        neg = P.sample_negatives(
            [1, 2], 4, seen, n_items, strategy=strategy, item_counts=counts, seed=0, max_rounds=2
        )
        assert sorted(neg[0]) == [46, 47, 48, 49]
        assert len(set(neg[1])) == 4 and neg[1].min() >= 1
    with pytest.raises(ValueError, match=r"1 user\(s\) have fewer than n_negatives=5.*user_idx 1"):
        P.sample_negatives([1, 2], 5, seen, n_items)


def test_popularity_strategy_favours_popular_items():
    n_users, n_items = 201, 101
    seen = sp.csr_matrix((n_users, n_items))
    counts = np.arange(n_items) ** 2  # item 100 is 100x as popular as item 10
    users = np.arange(1, n_users)
    pop = P.sample_negatives(users, 20, seen, n_items, strategy="popularity", item_counts=counts)
    uni = P.sample_negatives(users, 20, seen, n_items)
    freq_pop = np.bincount(pop.ravel(), minlength=n_items)
    freq_uni = np.bincount(uni.ravel(), minlength=n_items)
    assert freq_pop[91:].sum() > 10 * freq_pop[1:11].sum()
    assert np.corrcoef(freq_pop[1:], counts[1:])[0, 1] > 0.9
    assert freq_uni[91:].sum() < 1.5 * freq_uni[1:11].sum()  # uniform: no skew
    assert abs(np.corrcoef(freq_uni[1:], counts[1:])[0, 1]) < 0.3
    assert freq_pop[0] == freq_uni[0] == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"n_negatives": 0}, ValueError, "n_negatives"),
        ({"n_negatives": 2.0}, TypeError, "n_negatives"),
        ({"strategy": "hard"}, ValueError, "strategy"),
        ({"strategy": "popularity"}, ValueError, "needs item_counts"),
        ({"strategy": "popularity", "item_counts": np.ones(3)}, ValueError, "item_counts"),
        ({"strategy": "popularity", "item_counts": -np.ones(11)}, ValueError, "non-negative"),
        ({"strategy": "popularity", "item_counts": np.eye(11)[0]}, ValueError, "weight 0"),
        ({"users": [0, 1]}, ValueError, "0 is padding"),
        ({"users": [1, 5]}, ValueError, r"1\.\.4"),
        ({"users": [[1]]}, ValueError, "1-D"),
        ({"n_items": 12}, ValueError, "columns"),
        ({"seen": np.zeros((5, 11))}, TypeError, "sparse"),
        ({"max_rounds": -1}, ValueError, "max_rounds"),
    ],
)
def test_negative_sampling_errors(kwargs, error, words):
    args = {"users": [1, 2], "n_negatives": 2, "seen": sp.csr_matrix((5, 11)), "n_items": 11}
    args.update(kwargs)
    with pytest.raises(error, match=words):
        P.sample_negatives(**args)


def test_leave_one_out_orders_by_another_column():
    frame = pd.DataFrame(
        {"user_idx": [1, 1, 1, 2, 2, 2], "item_idx": [5, 6, 7, 8, 9, 10],
         "position": [2, 0, 1, 0, 2, 1]}
    )  # fmt: skip
    split = P.leave_one_out_split(frame, order_by="position")
    assert sorted(split.test["item_idx"]) == [5, 9]
    assert sorted(split.validation["item_idx"]) == [7, 10]
    assert "leave-one-out by 'position'" in split.protocol
    with pytest.raises(KeyError, match="timestamp"):
        P.leave_one_out_split(frame)  # no timestamp column: the message names it
    with pytest.raises(TypeError, match="numeric"):
        P.leave_one_out_split(
            frame.assign(position=frame["position"].astype(str)), order_by="position"
        )
    with pytest.raises(TypeError, match="column name"):
        P.leave_one_out_split(frame, order_by=["position"])
