"""Suite-wide rules, and the shared fixtures (tests/harness/fixtures.py, named below).

Under CI=true a test may not skip for a missing tool: CI installs everything the tests need,
so a skip there means a broken install step, and it must fail loudly instead.
"""
import os

import pytest

pytest_plugins = ["tests.harness.fixtures"]

RUNNING_IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if RUNNING_IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must have every tool: {report.longrepr}"

