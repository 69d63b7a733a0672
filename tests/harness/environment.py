"""The environment `python -m app` runs in, for the tests and the benchmarks alike, and the run it
trains there."""
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


def run_name(config_file: Path | None = None, environ: dict | None = None) -> str:
    """The run (paths.run) the appliance trains with this config file and these variables: its
    folder on the volume is <train_dir>/<run>, and TensorBoard names its runs after it."""
    from app import config

    file = str(config_file) if config_file else None
    return config.load(file, environ=environ if environ is not None else {}).paths.run
