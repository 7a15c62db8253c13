"""Shared fixtures. Tests that compare numbers run in float64 through the `x64` fixture; the workflow
tests read one tiny study (`tiny_study`, tests/tiny_study.py)."""
import jax
import pytest


@pytest.fixture
def x64():
    """Enable float64 for one test only, so float32 tests elsewhere keep their dtype."""
    with jax.enable_x64(True):
        yield


from tiny_study import tiny_study, tiny_study_copy  # noqa: E402,F401  (the workflow tests' study)
