"""Faults: the appliance under what happens to it on a shared machine, with figures.

    .venv/bin/python -m bench.faults [--size full|quick] [--only NAME[,NAME...]] [--seed N]

Runs the scenarios of tests/harness/faults (each one module: what it does to the appliance and
what it sees) at the full size, and prints their figures: a table, then as the last line one
JSON object with every figure. tests/faults runs the same scenarios at the quick size and checks
what they saw against what the appliance promises; here the figures are read by a person.

  crash_loop     kill -9 the trainer at random moments
  curves_after_kills  kill -9 the trainer between checkpoints (and eval now and then), then ask
                 TensorBoard's HTTP API whether any curve repeats a step or runs backward; saves
                 cut short left after a start; files left in the temp folder
  graceful_stop  SIGTERM to supervisord (what `docker stop` sends) at random moments
  eval_race      a checkpoint every step, keep_checkpoints 2, eval polling without pause
  bad_configs    the table of malformed configs, natively (`container` runs it through the image)
  changed_model  train.recipe changed on a train_dir that holds a run
  bad_data       damaged, short or missing batch files, a download with the wrong MD5
  full_disk      train_dir on a small tmpfs that fills up, then space is freed (as root)
  eval_full_disk the same while eval has checkpoints to evaluate (as root)
  neighbours     TensorBoard and eval killed while the trainer trains
  container      the image: who runs, what listens, the control socket, secrets and credentials
                 in its layers, the bad configs through its entrypoint (builds the image)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import machine
from tests.harness.faults.bad_configs import bad_configs
from tests.harness.faults.bad_data import bad_data
from tests.harness.faults.changed_model import changed_model
from tests.harness.faults.container_checks import container_scenario
from tests.harness.faults.crash_loop import crash_loop
from tests.harness.faults.curves import killed_and_resumed
from tests.harness.faults.eval_race import eval_race
from tests.harness.faults.full_disk import eval_full_disk, full_disk
from tests.harness.faults.neighbours import neighbours
from tests.harness.faults.outcome import FULL, QUICK, ScenarioError, Size
from tests.harness.faults.stops import graceful_stop
from tests.harness.image import BuildFailed
from tests.harness.waiting import GaveUp


def scenarios(size: Size, seed: int) -> dict:
    """Name -> function of a work folder, in the order they run."""
    return {
        "crash_loop": lambda folder: crash_loop(folder, size.kills, seed),
        "curves_after_kills": lambda folder: killed_and_resumed(folder, size.kills, seed),
        "graceful_stop": lambda folder: graceful_stop(folder, size.stops, size.stop_within_secs,
                                                      seed),
        "eval_race": lambda folder: eval_race(folder, size.race_secs),
        "bad_configs": bad_configs,
        "changed_model": changed_model,
        "bad_data": bad_data,
        "full_disk": full_disk,
        "eval_full_disk": eval_full_disk,
        "neighbours": neighbours,
        "container": container_scenario,
    }


@dataclasses.dataclass
class Outcome:
    """One scenario's figures (what it saw, summed up), or why it could not run."""
    name: str
    figures: dict
    could_not_run: str | None = None
    seconds: float = 0.0


def run_scenario(name: str, scenario, folder: Path) -> Outcome:
    started = time.monotonic()
    folder.mkdir(parents=True)
    try:
        outcome = Outcome(name, scenario(folder).figures())
    except (ScenarioError, GaveUp, BuildFailed) as error:
        outcome = Outcome(name, {}, could_not_run=str(error))
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def print_table(outcomes: list[Outcome]) -> None:
    print(f"\n{'scenario':<20} {'figure':<44} value")
    for outcome in outcomes:
        for number, (figure, value) in enumerate(outcome.figures.items()):
            text = value if isinstance(value, str) else json.dumps(value)
            print(f"{outcome.name if number == 0 else '':<20} {figure:<44} {text}")
        ran = "ran" if outcome.could_not_run is None else "COULD NOT RUN"
        print(f"{'':<20} {'(' + ran + f', {outcome.seconds:.0f} s)':<44}")
        if outcome.could_not_run is not None:
            print(f"{'':<20}   {outcome.could_not_run}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("full", "quick"), default="full")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder to look at")
    arguments = parser.parse_args(argv)
    size = FULL if arguments.size == "full" else QUICK
    chosen = scenarios(size, arguments.seed)
    if arguments.only:
        chosen = {name: chosen[name] for name in arguments.only.split(",")}

    about = machine.describe()
    print(machine.headline(about))
    print(f"size {arguments.size}: {dataclasses.asdict(size)}; seed {arguments.seed}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="cifar10-faults-"))
    outcomes = []
    try:
        for name, scenario in chosen.items():
            print(f"{name} ...", flush=True)
            outcomes.append(run_scenario(name, scenario, work / name))
            print(f"{name}: {outcomes[-1].could_not_run or outcomes[-1].figures}", flush=True)
    finally:
        if arguments.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(outcomes)
    print(json.dumps({"machine": about, "size": arguments.size, "seed": arguments.seed,
                      "scenarios": {o.name: {"figures": o.figures, "could_not_run": o.could_not_run,
                                             "seconds": o.seconds} for o in outcomes}},
                     default=str))
    return 1 if any(o.could_not_run for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
