"""Tiny recorded data for the evaluation tests (recorded once per session, about a second)."""

from __future__ import annotations

import pytest

from tests.sim_env.training.tiny_data import write_tiny_data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))
