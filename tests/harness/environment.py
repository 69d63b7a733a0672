"""The environment `python -m app` runs in, for the tests and the benchmarks alike, the run it
trains there, and the command line a test gives it: `run_app` and the `settings` of a small run."""
from __future__ import annotations

import os
import subprocess
import sys
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


def run_app(*arguments: str, timeout: float = 900, **environment: str
            ) -> subprocess.CompletedProcess:
    """Runs `python -m app ARGS...` from this checkout to completion, its output captured, in
    app_environment(**environment)."""
    return subprocess.run([sys.executable, "-m", "app", *arguments], cwd=REPO_ROOT,
                          env=app_environment(**environment), capture_output=True, text=True,
                          timeout=timeout)


def settings(root: Path, values: dict, **changes) -> list[str]:
    """The `--set` arguments of a run whose folders are below root (train/ and data/) on the
    synthetic set, with `values`, then `changes`, on top."""
    chosen = {"paths.train_dir": root / "train", "paths.data_dir": root / "data",
              "data.source": "synthetic", **values, **changes}
    return [argument for key, value in chosen.items() for argument in ("--set", f"{key}={value}")]
