"""Run-time set-up shared by every notebook, test and benchmark.

``setup()`` is the first call of every chapter. It

* selects the Keras backend (TensorFlow by default; ``KERAS_BACKEND`` or the
  ``backend`` argument choose JAX or PyTorch),
* imports Keras with TensorFlow's C++ start-up chatter silenced,
* seeds Python, NumPy and the backend,
* optionally makes ops deterministic and switches on mixed precision,
* and prints one short report: backend, devices, precision policy.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from dataclasses import dataclass

import numpy as np

_BACKENDS = ("tensorflow", "jax", "torch")


@contextlib.contextmanager
def _silence_fd2():
    """Redirect file descriptor 2 to /dev/null (C++ libraries write there directly)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras(backend: str | None = None):
    """Import and return ``keras`` quietly, on ``backend`` if Keras is not yet imported.

    Keras reads ``KERAS_BACKEND`` once, at its first import; asking for another
    backend after that raises ``RuntimeError`` (restart the kernel to switch).
    """
    if backend is not None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend={backend!r} is not one of {_BACKENDS}.")
        if "keras" in sys.modules:
            current = sys.modules["keras"].backend.backend()
            if current != backend:
                raise RuntimeError(
                    f"Keras is already imported with the {current!r} backend; "
                    f"restart the kernel (or process) to use {backend!r}."
                )
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    with _silence_fd2():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
    return keras


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``setup()`` configured."""

    backend: str
    devices: tuple[str, ...]
    precision: str
    seed: int
    deterministic: bool

    @property
    def has_gpu(self) -> bool:
        return any("gpu" in d.lower() or "cuda" in d.lower() for d in self.devices)

    def __str__(self) -> str:
        return (
            f"Keras backend: {self.backend} | devices: {', '.join(self.devices)} | "
            f"precision: {self.precision} | seed: {self.seed}"
            + (" | deterministic ops" if self.deterministic else "")
        )


def _devices(backend: str) -> tuple[str, ...]:
    if backend == "tensorflow":
        import tensorflow as tf

        return tuple(
            f"{d.device_type}:{i}"
            for kind in ("CPU", "GPU")
            for i, d in enumerate(tf.config.list_physical_devices(kind))
        )
    if backend == "jax":
        import jax

        return tuple(f"{d.platform.upper()}:{d.id}" for d in jax.devices())
    import torch

    names = ["CPU:0"]
    if torch.cuda.is_available():
        names += [f"GPU:{i}" for i in range(torch.cuda.device_count())]
    return tuple(names)


def setup(
    seed: int = 42,
    *,
    backend: str | None = None,
    mixed_precision: bool | str = False,
    deterministic: bool = False,
    verbose: bool = True,
) -> RuntimeInfo:
    """Seed everything, pick the backend and precision, and report the devices.

    Args:
        seed: seed for Python's ``random``, NumPy and the Keras backend.
        backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``; ``None`` keeps
            ``KERAS_BACKEND`` (TensorFlow when unset).
        mixed_precision: ``False`` (float32), ``True`` or ``"float16"`` for the
            ``mixed_float16`` policy (float16 compute, float32 variables, loss
            scaling), ``"bfloat16"`` for ``mixed_bfloat16`` (no loss scaling
            needed; the choice on TPUs and on GPUs from Ampere on, such as the
            A100 and H100). Worthwhile on GPUs, slower on most CPUs.
        deterministic: ask the backend for deterministic kernels (slower on GPU).
        verbose: print the one-line report.

    Returns:
        A :class:`RuntimeInfo` describing the configuration.

    Raises:
        ValueError: a negative or non-integer seed, or an unknown ``mixed_precision``.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    policies = {False: "float32", True: "mixed_float16", "float16": "mixed_float16",
                "bfloat16": "mixed_bfloat16"}  # fmt: skip
    if not isinstance(mixed_precision, bool | str) or mixed_precision not in policies:
        raise ValueError(
            f"mixed_precision={mixed_precision!r} is not one of False, True, 'float16' "
            "or 'bfloat16'."
        )
    keras = import_keras(backend)
    name = keras.backend.backend()
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global state readers may use
    keras.utils.set_random_seed(seed)
    if deterministic:
        if name == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        elif name == "torch":
            import torch

            torch.use_deterministic_algorithms(True, warn_only=True)
        # JAX is deterministic on CPU, and on GPU with XLA_FLAGS set by the user.
    policy = policies[mixed_precision]
    keras.mixed_precision.set_global_policy(policy)
    info = RuntimeInfo(name, _devices(name), policy, int(seed), deterministic)
    if verbose:
        print(info)
    return info
