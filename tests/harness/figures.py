"""Figures the project reports from the container tests (build time and size, start to
TensorBoard, start to first eval): record() keeps them, and pytest's summary prints them under
"container figures" (tests/harness/fixtures.py)."""
from __future__ import annotations

recorded: dict[str, str] = {}


def record(name: str, value: str) -> None:
    """Keeps a figure for the summary at the end of the run (and prints it, for `-s`)."""
    recorded[name] = value
    print(f"{name}: {value}")
