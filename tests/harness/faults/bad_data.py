"""Damaged data, each case through the whole appliance (entrypoint.sh) and the trainer alone
(`python -m app train`, as supervisord restarts it): exit 2 naming the file, no supervisord, no
checkpoint."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness.faults.outcome import Outcome, ScenarioError
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


def bad_data(folder: Path) -> Outcome:
    faults = []
    checked = 0
    synthetic = {"data": {"source": "synthetic", "synthetic_train_examples": 500,
                          "synthetic_test_examples": 100},
                 "eval": {"num_examples": 100, "batch_size": 50}, "train": {"max_steps": 20}}
    for number, (name, damage) in enumerate(DAMAGES.items()):
        stack = NativeStack(_new_folder(folder / f"case-{number}"), synthetic)
        made = stack.run(str(ENTRYPOINT), "data", timeout=120)
        if made.returncode != ExitCode.DONE:
            raise ScenarioError(f"cannot make the synthetic set: {made.stdout}{made.stderr}")
        names = damage(next(stack.data_dir.rglob("cifar-10-batches-bin")))
        checked += 1
        if problem := _refuses_data(stack, names):
            faults.append(f"synthetic set: {name}: {problem}")

    # The real source: a mounted folder without its test batch, and an archive that is not
    # CIFAR-10 (here a file: URL, as a mirror or a half-finished download would be).
    real = {"data": {"source": "cifar10"}, "eval": {"num_examples": 100}}
    stack = NativeStack(_new_folder(folder / "real-missing"), real)
    batches = stack.data_dir / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for number in range(1, 6):
        (batches / f"data_batch_{number}.bin").write_bytes(b"\0" * 3073 * 10)
    checked += 1
    if problem := _refuses_data(stack, "test_batch.bin"):
        faults.append(f"CIFAR-10 folder: the test batch missing: {problem}")

    archive = folder / "cifar-10-binary.tar.gz"
    subprocess.run(["tar", "-czf", archive, "-C", batches.parent, "cifar-10-batches-bin"],
                   check=True)
    stack = NativeStack(_new_folder(folder / "real-md5"), {**real, "data": {
        "source": "cifar10", "url": archive.as_uri(), "md5": PUBLISHED_MD5}})
    checked += 1
    if problem := _refuses_data(stack, "MD5"):
        faults.append(f"a download with the wrong MD5: {problem}")
    return Outcome("bad_data", {"bad_data_refused": f"{checked - len(faults)}/{checked}"}, faults)


def _new_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _refuses_data(stack: NativeStack, names: str) -> str | None:
    """What is wrong with how the appliance, then the trainer alone, met the damaged data."""
    for who, command in (("the appliance", [str(ENTRYPOINT)]),
                         ("the trainer alone", [sys.executable, "-m", "app", "train"])):
        finished = run_in_own_session(command, stack.folder, stack.env, timeout=120)
        output = finished.output.strip()[-400:]
        if finished.exit_code != ExitCode.BAD_INPUT:
            return f"{who} exited {finished.exit_code}, not {ExitCode.BAD_INPUT:d}: {output}"
        if names not in finished.output:
            return f"{who} did not name {names!r}: {output}"
        if finished.left_running or stack.socket_path.exists():
            return f"{who} started supervisord or left {finished.left_running} running"
        if trained := sorted(path.name for path in stack.train_dir.rglob("model.ckpt-*")):
            return f"{who} trained on it: {trained}"
    return None
