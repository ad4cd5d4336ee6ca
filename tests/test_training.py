"""Tests of recsys_book.training: early stopping, reproducible shuffling, divergence."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_book.runtime import import_keras
from recsys_book.training import TrainingLog, fit_early_stopping, validation_rmse

keras = import_keras()


def _data(n: int = 64, seed: int = 0):
    """``y = 2 x0 - x1 + 1`` with a little noise: ``(n, 2) float32``, ``(n,) float32``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (2 * x[:, 0] - x[:, 1] + 1 + 0.01 * rng.normal(size=n)).astype(np.float32)
    return x, y


def _linear(lr: float = 0.05, seed: int = 0):
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed)),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


class Scripted:
    """A ``validate`` that returns fixed scores and records the weights it saw."""

    def __init__(self, scores):
        self.scores = list(scores)
        self.weights = []

    def __call__(self, network) -> float:
        self.weights.append([np.array(w) for w in network.get_weights()])
        return self.scores[len(self.weights) - 1]


@pytest.fixture(scope="module")
def data():
    return _data()


def test_stops_after_patience_and_restores_best(data):
    x, y = data
    net = _linear()
    val = Scripted([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 1.0])
    log = fit_early_stopping(net, x, y, val, max_epochs=7, patience=2, batch_size=16)
    assert isinstance(log, TrainingLog)
    assert log.best_epoch == 3 and log.best_score == 3.0
    assert log.epochs_run == 5  # epochs 4 and 5 did not improve: stop; epoch 7's 1.0 never seen
    assert log.val_score == [5.0, 4.0, 3.0, 3.5, 3.6]
    assert len(log.train_loss) == 5 and all(np.isfinite(log.train_loss))
    assert not log.diverged and "best epoch 3 of 5" in str(log)
    for restored, best in zip(net.get_weights(), val.weights[2], strict=True):
        np.testing.assert_array_equal(restored, best)
    # the last epoch's weights differ from the restored ones: something was restored
    assert not np.array_equal(val.weights[4][0], net.get_weights()[0])


def test_restore_best_false_keeps_the_last_weights(data):
    x, y = data
    net = _linear()
    val = Scripted([1.0, 2.0, 3.0])
    fit_early_stopping(net, x, y, val, max_epochs=3, patience=2, restore_best=False)
    np.testing.assert_array_equal(net.get_weights()[0], val.weights[-1][0])


def test_patience_one_mode_max_and_min_delta(data):
    x, y = data
    net = _linear()
    log = fit_early_stopping(net, x, y, Scripted([0.1, 0.3, 0.2, 0.9]), mode="max", patience=1)
    assert (log.best_epoch, log.epochs_run, log.mode) == (2, 3, "max")
    # +0.05 is not an improvement when min_delta = 0.1; +0.5 is
    log = fit_early_stopping(
        net, x, y, Scripted([1.0, 0.95, 0.45, 0.44]), patience=2, min_delta=0.1, max_epochs=4
    )
    assert log.best_epoch == 3 and log.best_score == 0.45
    assert log.epochs_run == 4


def test_learns_a_line_and_rmse_matches_numpy(data):
    x, y = data
    xv, yv = _data(32, seed=1)
    net = _linear(lr=0.1)
    validate = validation_rmse(xv, yv, batch_size=7)
    log = fit_early_stopping(net, x, y, validate, max_epochs=60, patience=3, batch_size=8)
    assert log.best_score < 0.05, log  # noise is 0.01; the start is far worse
    assert log.val_score[0] > log.best_score
    manual = np.sqrt(np.mean((net.predict(xv, verbose=0).ravel() - yv) ** 2))
    assert validate(net) == pytest.approx(manual, rel=1e-5)
    assert validate(net) == pytest.approx(log.best_score, rel=1e-5)  # best weights restored


def test_same_seed_same_weights_other_seed_other_weights(data):
    x, y = data
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        net = _linear(seed=0)
        fit_early_stopping(net, x, y, lambda n: 1.0, max_epochs=2, batch_size=8, seed=seed)
        runs[name] = net.get_weights()[0]
    np.testing.assert_array_equal(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"], runs["c"])


def test_divergence_stops_training(data):
    x, y = data
    net = _linear(lr=1e6)
    log = fit_early_stopping(net, 1e3 * x, y, lambda n: 0.0, max_epochs=20, batch_size=8)
    assert log.diverged
    assert log.epochs_run < 20
    assert not np.isfinite(log.train_loss[-1]) and np.isnan(log.val_score[-1])
    assert "diverged" in str(log)


def test_dict_inputs_and_models_without_targets():
    class MeanSquare(keras.Model):
        """Loss needs only x: the mean of (w . x)^2, minimised by w = 0."""

        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")

        def call(self, inputs):
            return self.dense(keras.ops.concatenate([inputs["a"], inputs["b"]], axis=-1))

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return keras.ops.mean(keras.ops.square(y_pred))

    rng = np.random.default_rng(0)
    x = {
        "a": rng.normal(size=(40, 1)).astype("float32"),
        "b": rng.normal(size=(40, 1)).astype("float32"),
    }
    net = MeanSquare()
    net.compile(optimizer=keras.optimizers.SGD(0.1))
    log = fit_early_stopping(net, x, None, lambda n: float(np.abs(n.get_weights()[0]).sum()))
    assert log.best_score < log.val_score[0] < 2.0


_BAD_NET = _linear()  # compiled; every case below fails before or after one epoch


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mode": "best"}, ValueError, "mode"),
        ({"max_epochs": 0}, ValueError, "max_epochs"),
        ({"patience": 0}, ValueError, "patience"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"min_delta": -0.1}, ValueError, "min_delta"),
        ({"min_delta": float("nan")}, ValueError, "min_delta"),
        ({"validate": "rmse"}, TypeError, "callable"),
        ({"y": np.zeros(3)}, ValueError, "y has 3"),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, ValueError, "no rows"),
        ({"x": [[0.0, 1.0]], "y": np.zeros(1)}, TypeError, "NumPy array"),
        ({"x": {"a": np.zeros((2, 1)), "b": np.zeros((3, 1))}}, ValueError, "differ in length"),
        ({"x": {}}, ValueError, "empty mapping"),
        ({"validate": lambda n: "good"}, ValueError, "real number"),
    ],
)
def test_bad_arguments_are_named(data, kwargs, error, match):
    x, y = data
    args = {"network": _BAD_NET, "x": x, "y": y, "validate": lambda n: 0.0, **kwargs}
    with pytest.raises(error, match=match):
        fit_early_stopping(
            args.pop("network"), args.pop("x"), args.pop("y"), args.pop("validate"), **args
        )


def test_network_must_be_a_compiled_keras_model(data):
    x, y = data
    with pytest.raises(TypeError, match="keras.Model"):
        fit_early_stopping(object(), x, y, lambda n: 0.0)
    raw = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="not compiled"):
        fit_early_stopping(raw, x, y, lambda n: 0.0)


def test_validation_rmse_rejects_bad_inputs():
    x = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="one rating per row"):
        validation_rmse(x, np.zeros(2))
    with pytest.raises(ValueError, match="one rating per row"):
        validation_rmse(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        validation_rmse(x, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="batch_size"):
        validation_rmse(x, np.zeros(3), batch_size=0)
