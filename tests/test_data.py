"""Tests of recsys_book.data: loaders, checksums, atomic download, synthetic data.

The real-data checks read the verified copies in ``$RECSYS_BOOK_DATA`` through the
``shared_data`` fixture (never writing there); everything that modifies files works
on copies in ``tmp_path``. Nothing leaves the machine: ``pooch.retrieve`` is replaced
by a stub in every test but one, which runs pooch against a localhost HTTP server.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
import pytest

from recsys_book import data

REAL_RETRIEVE = pooch.retrieve  # saved before the autouse stub replaces it
RATINGS_DTYPES = {"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may reach the network: downloads fail unless a test installs a stub."""

    def no_network(*args, **kwargs):
        raise ConnectionError("network disabled in tests")

    monkeypatch.setattr(pooch, "retrieve", no_network)


def copy_set(source: Path, name: str, home: Path, files=None) -> Path:
    """Copy the files the loader reads from the verified ``source`` to ``home/name``."""
    folder = home / name
    folder.mkdir(parents=True)
    for rel in files if files is not None else data.REGISTRY[name].files:
        shutil.copy2(source / name / rel, folder / rel)
    return folder


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime: any write changes it."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


def make_zip(
    source: Path, path: Path, name: str, corrupt: str | None = None, skip: str | None = None
) -> Path:
    """A zip laid out like the official archive, from the verified ``source`` files."""
    with zipfile.ZipFile(path, "w") as zf:
        for rel in data.REGISTRY[name].files:
            content = (source / name / rel).read_bytes()
            if rel == corrupt:
                content = content[:100] + bytes([content[100] ^ 1]) + content[101:]
            if rel != skip:
                zf.writestr(f"{name}/{rel}", content)
        zf.writestr(f"{name}/README", "readme")
    return path


def stub_retrieve(monkeypatch, result: Path) -> list[dict]:
    """Replace pooch.retrieve by a stub returning ``result``; returns the recorded calls."""
    calls: list[dict] = []

    def retrieve(url, known_hash, fname=None, path=None, progressbar=False, **kwargs):
        calls.append(dict(url=url, known_hash=known_hash, fname=fname, path=Path(path)))
        return str(result)

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    return calls


# ---------------------------------------------------------------------------- data_home
def test_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.data_home(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_home(str(tmp_path / "arg")) == tmp_path / "arg"
    assert data.data_home() == tmp_path / "env"
    monkeypatch.setenv(data.ENV_VAR, "")
    assert data.data_home() == Path(pooch.os_cache("recsys_book"))
    monkeypatch.delenv(data.ENV_VAR)
    assert data.data_home() == Path(pooch.os_cache("recsys_book"))
    assert not (tmp_path / "arg").exists()  # resolving the folder creates nothing
    with pytest.raises(TypeError, match="data_home"):
        data.data_home(42)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="ml-100k.*ml-1m.*ml-latest-small"):
        data.load_movielens("ml-20m", tmp_path)
    with pytest.raises(TypeError, match="download"):
        data.load_movielens("ml-100k", tmp_path, download="no")
    with pytest.raises(TypeError, match="data_home"):
        data.load_beauty(data_home=3.5)


# ---------------------------------------------------------------------------- real data
def test_ml_100k_matches_the_readme(shared_data):
    before = snapshot(shared_data)
    ml = data.load_movielens("ml-100k", shared_data, download=False)
    assert snapshot(shared_data) == before
    r = ml.ratings
    assert list(r.columns) == list(RATINGS_DTYPES)
    assert {c: str(t) for c, t in r.dtypes.items()} == RATINGS_DTYPES
    assert len(r) == 100_000 and r.user_id.nunique() == 943 and r.item_id.nunique() == 1682
    counts = r.rating.value_counts().sort_index()
    assert counts.to_dict() == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert (r.groupby("user_id").size() >= 20).all()
    assert pd.Timestamp("1997-09-01") < pd.to_datetime(r.timestamp, unit="s").min()

    items = ml.items.set_index("item_id")
    assert list(ml.items.columns) == ["item_id", "title", "year", "genres"]
    assert len(items) == 1682 and str(items["year"].dtype) == "Int64"
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[543, "title"] == "Misérables, Les"  # Latin-1 byte 0xE9
    assert items.loc[1682, "title"] == "Scream of Stone (Schrei aus Stein)"
    assert items.loc[1682, "year"] == 1991
    assert pd.isna(items.loc[267, "year"]) and items.loc[267, "title"] == "unknown"
    # the year is read even when a suffix follows it; the title then stays whole
    assert items.loc[1412, "year"] == 1995 and items.loc[1412, "title"].endswith("(1995) (V)")
    assert not items["title"].str.endswith(" ").any()

    users = ml.users
    assert list(users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert len(users) == 943 and users.user_id.is_unique and str(users.age.dtype) == "int64"
    assert len(users.occupation.cat.categories) == 21 and users.occupation.notna().all()
    assert users.set_index("user_id").loc[1, "occupation"] == "technician"
    assert set(users.gender) == {"M", "F"}
    assert (~users.zip_code.str.isdigit()).sum() == 18  # e.g. Canadian codes: kept as text
    assert users.set_index("user_id").loc[9, "zip_code"] == "01002"  # leading zero kept
    assert ml.tags is None
    assert "redistribut" in ml.license and "10.1145/2827872" in ml.citation
    assert repr(ml) == "MovieLens('ml-100k', ratings=100000, items=1682, users=943, tags=None)"


def test_ml_latest_small_matches_the_readme(shared_data):
    ml = data.load_movielens("ml-latest-small", shared_data, download=False)
    r = ml.ratings
    assert {c: str(t) for c, t in r.dtypes.items()} == RATINGS_DTYPES
    assert len(r) == 100_836 and r.user_id.nunique() == 610 and r.item_id.nunique() == 9724
    assert set(r.rating.unique()) == {x / 2 for x in range(1, 11)}  # half stars
    items = ml.items.set_index("item_id")
    assert len(items) == 9742 and ml.users is None
    assert sum(g == [] for g in items.genres) == 34  # "(no genres listed)"
    assert not any("(no genres listed)" in g for g in items.genres)
    assert items.loc[1, "genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert items.loc[73, "title"] == "Misérables, Les"  # UTF-8
    assert items.loc[171749, "title"] == "Death Note: Desu nôto"  # a year range
    assert items.loc[171749, "year"] == 2006
    assert items["year"].isna().sum() == 12  # e.g. "Babylon 5" has no year
    assert len(ml.tags) == 3683
    assert list(ml.tags.columns) == ["user_id", "item_id", "tag", "timestamp"]
    assert ml.tags.iloc[0].to_dict() == {
        "user_id": 2,
        "item_id": 60756,
        "tag": "funny",
        "timestamp": 1445714994,
    }
    assert str(ml.tags.timestamp.dtype) == "int64"
    assert "same license conditions" in ml.license


def test_ml_1m_without_ratings_raises_data_not_found(shared_data, tmp_path):
    with pytest.raises(data.DataNotFoundError, match="ratings.dat") as err:
        data.load_movielens("ml-1m", shared_data, download=False)
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    # the shared cache has no write bits: a download is refused before anything is written
    with pytest.raises(data.DataHomeNotWritableError, match="not writable"):
        data.load_movielens("ml-1m", shared_data)
    # with download=True and no network (the autouse stub), on a copy of the partial set
    folder = copy_set(shared_data, "ml-1m", tmp_path, ["movies.dat", "users.dat"])
    before = snapshot(tmp_path)
    with pytest.raises(data.DataNotFoundError, match="download failed.*network disabled"):
        data.load_movielens("ml-1m", tmp_path)
    assert snapshot(tmp_path) == before and folder.is_dir()


def test_ml_1m_parser_with_a_stand_in_ratings_file(shared_data, tmp_path, monkeypatch):
    folder = copy_set(shared_data, "ml-1m", tmp_path, ["movies.dat", "users.dat"])
    fake = b"1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n"
    (folder / "ratings.dat").write_bytes(fake)
    monkeypatch.setitem(
        data.REGISTRY["ml-1m"].files, "ratings.dat", hashlib.sha256(fake).hexdigest()
    )
    ml = data.load_movielens("ml-1m", tmp_path)
    assert ml.ratings.to_dict("list") == {
        "user_id": [1, 1, 2],
        "item_id": [1193, 661, 1357],
        "rating": [5.0, 3.0, 5.0],
        "timestamp": [978300760, 978302109, 978298709],
    }
    assert {c: str(t) for c, t in ml.ratings.dtypes.items()} == RATINGS_DTYPES
    items = ml.items.set_index("item_id")
    assert len(items) == 3883 and items.loc[73, "title"] == "Misérables, Les"  # Latin-1
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[1, "year"] == 1995
    users = ml.users.set_index("user_id")
    assert len(users) == 6040 and list(ml.users.columns)[1:] == [
        "age",
        "gender",
        "occupation",
        "zip_code",
    ]
    assert users.loc[1].to_dict() == {
        "age": 1,
        "gender": "F",
        "occupation": "K-12 student",
        "zip_code": "48067",
    }
    assert users.loc[2, "occupation"] == "self-employed" and users.loc[2, "age"] == 56


def test_beauty_sequences(shared_data):
    beauty = data.load_beauty(shared_data, download=False)
    assert list(beauty.columns) == ["user_id", "item_id", "position"]
    assert all(str(t) == "int64" for t in beauty.dtypes)
    assert len(beauty) == 353_962
    assert beauty.user_id.nunique() == 40_226 and beauty.item_id.nunique() == 54_542
    assert beauty.item_id.min() == 1 and beauty.item_id.max() == 54_542
    first = beauty.groupby("user_id").position.agg(["min", "max", "size"])
    assert (first["min"] == 0).all() and (first["max"] == first["size"] - 1).all()
    assert "BERT4Rec" in beauty.attrs["citation"]


# ---------------------------------------------------------------------------- verification
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_file_raises_checksum_error_and_is_not_parsed(
    shared_data, tmp_path, monkeypatch, damage
):
    folder = copy_set(shared_data, "ml-100k", tmp_path)
    path = folder / "u.item"
    content = path.read_bytes()
    path.write_bytes(
        content[:1000] + bytes([content[1000] ^ 1]) + content[1001:]
        if damage == "flip"
        else content[: len(content) // 2]
    )
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(data._PARSERS, "ml-100k", lambda d: pytest.fail("parsed a bad file"))
    with pytest.raises(data.ChecksumError) as err:
        data.load_movielens("ml-100k", tmp_path)
    msg = str(err.value)
    assert "u.item" in msg and actual in msg and data.REGISTRY["ml-100k"].files["u.item"] in msg
    assert "delete the folder" in msg and str(folder) in msg
    assert isinstance(err.value, ValueError)


def test_hashes_are_cached_per_path_size_and_mtime(shared_data, tmp_path, monkeypatch):
    folder = copy_set(shared_data, "ml-100k", tmp_path)
    data.load_movielens("ml-100k", tmp_path)
    keys = {k for k in data._HASHES if k[0].startswith(str(tmp_path.resolve()))}
    assert len(keys) == len(data.REGISTRY["ml-100k"].files)

    def no_hashing(*args, **kwargs):
        raise AssertionError("re-hashed an unchanged file")

    with monkeypatch.context() as patch:
        patch.setattr(data.hashlib, "sha256", no_hashing)
        data.load_movielens("ml-100k", tmp_path)  # served from the cache
    content = bytearray((folder / "u.genre").read_bytes())
    content[0] ^= 1  # same size, new mtime: must be hashed again and caught
    (folder / "u.genre").write_bytes(bytes(content))
    with pytest.raises(data.ChecksumError, match="u.genre"):
        data.load_movielens("ml-100k", tmp_path)


def test_missing_file_without_download(shared_data, tmp_path):
    copy_set(shared_data, "ml-100k", tmp_path, ["u.data", "u.genre", "u.occupation", "u.user"])
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_movielens("ml-100k", tmp_path, download=False)
    msg = str(err.value)
    assert "u.item" in msg and "download=False" in msg and str(tmp_path) in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg
    assert data.ENV_VAR in msg


def test_read_only_data_home_is_used_without_writing(shared_data, tmp_path):
    copy_set(shared_data, "ml-100k", tmp_path)
    paths = [tmp_path, tmp_path / "ml-100k", *(tmp_path / "ml-100k").iterdir()]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        before = snapshot(tmp_path)
        ml = data.load_movielens("ml-100k", tmp_path)  # the autouse stub fails any download
        assert len(ml.ratings) == 100_000
        assert snapshot(tmp_path) == before
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


# ---------------------------------------------------------------------------- download
def test_download_extracts_atomically(shared_data, tmp_path, monkeypatch):
    calls = stub_retrieve(monkeypatch, make_zip(shared_data, tmp_path / "archive.zip", "ml-100k"))
    home = tmp_path / "home"
    ml = data.load_movielens("ml-100k", home)
    assert len(ml.ratings) == 100_000 and ml.path == home / "ml-100k"
    assert calls == [
        dict(
            url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
            known_hash="md5:0e33842e24a9c977be4e0107933c0723",
            fname="ml-100k.zip",
            path=home / "_downloads",
        )
    ]
    assert sorted(p.name for p in home.iterdir()) == ["ml-100k"]  # no temporary folder left
    assert (home / "ml-100k" / "README").is_file()  # the whole archive is extracted
    data.load_movielens("ml-100k", home)  # now found in place: no second download
    assert len(calls) == 1


def test_download_fills_in_a_partial_folder(shared_data, tmp_path, monkeypatch):
    stub_retrieve(monkeypatch, make_zip(shared_data, tmp_path / "archive.zip", "ml-100k"))
    folder = copy_set(
        shared_data, "ml-100k", tmp_path / "home", ["u.data", "u.genre", "u.occupation"]
    )
    kept = (folder / "u.data").stat().st_ino
    ml = data.load_movielens("ml-100k", tmp_path / "home")
    assert len(ml.items) == 1682 and (folder / "u.data").stat().st_ino == kept
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["ml-100k"]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda src, p: make_zip(src, p, "ml-100k", corrupt="u.item"),
            data.ChecksumError,
            "u.item",
        ),
        (
            lambda src, p: make_zip(src, p, "ml-100k", skip="u.user"),
            data.DataNotFoundError,
            "lacks u.user",
        ),
        (lambda src, p: p.write_bytes(b"not a zip") and p, data.ChecksumError, "not a valid zip"),
    ],
    ids=["corrupt-member", "missing-member", "not-a-zip"],
)
def test_bad_archive_leaves_nothing_behind(shared_data, tmp_path, monkeypatch, make, error, match):
    stub_retrieve(monkeypatch, make(shared_data, tmp_path / "archive.zip"))
    home = tmp_path / "home"
    with pytest.raises(error, match=match):
        data.load_movielens("ml-100k", home)
    assert list(home.iterdir()) == []  # neither <home>/ml-100k nor a temporary folder


@pytest.mark.parametrize("exc", [OSError("unreachable"), ConnectionError("no route to host")])
def test_failed_download_raises_data_not_found(tmp_path, monkeypatch, exc):
    def retrieve(url, known_hash, fname=None, path=None, progressbar=False):
        Path(path).mkdir(parents=True)  # pooch makes its folder before downloading
        raise exc

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_movielens("ml-latest-small", tmp_path)
    msg = str(err.value)
    assert "download failed" in msg and str(exc) in msg and "ratings.csv" in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip" in msg
    assert f"extract it into {tmp_path}" in msg
    assert list(tmp_path.iterdir()) == []  # the empty _downloads folder is removed


def test_download_checksum_mismatch(tmp_path, monkeypatch):
    def retrieve(*args, **kwargs):
        raise ValueError("MD5 hash of downloaded file does not match the known hash")

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    with pytest.raises(data.ChecksumError, match="ml-100k.zip failed its checksum"):
        data.load_movielens("ml-100k", tmp_path)


def test_unwritable_data_home(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_writable", lambda path: False)
    with pytest.raises(data.DataHomeNotWritableError) as err:
        data.load_movielens("ml-100k", tmp_path)
    assert isinstance(err.value, PermissionError) and isinstance(err.value, data.DataNotFoundError)
    msg = str(err.value)
    assert f"{tmp_path} is not writable" in msg and data.ENV_VAR in msg and "u.data" in msg


def test_unwritable_data_home_detected_when_staging(tmp_path, monkeypatch):
    stub_retrieve(monkeypatch, tmp_path / "whatever.zip")

    def mkdtemp(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(PermissionError, match="not writable.*Permission denied"):
        data.load_movielens("ml-100k", tmp_path / "home")


@pytest.mark.parametrize("below", ["", "not/yet/made"])
def test_unwritable_data_home_by_file_mode(tmp_path, monkeypatch, below):
    """A folder without write bits is read-only, even for root (who could write)."""
    stub_retrieve(monkeypatch, tmp_path / "never-used.zip")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(data.DataHomeNotWritableError, match=data.ENV_VAR):
            data.load_movielens("ml-100k", tmp_path / below)
        assert list(tmp_path.iterdir()) == []
    finally:
        tmp_path.chmod(0o755)


def test_beauty_download_uses_the_raw_file(tmp_path, monkeypatch):
    fake = b"1 5\n1 3\n2 7\n2 5\n2 1\n"
    (tmp_path / "beauty.txt").write_bytes(fake)
    monkeypatch.setitem(
        data.REGISTRY["bert4rec-beauty"].files, "beauty.txt", hashlib.sha256(fake).hexdigest()
    )
    calls = stub_retrieve(monkeypatch, tmp_path / "beauty.txt")
    home = tmp_path / "home"
    beauty = data.load_beauty(home)
    assert calls[0]["url"].endswith("FeiSun/BERT4Rec/master/data/beauty.txt")
    assert calls[0]["fname"] == "beauty.txt"
    assert beauty.to_dict("list") == {
        "user_id": [1, 1, 2, 2, 2],
        "item_id": [5, 3, 7, 5, 1],
        "position": [0, 1, 0, 1, 2],
    }
    assert (home / "bert4rec-beauty" / "beauty.txt").read_bytes() == fake
    assert sorted(p.name for p in home.iterdir()) == ["bert4rec-beauty"]


@pytest.fixture
def local_server(tmp_path):
    """Serve ``tmp_path/www`` over HTTP on localhost, so pooch itself can be exercised."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("good_hash", [True, False], ids=["hash-ok", "hash-mismatch"])
def test_real_pooch_download_from_a_local_server(local_server, tmp_path, monkeypatch, good_hash):
    root, base = local_server
    fake = b"1 2\n1 3\n"
    (root / "beauty.txt").write_bytes(fake)
    sha = hashlib.sha256(fake).hexdigest()
    source = data.DataSource(
        url=f"{base}/beauty.txt",
        known_hash=f"sha256:{sha if good_hash else '0' * 64}",
        files={"beauty.txt": sha},
        license="",
        citation="",
        is_zip=False,
    )
    monkeypatch.setitem(data.REGISTRY, "bert4rec-beauty", source)
    monkeypatch.setattr(pooch, "retrieve", REAL_RETRIEVE)  # only localhost is reached
    home = tmp_path / "home"
    if good_hash:
        assert data.load_beauty(home)["position"].tolist() == [0, 1]
        assert (home / "_downloads" / "beauty.txt").is_file()
        assert (home / "bert4rec-beauty" / "beauty.txt").read_bytes() == fake
    else:
        with pytest.raises(data.ChecksumError, match="failed its checksum"):
            data.load_beauty(home)
        assert not (home / "bert4rec-beauty").exists()


# ---------------------------------------------------------------------------- synthetic
def test_synthetic_shapes_dtypes_and_constraints():
    df = data.make_synthetic()
    assert df.shape == (20_000, 4) and {c: str(t) for c, t in df.dtypes.items()} == RATINGS_DTYPES
    assert df.user_id.between(1, 300).all() and df.user_id.nunique() == 300
    assert df.item_id.between(1, 400).all()
    assert set(df.rating.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert df.rating.nunique() == 5
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert (df.groupby("user_id").size() >= 5).all()
    assert (df.groupby("user_id").timestamp.diff().dropna() > 0).all()
    assert df.equals(df.sort_values(["user_id", "timestamp"]))
    popularity = np.sort(df.item_id.value_counts().to_numpy())[::-1]
    assert popularity[:40].sum() / len(df) > 0.25  # top 10% of items: long tail
    small = data.make_synthetic(n_users=20, n_items=30, n_interactions=100, n_factors=2, seed=3)
    assert len(small) == 100 and (small.groupby("user_id").size() == 5).all()


def test_synthetic_is_deterministic_per_seed():
    pd.testing.assert_frame_equal(data.make_synthetic(seed=1), data.make_synthetic(seed=1))
    assert not data.make_synthetic(seed=1).equals(data.make_synthetic(seed=2))
    pd.testing.assert_frame_equal(
        data.make_synthetic_items(seed=1), data.make_synthetic_items(seed=1)
    )


def test_synthetic_factors_beat_popularity():
    """A rank-8 SVD of the training matrix recovers held-out items better than popularity."""
    df = data.make_synthetic(seed=0)
    held_out = np.random.default_rng(0).random(len(df)) < 0.2
    train = np.zeros((300, 400))
    train[df.user_id[~held_out] - 1, df.item_id[~held_out] - 1] = 1
    test = np.zeros_like(train)
    test[df.user_id[held_out] - 1, df.item_id[held_out] - 1] = 1
    u, s, vt = np.linalg.svd(train, full_matrices=False)

    def recall_at_20(scores):
        scores = np.where(train > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :20]
        return np.take_along_axis(test, top, axis=1).sum() / test.sum()

    svd, pop = (
        recall_at_20((u[:, :8] * s[:8]) @ vt[:8]),
        recall_at_20(np.tile(train.sum(0), (300, 1))),
    )
    assert svd > 1.2 * pop, (svd, pop)


def test_synthetic_next_item_follows_the_last_one():
    """Item-to-next-item counts from half the users beat popularity on the other half."""
    df = data.make_synthetic(seed=0)
    user, item = df.user_id.to_numpy(), df.item_id.to_numpy() - 1
    same = user[1:] == user[:-1]
    prev, nxt, fit = item[:-1][same], item[1:][same], user[1:][same] <= 150
    transitions = np.zeros((400, 400))
    np.add.at(transitions, (prev[fit], nxt[fit]), 1)
    markov = np.argsort(-transitions[prev[~fit]], axis=1)[:, :20]
    popular = np.argsort(-np.bincount(nxt[fit], minlength=400))[:20]
    hit_markov = (markov == nxt[~fit][:, None]).any(axis=1).mean()
    hit_popular = np.isin(nxt[~fit], popular).mean()
    assert hit_markov > 1.5 * hit_popular, (hit_markov, hit_popular)


def test_synthetic_genres_follow_the_factors():
    df, items = data.make_synthetic(seed=0), data.make_synthetic_items(seed=0)
    assert items.shape == (400, 4) and str(items.year.dtype) == "Int64"
    assert items.item_id.tolist() == list(range(1, 401))
    assert all(1 <= len(g) and set(g) <= set(data.SYNTHETIC_GENRES) for g in items.genres)
    x = np.zeros((300, 400))
    x[df.user_id - 1, df.item_id - 1] = 1
    x /= np.linalg.norm(x, axis=0, keepdims=True)
    cosine = x.T @ x  # item-item co-interaction
    g = np.array([[name in gs for name in data.SYNTHETIC_GENRES] for gs in items.genres])
    shared_genre = (g.astype(int) @ g.T.astype(int)) > 0
    off_diag = ~np.eye(400, dtype=bool)
    assert cosine[shared_genre & off_diag].mean() > 1.1 * cosine[~shared_genre].mean()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(n_users=0), ValueError, "n_users"),
        (dict(n_users=2.5), TypeError, "n_users"),
        (dict(n_items=True), TypeError, "n_items"),
        (dict(n_interactions=100), ValueError, "n_interactions must be >= 1500"),
        (dict(n_interactions=70_000), ValueError, "exceeds half"),
        (dict(n_factors=0), ValueError, "n_factors"),
        (dict(seed=-1), ValueError, "seed"),
    ],
)
def test_synthetic_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.make_synthetic(**kwargs)


def test_synthetic_items_argument_errors():
    with pytest.raises(ValueError, match="n_items"):
        data.make_synthetic_items(n_items=5)
    with pytest.raises(TypeError, match="seed"):
        data.make_synthetic_items(seed="0")
