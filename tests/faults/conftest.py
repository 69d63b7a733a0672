"""Fixtures for the fault tests. The container tests' session fixtures (tests/container/conftest.py)
are reused as they are: the image they build and the containers they track.

pytest scopes a conftest's fixtures to its folder, so importing them here registers a second copy
of each: a session that runs both tests/container and tests/faults builds the image twice.
Running tests/faults alone builds it once."""
from tests.container.conftest import (  # noqa: F401  (fixtures, found by name)
    base_image, containers, image, image_build, podman)
