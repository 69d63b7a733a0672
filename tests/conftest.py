"""Suite-wide rules, and the shared fixtures (tests/harness/fixtures.py, named below).

Under CI=true a test may not skip for a missing tool: CI installs everything the tests need,
so a skip there means a broken install step, and it must fail loudly instead.
"""
import os
import subprocess
import sys

import pytest

from tests.harness.environment import REPO_ROOT, app_environment

pytest_plugins = ["tests.harness.fixtures"]

RUNNING_IN_CI = os.environ.get("CI", "").lower() == "true"

__all__ = ["REPO_ROOT", "app_environment"]  # the tests of app/ import them from here


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if RUNNING_IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must have every tool: {report.longrepr}"


@pytest.fixture
def run_app():
    """Runs `python -m app ARGS...` to completion and returns the CompletedProcess."""
    def run(*arguments: str, timeout: float = 600, **environment: str):
        return subprocess.run([sys.executable, "-m", "app", *arguments], cwd=REPO_ROOT,
                              env=app_environment(**environment), capture_output=True,
                              text=True, timeout=timeout)
    return run
