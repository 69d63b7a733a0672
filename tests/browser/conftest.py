"""The browser tests look at the same running stack as tests/stack (one per test session)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import native_stack  # noqa: E402


@pytest.fixture(scope="session")
def trained_stack(request, tmp_path_factory) -> native_stack.NativeStack:
    """A stack that has trained to max_steps and evaluated that checkpoint; TensorBoard is up."""
    return native_stack.shared_stack(request, tmp_path_factory)
