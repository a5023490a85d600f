"""Shared settings of the env tests: small, fast worlds."""

import warnings

import pytest

# One denoising step keeps the generative world affordable on a 2-core CPU; semantics are unchanged.
FAST_GENERATIVE = {"world": "generative", "denoising_steps": 1}
MUJOCO = {"world": "mujoco"}


@pytest.fixture(autouse=True)
def _quiet_random_weights():
    """The random-weights notice is expected here (no model has shipped yet)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="GenWorld: no shipped model")
        yield
