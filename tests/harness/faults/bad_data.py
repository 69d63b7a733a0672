"""Damaged data, each case through the whole appliance (entrypoint.sh) and the trainer alone
(`python -m app train`, as supervisord restarts it): how each exited, what it said, whether it
started supervisord and what it trained. tests/faults checks: exit 2 naming the file, no
supervisord, no checkpoint."""
from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness.faults.outcome import ScenarioError
from tests.harness.native_stack import ENTRYPOINT, NativeStack, run_in_own_session

PUBLISHED_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # the default config's data.md5


def _truncate(batches: Path) -> str:
    path = batches / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1500])  # cut in the middle of a record
    return path.name


def _grow(batches: Path) -> str:
    with open(batches / "test_batch.bin", "ab") as stream:
        stream.write(b"\0" * 100)
    return "test_batch.bin"


def _garbage(batches: Path) -> str:
    path = batches / "data_batch_2.bin"
    path.write_bytes(random.Random(5).randbytes(path.stat().st_size))
    return path.name


def _remove_test(batches: Path) -> str:
    (batches / "test_batch.bin").unlink()
    return "test_batch.bin"


DAMAGES = {"a truncated batch file": _truncate, "a test batch too long": _grow,
           "garbage bytes": _garbage, "the test batch missing": _remove_test}
WHO = ("the appliance", "the trainer alone")


@dataclasses.dataclass
class DataRun:
    """How one program met one case of damaged data."""
    case: str                # "synthetic set: garbage bytes", ...
    who: str                 # one of WHO
    names: str               # what its message must name: the file, or "MD5"
    exit_code: int
    output: str
    left_running: list[int]  # what it started that was still running when it had exited
    started_supervisord: bool  # supervisord's socket was there afterwards
    trained: list[str]       # the checkpoint files it wrote


@dataclasses.dataclass
class BadData:
    runs: list[DataRun]      # each case, through each of WHO

    def figures(self) -> dict:
        return {"bad_data_runs": len(self.runs),
                "exited_2": sum(run.exit_code == ExitCode.BAD_INPUT for run in self.runs),
                "named_the_file": sum(run.names in run.output for run in self.runs),
                "started_supervisord": sum(run.started_supervisord for run in self.runs),
                "trained_on_it": sum(bool(run.trained) for run in self.runs)}


def bad_data(folder: Path) -> BadData:
    runs: list[DataRun] = []
    synthetic = {"data": {"source": "synthetic", "synthetic_train_examples": 500,
                          "synthetic_test_examples": 100},
                 "eval": {"num_examples": 100, "batch_size": 50}, "train": {"max_steps": 20}}
    for number, (name, damage) in enumerate(DAMAGES.items()):
        stack = NativeStack(_new_folder(folder / f"case-{number}"), synthetic)
        made = stack.run(str(ENTRYPOINT), "data", timeout=120)
        if made.returncode != ExitCode.DONE:
            raise ScenarioError(f"cannot make the synthetic set: {made.stdout}{made.stderr}")
        names = damage(next(stack.data_dir.rglob("cifar-10-batches-bin")))
        runs += _run_on_damaged_data(stack, f"synthetic set: {name}", names)

    # The real source: a mounted folder without its test batch, and an archive that is not
    # CIFAR-10 (here a file: URL, as a mirror or a half-finished download would be).
    real = {"data": {"source": "cifar10"}, "eval": {"num_examples": 100}}
    stack = NativeStack(_new_folder(folder / "real-missing"), real)
    batches = stack.data_dir / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for number in range(1, 6):
        (batches / f"data_batch_{number}.bin").write_bytes(b"\0" * 3073 * 10)
    runs += _run_on_damaged_data(stack, "CIFAR-10 folder: the test batch missing",
                                 "test_batch.bin")

    archive = folder / "cifar-10-binary.tar.gz"
    subprocess.run(["tar", "-czf", archive, "-C", batches.parent, "cifar-10-batches-bin"],
                   check=True)
    stack = NativeStack(_new_folder(folder / "real-md5"), {**real, "data": {
        "source": "cifar10", "url": archive.as_uri(), "md5": PUBLISHED_MD5}})
    runs += _run_on_damaged_data(stack, "a download with the wrong MD5", "MD5")
    return BadData(runs)


def _new_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _run_on_damaged_data(stack: NativeStack, case: str, names: str) -> list[DataRun]:
    """The appliance, then the trainer alone, on the damaged data."""
    runs = []
    for who, command in zip(WHO, ([str(ENTRYPOINT)], [sys.executable, "-m", "app", "train"])):
        finished = run_in_own_session(command, stack.folder, stack.env, timeout=120)
        runs.append(DataRun(
            case=case, who=who, names=names, exit_code=finished.exit_code,
            output=finished.output, left_running=finished.left_running,
            started_supervisord=stack.socket_path.exists(),
            trained=sorted(path.name for path in stack.train_dir.rglob("model.ckpt-*"))))
    return runs
