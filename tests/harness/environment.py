"""The environment `python -m app` runs in, for the tests and the benchmarks alike."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def app_environment(**overrides: str) -> dict:
    """This checkout importable, output unbuffered, and no CIFAR10_* variable of the caller's
    shell (each is a config override and would change the run), then `overrides`."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("CIFAR10_")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["PYTHONUNBUFFERED"] = "1"
    environment.update(overrides)
    return environment
