"""Every recommender is exported from recsys_book.models and answers to the one interface."""

import recsys_book.models as models
from recsys_book.models.base import Recommender


def test_every_export_is_a_recommender():
    names = [n for n in models.__all__ if n[0].isupper() and n != "Recommender"]
    assert len(names) >= 15
    for name in names:
        cls = getattr(models, name)
        assert issubclass(cls, Recommender), name
        assert cls.__name__ == name


def test_unknown_name_is_an_attribute_error():
    try:
        models.NoSuchModel  # noqa: B018
    except AttributeError as err:
        assert "NoSuchModel" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
