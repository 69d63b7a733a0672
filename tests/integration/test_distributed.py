"""Training on several replicas: MirroredStrategy on two logical CPU devices, and two worker
processes on localhost joined by TF_CONFIG into one MultiWorkerMirroredStrategy job."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.exit_codes import ExitCode
from tests.harness.environment import REPO_ROOT, app_environment, run_app, settings
from tests.harness.ports import free_ports
from tests.integration.test_train_eval import checkpoint_state, event_tags, scalar_steps

pytestmark = pytest.mark.slow


SMALL_RUN = {  # settings() adds its folders and the synthetic set
    "data.synthetic_train_examples": 2000, "data.synthetic_test_examples": 200,
    "eval.num_examples": 200, "train.batch_size": 32,
    "runtime.checkpoint_every_steps": 20, "runtime.checkpoint_min_gap_secs": "null",
    "runtime.summary_every_steps": 20, "runtime.summary_max_share": "null",
}


def test_mirrored_on_two_cpu_devices_trains_two_replicas(tmp_path):
    result = run_app("train", *settings(tmp_path, SMALL_RUN, **{
        "runtime.strategy": "mirrored", "runtime.cpu_devices": 2, "train.max_steps": 40}),
        timeout=600)
    assert result.returncode == ExitCode.DONE, result.stdout + result.stderr
    assert re.search(r"^step 40/40, .*sec/batch; 2 replicas; eta", result.stdout, re.MULTILINE)
    # 2 replicas x 32 images a step: the examples/sec figure counts the whole global batch.
    rate, seconds = map(float, re.search(r"\((\d+\.\d) examples/sec; (\d+\.\d+) sec/batch",
                                         result.stdout).groups())
    assert rate == pytest.approx(64 / seconds, rel=0.02)
    assert checkpoint_state(tmp_path / "train" / "default") == "model.ckpt-40"
    tags = event_tags(tmp_path / "train" / "default")
    assert tags["replicas"] == "scalars" and tags["conv1/activations"] == "histograms"


class Job:
    """Two workers of one job on localhost, with their output kept for the asserts."""

    def __init__(self, root: Path, **changes):
        ports = free_ports(2)
        cluster = {"worker": [f"localhost:{port}" for port in ports]}
        self.temporary = root / "tmp"
        self.temporary.mkdir(exist_ok=True)
        self.logs = [root / f"worker-{index}.log" for index in range(2)]
        self.workers = []
        for index in range(2):
            environment = app_environment(
                TF_CONFIG=json.dumps({"cluster": cluster,
                                      "task": {"type": "worker", "index": index}}),
                TMPDIR=str(self.temporary))
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "app", "train",
                 *settings(root, SMALL_RUN, **{"runtime.strategy": "multi_worker", **changes})],
                cwd=REPO_ROOT, env=environment, stdout=open(self.logs[index], "w"),
                stderr=subprocess.STDOUT))

    def output(self, index: int) -> str:
        return self.logs[index].read_text()

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        return [worker.wait(max(1, deadline - time.monotonic())) for worker in self.workers]

    def stop(self):
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


@pytest.fixture
def job_factory():
    jobs = []

    def start(root, **changes):
        jobs.append(Job(root, **changes))
        return jobs[-1]
    yield start
    for job in jobs:
        job.stop()


def test_two_workers_train_together_only_the_chief_writes_and_they_space_summaries_alike(
        tmp_path, job_factory):
    # Each worker measures its own pace and its own summary steps' cost, and the two must still
    # run the same number of steps a call (each step is a collective) and the same summary steps
    # (another graph, with collectives of its own), or both wait for each other forever. A share
    # so small that every summary step's measured cost widens the spacing; after step 80 nothing
    # is due before max_steps, so the pace alone sizes the calls.
    widening = {"runtime.summary_every_steps": 5, "runtime.summary_max_share": 0.0001,
                "runtime.checkpoint_every_steps": "null"}
    job = job_factory(tmp_path, **{"train.max_steps": 120, **widening})
    assert job.wait(timeout=600) == [ExitCode.DONE] * 2, job.output(0) + job.output(1)
    for index in range(2):
        assert re.search(r"^step 120/120, .*2 replicas", job.output(index), re.MULTILINE)
    assert checkpoint_state(tmp_path / "train" / "default") == "model.ckpt-120"
    assert "saved model.ckpt-120" in job.output(0) and "saved model.ckpt" not in job.output(1)
    assert len(list((tmp_path / "train" / "default").glob("events.out.tfevents.*"))) == 1
    # The non-chief worker saved into a folder of its own, and removed it at the end.
    assert not list(job.temporary.glob("cifar10-worker-*"))
    # Step 0 (which traces), then steps on a grid that widened (ideally 5, 10, 20, 40, 80 as each
    # measured cost doubles the spacing; a summary step timed no slower than the plain steps
    # around it narrows it back to 5, which a loaded machine does now and then), and the last.
    steps = scalar_steps(tmp_path / "train" / "default", "total_loss")
    assert steps[0] == 0 and steps[-1] == 119, steps
    assert max(later - earlier for earlier, later in zip(steps, steps[1:])) > 5, steps
    assert on_the_summary_grid(steps, every=5, max_steps=120), steps


def on_the_summary_grid(steps: list[int], every: int, max_steps: int) -> bool:
    """Whether each summary step after the first follows from the one before as the trainer
    spaces them (app/train/cadence.py): the next multiple of a spacing of every x 2^k that is at
    most twice the one in effect, or the last step."""
    spacings = {every}
    for earlier, later in zip(steps, steps[1:]):
        candidates = {every * 2 ** k for k in range(20)
                      if every * 2 ** k <= 2 * max(spacings)}
        spacings = {spacing for spacing in candidates
                    if min((earlier // spacing + 1) * spacing, max_steps - 1) == later}
        if not spacings:
            return False
    return True


def test_a_killed_worker_fails_the_job_fast_and_both_resume(tmp_path, job_factory):
    job = job_factory(tmp_path, **{"train.max_steps": 100_000})
    deadline = time.monotonic() + 300
    while "saved model.ckpt-20" not in job.output(0):
        assert time.monotonic() < deadline and job.workers[0].poll() is None, job.output(0)
        time.sleep(0.5)
    job.workers[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor_code = job.workers[0].wait(timeout=120)
    assert survivor_code not in (0, None)
    assert time.monotonic() - killed < 60
    assert "error: lost contact with another worker of the job" in job.output(0)
    newest = checkpoint_state(tmp_path / "train" / "default")
    assert f"resume from the chief's newest checkpoint, {newest}" in job.output(0)

    resumed = job_factory(tmp_path, **{"train.max_steps": int(newest.split("-")[1]) + 20})
    assert resumed.wait(timeout=600) == [ExitCode.DONE] * 2, resumed.output(0) + resumed.output(1)
    for index in range(2):
        assert f"resumed from {newest}" in resumed.output(index)


def test_a_stop_asked_of_one_worker_stops_the_job_at_one_step_saved_by_the_chief(
        tmp_path, job_factory):
    # supervisord or Docker may reach one trainer of a job before the other, or only one: each
    # step and each save is a collective, so both must leave the loop after the same call.
    job = job_factory(tmp_path, **{"train.max_steps": 100_000})
    deadline = time.monotonic() + 300
    while "saved model.ckpt-20" not in job.output(0):
        assert time.monotonic() < deadline and job.workers[0].poll() is None, job.output(0)
        time.sleep(0.5)
    job.workers[1].send_signal(signal.SIGTERM)  # the worker only, not the chief
    assert job.wait(timeout=120) == [ExitCode.DONE] * 2, job.output(0) + job.output(1)
    stopped = [re.search(r"stopped at step (\d+) on request", job.output(index))
               for index in range(2)]
    assert all(stopped), job.output(0) + job.output(1)
    step = stopped[0].group(1)
    assert stopped[1].group(1) == step
    assert checkpoint_state(tmp_path / "train" / "default") == f"model.ckpt-{step}"
