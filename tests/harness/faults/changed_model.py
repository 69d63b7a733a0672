"""A config edit on a train_dir that holds a run: train.recipe tutorial -> fast. The trainer must
refuse (exit 2, naming train.recipe) and leave the run's checkpoints as they were, not start from
step 0 and save over them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness.checkpoints import audit_checkpoints
from tests.harness.environment import REPO_ROOT, app_environment
from tests.harness.faults.bad_configs import snapshot
from tests.harness.faults.outcome import Outcome, ScenarioError


def changed_model(folder: Path) -> Outcome:
    run_dir = folder / "train" / "a-run"
    settings = {"paths.train_dir": folder / "train", "paths.run": run_dir.name,
                "paths.data_dir": folder / "data",
                "data.source": "synthetic", "data.synthetic_train_examples": 500,
                "data.synthetic_test_examples": 100, "eval.num_examples": 100,
                "train.batch_size": 32, "runtime.checkpoint_every_steps": 10,
                "train.max_steps": 20}

    def train(**changes) -> subprocess.CompletedProcess:
        overrides = [f"--set={key}={value}" for key, value in {**settings, **changes}.items()]
        return subprocess.run([sys.executable, "-m", "app", "train", *overrides], cwd=REPO_ROOT,
                              env=app_environment(), capture_output=True, text=True, timeout=300)

    def checkpoint_files() -> dict:
        return {path: value for path, value in snapshot(run_dir).items()
                if path.startswith(("model.ckpt-", "checkpoint"))}

    first = train()
    if first.returncode != ExitCode.DONE:
        raise ScenarioError(f"the first run failed: {first.stdout[-2000:]}{first.stderr[-2000:]}")
    before = checkpoint_files()
    changed = train(**{"train.recipe": "fast", "fast.width": 8, "train.max_steps": 40})
    output = changed.stdout + changed.stderr
    faults = []
    if changed.returncode != ExitCode.BAD_INPUT or "train.recipe" not in output:
        faults.append(f"the trainer exited {changed.returncode} without naming train.recipe: "
                      f"{output.strip()[-500:]}")
    if checkpoint_files() != before:
        faults.append("the run's checkpoints changed: the new model saved over them")
    restorable, total, problems = audit_checkpoints(run_dir)
    return Outcome("changed_model", {"refused_with_exit": changed.returncode,
                                     "old_run_restorable": f"{restorable}/{total}"},
                   faults + problems)
