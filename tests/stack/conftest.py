"""Fixtures for the tests of the supervised stack. tests/browser looks at the same stack."""
import sys
from pathlib import Path

import pytest

# tests/fixtures is not a package on pytest's path; tests/browser/conftest.py imports it the same
# way, so both get the one module, and with it the one shared stack.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import native_stack  # noqa: E402


@pytest.fixture(scope="session")
def trained_stack(request, tmp_path_factory) -> native_stack.NativeStack:
    """A stack that has trained to max_steps and evaluated that checkpoint; TensorBoard is up."""
    return native_stack.shared_stack(request, tmp_path_factory)
