"""Suite-wide rules.

Under CI=true a test may not skip for a missing tool: CI installs everything the tests need,
so a skip there means a broken install step, and it must fail loudly instead.
"""
import os

import pytest

RUNNING_IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if RUNNING_IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must have every tool: {report.longrepr}"


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def app_environment(**overrides: str) -> dict:
    """The environment for `python -m app`: this checkout importable, no stray overrides."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("CIFAR10_")}
    environment["PYTHONPATH"] = REPO_ROOT
    environment["PYTHONUNBUFFERED"] = "1"
    environment.update(overrides)
    return environment


@pytest.fixture
def run_app():
    """Runs `python -m app ARGS...` to completion and returns the CompletedProcess."""
    import subprocess
    import sys

    def run(*arguments: str, timeout: float = 600, **environment: str):
        return subprocess.run([sys.executable, "-m", "app", *arguments], cwd=REPO_ROOT,
                              env=app_environment(**environment), capture_output=True,
                              text=True, timeout=timeout)
    return run
