"""Load the book's data sets as tidy pandas frames, verified file by file.

In the spirit of scikit-learn's ``fetch_*`` functions: one call returns frames
with fixed column names (see ``CONTRIBUTING.md``)::

    ml = load_movielens("ml-100k")      # MovieLens record: ratings, items, users, tags
    beauty = load_beauty()              # Amazon Beauty sequences, as used by BERT4Rec

Where the files live (:func:`data_home`): the ``data_home`` argument, else the
environment variable ``RECSYS_BOOK_DATA``, else a per-user cache folder. A data
set is the folder ``<home>/<name>/`` laid out as the official archive extracts.

* Files present: the SHA-256 of every file the loader reads is checked against
  :data:`REGISTRY`, then the files are parsed in place. Nothing is written, so
  the folder may be read-only.
* Files missing: the official archive is downloaded with :mod:`pooch` into
  ``<home>/_downloads`` (its checksum checked), extracted into a temporary
  sibling folder, verified, and renamed to ``<home>/<name>`` in one step; a
  failure leaves no folder that looks valid. Offline, or with
  ``download=False``, a :class:`DataNotFoundError` says what to fetch and where
  to put it.

:func:`make_synthetic` makes a small planted-factor data set for unit tests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pooch

__all__ = [
    "ENV_VAR", "MOVIELENS_NAMES", "REGISTRY", "SYNTHETIC_GENRES", "ChecksumError",
    "DataHomeNotWritableError", "DataNotFoundError", "DataSource", "MovieLens", "data_home",
    "load_beauty", "load_movielens", "make_synthetic", "make_synthetic_items",
]  # fmt: skip

ENV_VAR = "RECSYS_BOOK_DATA"
MOVIELENS_NAMES = ("ml-100k", "ml-1m", "ml-latest-small")


class DataNotFoundError(FileNotFoundError):
    """A data set's files are missing and could not be downloaded."""


class DataHomeNotWritableError(DataNotFoundError, PermissionError):
    """Files are missing and the data folder cannot be written to download them."""


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the published one: it is corrupt or not the original."""


_MOVIELENS_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and "
    "Context. ACM Transactions on Interactive Intelligent Systems 5, 4, Article 19. "
    "https://doi.org/10.1145/2827872"
)
_NO_REDISTRIBUTION = (
    "GroupLens usage license (README in the archive): research use only; no redistribution "
    "without separate permission; no commercial use; no implied endorsement by the University "
    "of Minnesota or GroupLens; cite Harper & Konstan (2015)."
)
_REDISTRIBUTABLE = (
    "GroupLens usage license (README.txt in the archive): research use only; redistribution, "
    "including transformations, allowed under the same license conditions; no commercial use; "
    "no implied endorsement by the University of Minnesota or GroupLens; cite Harper & "
    "Konstan (2015)."
)


@dataclass(frozen=True)
class DataSource:
    """Where a data set comes from and how to check it.

    ``known_hash`` is the download's checksum in pooch's ``"alg:hex"`` form;
    ``files`` maps each file the loader reads to its SHA-256.
    """

    url: str
    known_hash: str
    files: Mapping[str, str]
    license: str
    citation: str
    is_zip: bool = True


_ML = "https://files.grouplens.org/datasets/movielens/"
REGISTRY: dict[str, DataSource] = {
    "ml-100k": DataSource(
        url=_ML + "ml-100k.zip",
        known_hash="md5:0e33842e24a9c977be4e0107933c0723",
        files={
            "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
            "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
        },
        license=_NO_REDISTRIBUTION,
        citation=_MOVIELENS_CITATION,
    ),
    "ml-1m": DataSource(
        url=_ML + "ml-1m.zip",
        known_hash="md5:c4d9eecfca2ab87c1945afe126590906",
        files={
            "ratings.dat": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
            "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
            "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
        },
        license=_NO_REDISTRIBUTION,
        citation=_MOVIELENS_CITATION,
    ),
    "ml-latest-small": DataSource(
        url=_ML + "ml-latest-small.zip",
        known_hash="sha256:696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        files={
            "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
            "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
        },
        license=_REDISTRIBUTABLE,
        citation=_MOVIELENS_CITATION,
    ),
    "bert4rec-beauty": DataSource(
        url="https://raw.githubusercontent.com/FeiSun/BERT4Rec/master/data/beauty.txt",
        known_hash="sha256:f480b7a7403852342ffd8f9809bb30697dd669be31813d0e204b698fec86ef49",
        files={"beauty.txt": "f480b7a7403852342ffd8f9809bb30697dd669be31813d0e204b698fec86ef49"},
        license="Amazon review data (McAuley et al.), released for research use.",
        citation=(
            "Fei Sun et al. 2019. BERT4Rec: Sequential Recommendation with Bidirectional Encoder "
            "Representations from Transformer. CIKM '19. https://doi.org/10.1145/3357384.3357895 ; "
            "Julian McAuley et al. 2015. Image-Based Recommendations on Styles and Substitutes. "
            "SIGIR '15. https://doi.org/10.1145/2766462.2767755"
        ),
        is_zip=False,
    ),
}


@dataclass(frozen=True, eq=False, repr=False)
class MovieLens:
    """One MovieLens data set as tidy frames (column contracts in ``CONTRIBUTING.md``).

    ``ratings``: ``user_id, item_id`` int64, ``rating`` float32 (stars), ``timestamp``
    int64 (unix seconds). ``items``: ``item_id`` int64, ``title`` str, ``year`` Int64,
    ``genres`` list[str]. ``users`` (ml-100k, ml-1m): ``user_id, age, gender,
    occupation, zip_code``. ``tags`` (ml-latest-small): ``user_id, item_id, tag,
    timestamp``.
    """

    name: str
    path: Path
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    license: str = field(default="")
    citation: str = field(default="")

    def __repr__(self) -> str:  # row counts only: the frames would flood a notebook
        rows = {k: getattr(self, k) for k in ("ratings", "items", "users", "tags")}
        sizes = ", ".join(f"{k}={None if v is None else len(v)}" for k, v in rows.items())
        return f"MovieLens({self.name!r}, {sizes})"


# ---------------------------------------------------------------------------- where
def data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder that holds the data sets (not created here).

    The argument if given, else ``$RECSYS_BOOK_DATA``, else the per-user cache
    ``pooch.os_cache("recsys_book")`` (``~/.cache/recsys_book`` on Linux).

    Raises:
        TypeError: ``data_home`` is not a str, a path or None.
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or pooch.os_cache("recsys_book")
    if not isinstance(data_home, str | os.PathLike):
        raise TypeError(f"data_home must be a str or a path, got {type(data_home).__name__}.")
    return Path(data_home).expanduser()


_home = data_home  # the loaders' parameter `data_home` shadows the function


# ---------------------------------------------------------------------------- verify
_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def _sha256(path: Path) -> str:
    """SHA-256 of a file, streamed in 1 MiB chunks, remembered per (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _verify(path: Path, expected: str, fix: str) -> None:
    """Raise :class:`ChecksumError` (saying ``fix``) unless ``path`` has SHA-256 ``expected``."""
    actual = _sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"{path.name} in {path.parent} has sha256 {actual}, expected {expected}: the file "
            "is corrupt, truncated or not the official version (a copy re-saved with other "
            f"line endings or encoding fails too). Fix: {fix}"
        )


def _redownload(name: str, folder: Path) -> str:
    return (
        f"delete the folder {folder} and load again to re-download {REGISTRY[name].url}, "
        "or put the official file there."
    )


# ---------------------------------------------------------------------------- fetch
def _missing_message(name: str, folder: Path, missing: list[str], reason: str) -> str:
    url = REGISTRY[name].url
    what = "archive" if REGISTRY[name].is_zip else "file"
    where = f"extract it into {folder.parent}" if REGISTRY[name].is_zip else f"save it in {folder}"
    return (
        f"Data set {name!r} is missing {', '.join(missing)} in {folder} ({reason}). "
        f"Download the official {what} {url} and {where} "
        f"so that {folder / missing[0]} exists, or set {ENV_VAR} (or pass data_home=...) to "
        f"a folder that holds an extracted copy in {name}/."
    )


def _writable(path: Path) -> bool:
    """Whether ``path`` (or its nearest existing parent) may be written to.

    A folder without any write bit counts as read-only even for root, who could
    write anyway: it was made read-only on purpose (CI's shared data cache).
    """
    while not path.exists() and path.parent != path:
        path = path.parent
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return os.access(path, os.W_OK | os.X_OK) and bool(path.stat().st_mode & write_bits)


def _not_writable(name: str, home: Path, missing: list[str], err: object) -> Exception:
    reason = f"cannot download: {home} is not writable ({err})"
    return DataHomeNotWritableError(
        _missing_message(name, home / name, missing, reason)
        + f" Or point {ENV_VAR} to a writable folder."
    )


def _download(name: str, home: Path, missing: list[str]) -> Path:
    """Fetch the official file of ``name`` into ``home/_downloads`` (pooch checks its hash)."""
    spec, downloads = REGISTRY[name], home / "_downloads"
    if not _writable(home):
        raise _not_writable(name, home, missing, "permission denied")
    fname = f"{name}.zip" if spec.is_zip else spec.url.rsplit("/", 1)[-1]
    progressbar = importlib.util.find_spec("tqdm") is not None
    try:
        return Path(
            pooch.retrieve(
                spec.url, spec.known_hash, fname=fname, path=downloads, progressbar=progressbar
            )
        )
    except PermissionError as err:
        raise _not_writable(name, home, missing, err) from err
    except ValueError as err:  # pooch: the download's checksum does not match
        raise ChecksumError(f"Download of {spec.url} failed its checksum: {err}") from err
    except OSError as err:  # no network, HTTP error (requests' errors are OSErrors)
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
        reason = f"the download failed: {err}"
        raise DataNotFoundError(_missing_message(name, home / name, missing, reason)) from err


def _install(name: str, archive: Path, home: Path, missing: list[str]) -> None:
    """Extract ``archive`` into a temporary sibling folder, verify, rename to ``home/name``."""
    spec, folder = REGISTRY[name], home / name
    try:
        home.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".partial", dir=home))
    except OSError as err:
        raise _not_writable(name, home, missing, err) from err
    try:
        staged = tmp / name
        if spec.is_zip:
            try:
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)  # extractall drops absolute and '..' member paths
            except zipfile.BadZipFile as err:
                raise ChecksumError(
                    f"{archive} is not a valid zip archive ({err}); delete "
                    "it and load again to re-download."
                ) from err
        else:
            staged.mkdir()
            shutil.copyfile(archive, staged / archive.name)
        absent = [rel for rel in spec.files if not (staged / rel).is_file()]
        if absent:
            raise DataNotFoundError(
                f"{archive} lacks {', '.join(absent)}; it is not the "
                f"official {name} download from {spec.url}."
            )
        upstream = (
            f"the download {archive} passed its checksum, so the data set has "
            "changed upstream; please report it to the book's issue tracker."
        )
        for rel, expected in spec.files.items():
            _verify(staged / rel, expected, upstream)
        if not folder.exists():
            try:
                os.replace(staged, folder)  # one atomic step: the folder appears complete
            except OSError:
                if not folder.exists():  # else another process finished first
                    raise
        else:  # a partial folder: add the missing files, keep the user's ones
            for rel in missing:
                os.replace(staged / rel, folder / rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure(name: str, data_home: str | os.PathLike | None, download: bool) -> Path:
    """The verified folder of data set ``name``, downloading what is missing."""
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}.")
    home = _home(data_home)
    folder, spec = home / name, REGISTRY[name]
    missing = [rel for rel in spec.files if not (folder / rel).is_file()]
    if missing:
        if not download:
            raise DataNotFoundError(_missing_message(name, folder, missing, "download=False"))
        _install(name, _download(name, home, missing), home, missing)
    for rel, expected in spec.files.items():
        _verify(folder / rel, expected, _redownload(name, folder))
    return folder


# ---------------------------------------------------------------------------- parse
_YEAR = re.compile(r"\((\d{4})(?:[-\u2013]\d{4})?\)")  # "(1995)" or a range "(2006–2007)"
_ML1M_OCCUPATIONS = (  # code -> name, from the ml-1m README
    "other|academic/educator|artist|clerical/admin|college/grad student|customer service|"
    "doctor/health care|executive/managerial|farmer|homemaker|K-12 student|lawyer|programmer|"
    "retired|sales/marketing|scientist|self-employed|technician/engineer|tradesman/craftsman|"
    "unemployed|writer"
).split("|")


def _items(item_id: pd.Series, titles: pd.Series, genres: list[list[str]]) -> pd.DataFrame:
    """Items frame; the year is the last "(YYYY)" in the title, removed when it ends it."""
    titles = titles.astype(str).str.rstrip()
    found = titles.str.findall(_YEAR)
    year = pd.array([int(m[-1]) if m else None for m in found], dtype="Int64")
    title = titles.str.replace(r"\s*\(\d{4}(?:[-\u2013]\d{4})?\)$", "", regex=True)
    return pd.DataFrame(
        {"item_id": item_id.astype("int64"), "title": title, "year": year, "genres": genres}
    )


def _ratings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"}
    )[["user_id", "item_id", "rating", "timestamp"]]


def _lines(path: Path, encoding: str, sep: str) -> list[list[str]]:
    return [ln.split(sep) for ln in path.read_text(encoding=encoding).splitlines() if ln]


def _parse_ml_100k(d: Path) -> dict:
    ratings = pd.read_csv(
        d / "u.data", sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"]
    )
    genre_names = [g[0] for g in _lines(d / "u.genre", "latin-1", "|")]
    rows = _lines(d / "u.item", "latin-1", "|")
    flags = np.array([r[5:] for r in rows], dtype=np.int8).astype(bool)
    genres = [[genre_names[j] for j in np.flatnonzero(f)] for f in flags]
    items = _items(pd.Series([r[0] for r in rows]), pd.Series([r[1] for r in rows]), genres)
    occupations = [o[0] for o in _lines(d / "u.occupation", "latin-1", "|")]
    users = pd.read_csv(
        d / "u.user",
        sep="|",
        header=None,
        dtype={4: str},
        encoding="latin-1",
        names=["user_id", "age", "gender", "occupation", "zip_code"],
    )
    users["occupation"] = pd.Categorical(users["occupation"], categories=occupations)
    return dict(ratings=_ratings(ratings), items=items, users=users.astype({"age": "int64"}))


def _parse_ml_1m(d: Path) -> dict:
    # "::" separated; splitting on ":" keeps pandas' fast C parser for the numeric files
    ratings = pd.read_csv(
        d / "ratings.dat",
        sep=":",
        header=None,
        usecols=[0, 2, 4, 6],
        names=["user_id", "_1", "item_id", "_2", "rating", "_3", "timestamp"],
    )
    rows = _lines(d / "movies.dat", "latin-1", "::")
    genres = [r[2].split("|") for r in rows]
    items = _items(pd.Series([r[0] for r in rows]), pd.Series([r[1] for r in rows]), genres)
    users = pd.DataFrame(
        _lines(d / "users.dat", "latin-1", "::"),
        columns=["user_id", "gender", "age", "occupation", "zip_code"],
    )
    users = users.astype({"user_id": "int64", "age": "int64"})
    codes = users["occupation"].astype("int64")
    users["occupation"] = pd.Categorical.from_codes(codes, categories=_ML1M_OCCUPATIONS)
    users = users[["user_id", "age", "gender", "occupation", "zip_code"]]
    return dict(ratings=_ratings(ratings), items=items, users=users)


def _parse_ml_latest_small(d: Path) -> dict:
    ratings = pd.read_csv(d / "ratings.csv", encoding="utf-8").rename(
        columns={"userId": "user_id", "movieId": "item_id"}
    )
    movies = pd.read_csv(d / "movies.csv", encoding="utf-8", dtype=str, keep_default_na=False)
    genres = [[] if g == "(no genres listed)" else g.split("|") for g in movies["genres"]]
    items = _items(movies["movieId"], movies["title"], genres)
    tags = pd.read_csv(d / "tags.csv", encoding="utf-8", keep_default_na=False, dtype={"tag": str})
    tags = tags.rename(columns={"userId": "user_id", "movieId": "item_id"})
    tags = tags.astype({"user_id": "int64", "item_id": "int64", "timestamp": "int64"})
    return dict(ratings=_ratings(ratings), items=items, tags=tags)


_PARSERS = {
    "ml-100k": _parse_ml_100k,
    "ml-1m": _parse_ml_1m,
    "ml-latest-small": _parse_ml_latest_small,
}


# ---------------------------------------------------------------------------- public loaders
def load_movielens(
    name: str, data_home: str | os.PathLike | None = None, *, download: bool = True
) -> MovieLens:
    """Load a MovieLens data set, verifying every file it reads.

    Args:
        name: ``"ml-100k"`` (100,000 ratings, 943 users, 1,682 movies), ``"ml-1m"``
            or ``"ml-latest-small"`` (100,836 half-star ratings, 610 users, 9,742 movies).
        data_home: folder holding ``<name>/``; see :func:`data_home`.
        download: fetch the official archive when files are missing.

    Returns:
        A :class:`MovieLens` record. Titles lose their "(YYYY)" suffix, which becomes
        ``year`` (``<NA>`` when absent); ml-100k genres come from the 19 genre flags
        (names from ``u.genre``), the others from the ``|``-separated list, with
        "(no genres listed)" as ``[]``. ``users.occupation`` is categorical (ml-1m codes
        mapped to the README's names); ml-1m ``age`` is the age-group code (1 = under 18,
        18 = 18-24, ..., 56 = 56+).

    Raises:
        ValueError: unknown ``name``.
        DataNotFoundError: files missing and not downloadable (offline or ``download=False``);
            :class:`DataHomeNotWritableError` when the data folder is read-only.
        ChecksumError: a file differs from the official one (nothing is parsed).
    """
    if name not in MOVIELENS_NAMES:
        raise ValueError(f"Unknown MovieLens data set {name!r}; choose one of {MOVIELENS_NAMES}.")
    folder = _ensure(name, data_home, download)
    spec = REGISTRY[name]
    return MovieLens(
        name=name,
        path=folder,
        license=spec.license,
        citation=spec.citation,
        **_PARSERS[name](folder),
    )


def load_beauty(
    data_home: str | os.PathLike | None = None, *, download: bool = True
) -> pd.DataFrame:
    """Amazon Beauty as preprocessed for BERT4Rec (Sun et al., 2019): one row per interaction.

    Columns ``user_id``, ``item_id``, ``position`` (int64; ``position`` is the 0-based
    order within the user's sequence; the file has no timestamps). Ids are contiguous
    from 1. 353,962 rows, 40,226 users, 54,542 items. Read from
    ``<home>/bert4rec-beauty/beauty.txt``; license and citation in ``frame.attrs``.

    Raises:
        DataNotFoundError, ChecksumError: as :func:`load_movielens`.
    """
    folder = _ensure("bert4rec-beauty", data_home, download)
    frame = pd.read_csv(
        folder / "beauty.txt", sep=" ", header=None, names=["user_id", "item_id"], dtype="int64"
    )
    frame["position"] = frame.groupby("user_id", sort=False).cumcount().astype("int64")
    frame.attrs.update(
        license=REGISTRY["bert4rec-beauty"].license, citation=REGISTRY["bert4rec-beauty"].citation
    )
    return frame


# ---------------------------------------------------------------------------- synthetic
SYNTHETIC_GENRES = tuple("Action Adventure Comedy Drama Horror Romance Sci-Fi Thriller".split())


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _item_factors(n_items: int, n_factors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Planted item factors ``(n_items, n_factors)`` and Zipf log-popularity ``(n_items,)``."""
    rng = np.random.default_rng([seed, 1])
    factors = rng.standard_normal((n_items, n_factors))
    log_popularity = -1.5 * np.log1p(rng.permutation(n_items))  # p ~ rank^-1.5, random ranks
    return factors, log_popularity


def make_synthetic(
    n_users: int = 300,
    n_items: int = 400,
    n_interactions: int = 20_000,
    n_factors: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """A small ratings-like frame from planted latent factors. **For unit tests only**:
    never report book results on it.

    User ``u`` picks distinct items with probability proportional to
    ``exp(2 a_ui) / rank_i^1.5`` (Gumbel top-k sampling), where ``a_ui = p_u . q_i / sqrt(k)``
    is the planted affinity and ``rank_i`` a random popularity rank, so popularity is
    long-tailed (the top 10% of items get about a third of the interactions) and a
    rank-k factor model beats popularity. Ratings are ``round(3 + 0.8 a_ui + b_u + b_i +
    noise)`` clipped to 1..5, skewed towards 3-5 as in MovieLens. Each user has at least
    5 interactions (activity is log-normal) whose times increase in the order of a
    planted item "phase", so the next item is predictable from the last one.

    Returns:
        ``(n_interactions, 4)`` frame: ``user_id`` (1..n_users), ``item_id`` (1..n_items)
        int64, ``rating`` float32 in {1, ..., 5}, ``timestamp`` int64 (unix seconds),
        sorted by user then time; (user, item) pairs are unique.

    Raises:
        TypeError / ValueError: non-int or out-of-range arguments (``n_interactions``
            must lie in ``[5 * n_users, n_users * n_items // 2]``).
    """
    n_users, n_items = _check_int("n_users", n_users, 1), _check_int("n_items", n_items, 10)
    n_factors, seed = _check_int("n_factors", n_factors, 1), _check_int("seed", seed, 0)
    n = _check_int("n_interactions", n_interactions, 5 * n_users)
    if n > n_users * n_items // 2:
        raise ValueError(
            f"n_interactions={n} exceeds half of n_users * n_items "
            f"({n_users * n_items // 2}); use fewer interactions or more items."
        )
    rng = np.random.default_rng([seed, 0])
    user_f = rng.standard_normal((n_users, n_factors))
    item_f, log_pop = _item_factors(n_items, n_factors, seed)
    affinity = user_f @ item_f.T / np.sqrt(n_factors)  # (n_users, n_items), ~ N(0, 1)

    counts = 5 + rng.multinomial(n - 5 * n_users, (w := rng.lognormal(0, 0.8, n_users)) / w.sum())
    while (over := np.clip(counts - n_items, 0, None).sum()) > 0:  # cap at n_items, move rest
        counts = np.minimum(counts, n_items)
        counts += rng.multinomial(over, (room := n_items - counts) / room.sum())

    perturbed = 2.0 * affinity + log_pop + rng.gumbel(size=affinity.shape)
    order = np.argsort(-perturbed, axis=1)  # each row: a sample without replacement
    keep = np.arange(n_items)[None, :] < counts[:, None]
    users, items = np.nonzero(keep)[0], order[keep]

    phase = (item_f @ rng.standard_normal(n_factors))[items] + rng.normal(0, 0.3, n)
    sort = np.lexsort((phase, users))
    users, items = users[sort], items[sort]
    gaps = 1 + rng.exponential(2 * 86_400, len(items)).astype(np.int64)  # seconds, >= 1
    cum = np.cumsum(gaps)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    start = 1_000_000_000 + rng.integers(0, 2 * 365 * 86_400, n_users)
    timestamp = start[users] + cum - np.repeat(cum[first] - gaps[first], counts)

    bias_u, bias_i = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    raw = 3.0 + 0.8 * affinity[users, items] + bias_u[users] + bias_i[items] + rng.normal(0, 0.5, n)
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64) + 1,
            "item_id": items.astype(np.int64) + 1,
            "rating": np.clip(np.rint(raw), 1, 5).astype(np.float32),
            "timestamp": timestamp.astype(np.int64),
        }
    )


def make_synthetic_items(n_items: int = 400, n_factors: int = 8, seed: int = 0) -> pd.DataFrame:
    """Items frame for :func:`make_synthetic` (same ``n_items``, ``n_factors``, ``seed``).
    **For unit tests only.**

    Each genre of :data:`SYNTHETIC_GENRES` is a direction in the planted factor space;
    an item has the genres its factors point to strongly (always at least one), so
    genres correlate with who interacts with the item.

    Returns:
        ``(n_items, 4)`` frame: ``item_id`` int64 (1..n_items), ``title`` str,
        ``year`` Int64, ``genres`` list[str].
    """
    n_items, n_factors = _check_int("n_items", n_items, 10), _check_int("n_factors", n_factors, 1)
    seed = _check_int("seed", seed, 0)
    item_f, _ = _item_factors(n_items, n_factors, seed)
    rng = np.random.default_rng([seed, 3])
    directions = rng.standard_normal((len(SYNTHETIC_GENRES), n_factors))
    strength = item_f @ directions.T / np.sqrt(n_factors)  # (n_items, n_genres)
    has = strength > 1.0
    has[np.arange(n_items), strength.argmax(axis=1)] = True
    names = np.array(SYNTHETIC_GENRES)
    return pd.DataFrame(
        {
            "item_id": np.arange(1, n_items + 1, dtype=np.int64),
            "title": [f"Synthetic item {i}" for i in range(1, n_items + 1)],
            "year": pd.array(rng.integers(1950, 2021, n_items), dtype="Int64"),
            "genres": [names[row].tolist() for row in has],
        }
    )
