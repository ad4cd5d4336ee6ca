"""recsys_book.runtime: seeding, backend report, argument checks."""

import numpy as np
import pytest

from recsys_book.runtime import RuntimeInfo, import_keras, setup


def test_setup_reports_backend_devices_and_policy(capsys):
    info = setup(seed=7)
    out = capsys.readouterr().out
    keras = import_keras()
    assert info.backend == keras.backend.backend()
    assert info.backend in out and "CPU:0" in info.devices
    assert info.precision == "float32" == keras.mixed_precision.global_policy().name


def test_setup_seeds_numpy_and_keras():
    keras = import_keras()
    setup(seed=3, verbose=False)
    a = (
        np.random.rand(3),  # noqa: NPY002 - the global state setup() seeds
        keras.ops.convert_to_numpy(keras.random.uniform((3,))),
    )
    setup(seed=3, verbose=False)
    b = (
        np.random.rand(3),  # noqa: NPY002
        keras.ops.convert_to_numpy(keras.random.uniform((3,))),
    )
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_mixed_precision_switch_and_back():
    keras = import_keras()
    try:
        info = setup(seed=0, mixed_precision=True, verbose=False)
        assert info.precision == "mixed_float16"
        assert keras.layers.Dense(2).compute_dtype == "float16"
    finally:
        setup(seed=0, verbose=False)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_bfloat16_policy_and_bad_choice():
    keras = import_keras()
    try:
        info = setup(seed=0, mixed_precision="bfloat16", verbose=False)
        assert info.precision == "mixed_bfloat16"
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
        assert setup(seed=0, mixed_precision="float16", verbose=False).precision == "mixed_float16"
    finally:
        setup(seed=0, verbose=False)
    for bad in ("fp16", "float32", 1, None):
        with pytest.raises(ValueError, match="mixed_precision"):
            setup(seed=0, mixed_precision=bad, verbose=False)
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("seed", [-1, 1.5, "1"])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        setup(seed=seed, verbose=False)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="not one of"):
        setup(backend="theano", verbose=False)


def test_switching_backend_after_import_is_refused():
    keras = import_keras()
    other = "jax" if keras.backend.backend() != "jax" else "torch"
    with pytest.raises(RuntimeError, match="restart"):
        import_keras(other)


def test_runtime_info_gpu_flag():
    assert RuntimeInfo("jax", ("CPU:0", "GPU:0"), "float32", 0, False).has_gpu
    assert not RuntimeInfo("jax", ("CPU:0",), "float32", 0, False).has_gpu
