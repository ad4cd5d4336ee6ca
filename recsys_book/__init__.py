"""recsys_book: the helper package of *Large Models for Recommender Systems*.

Data flows one way through the package::

    data -> preprocessing -> models (+ losses) -> evaluation (+ metrics) -> rerank / explain / plotting

Import the modules you need (``from recsys_book import data, preprocessing``);
importing the package itself does not import Keras.
"""

__version__ = "0.1.0"
