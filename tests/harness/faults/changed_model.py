"""A config edit on a train_dir that holds a run: train.recipe tutorial -> fast. What the trainer
said and how it exited, and the run's checkpoints before and after; tests/faults checks that it
refused (exit 2, naming train.recipe) and left them as they were, not starting from step 0 and
saving over them."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness.checkpoints import audit_checkpoints
from tests.harness.environment import run_app, settings
from tests.harness.faults.bad_configs import snapshot
from tests.harness.faults.outcome import ScenarioError


@dataclasses.dataclass
class ChangedModel:
    exit_code: int             # the trainer's, with the changed recipe
    output: str                # what it printed (stdout, then stderr)
    checkpoints_before: dict   # the run's checkpoint files (bad_configs.snapshot), before
    checkpoints_after: dict    # and after
    restorable: int            # audit_checkpoints() of the run afterwards
    checkpoints: int
    problems: list[str]

    def figures(self) -> dict:
        return {"refused_with_exit": self.exit_code,
                "old_run_restorable": f"{self.restorable}/{self.checkpoints}"}


def changed_model(folder: Path) -> ChangedModel:
    run_dir = folder / "train" / "a-run"
    run = {"paths.run": run_dir.name,
           "data.synthetic_train_examples": 500, "data.synthetic_test_examples": 100,
           "eval.num_examples": 100, "train.batch_size": 32, "runtime.checkpoint_every_steps": 10,
           "runtime.checkpoint_min_gap_secs": "null",
           "train.max_steps": 20}

    def train(**changes):
        return run_app("train", *settings(folder, run, **changes), timeout=300)

    def checkpoint_files() -> dict:
        return {path: value for path, value in snapshot(run_dir).items()
                if path.startswith(("model.ckpt-", "checkpoint"))}

    first = train()
    if first.returncode != ExitCode.DONE:
        raise ScenarioError(f"the first run failed: {first.stdout[-2000:]}{first.stderr[-2000:]}")
    before = checkpoint_files()
    changed = train(**{"train.recipe": "fast", "fast.width": 8, "train.max_steps": 40})
    after = checkpoint_files()
    restorable, total, problems = audit_checkpoints(run_dir)
    return ChangedModel(exit_code=changed.returncode, output=changed.stdout + changed.stderr,
                        checkpoints_before=before, checkpoints_after=after,
                        restorable=restorable, checkpoints=total, problems=problems)
