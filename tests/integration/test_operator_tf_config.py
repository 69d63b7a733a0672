"""A job whose TF_CONFIG is shaped as the Kubeflow training operator writes it for
docker/k8s/train-tfjob.yaml: a task of type "chief" beside the workers (whose index 0 is then not
the chief), and the operator's extra "environment" key. Two processes on localhost stand in for
the chief's and the worker's pods."""
import json
import subprocess
import sys

import pytest

from app.exit_codes import ExitCode
from tests.harness.environment import REPO_ROOT, app_environment, settings
from tests.harness.ports import free_ports
from tests.integration.test_distributed import SMALL_RUN
from tests.integration.test_train_eval import checkpoint_state

pytestmark = pytest.mark.slow


def test_a_chief_task_and_worker_0_train_together_and_only_the_chief_writes(tmp_path):
    chief_port, worker_port = free_ports(2)
    cluster = {"chief": [f"localhost:{chief_port}"], "worker": [f"localhost:{worker_port}"]}
    tasks = {"chief": 0, "worker": 0}
    processes = {}
    for task_type, index in tasks.items():
        tf_config = {"cluster": cluster, "task": {"type": task_type, "index": index},
                     "environment": "cloud"}
        processes[task_type] = subprocess.Popen(
            [sys.executable, "-m", "app", "train", *settings(
                tmp_path, SMALL_RUN,
                **{"runtime.strategy": "multi_worker", "train.max_steps": 40})],
            cwd=REPO_ROOT, env=app_environment(TF_CONFIG=json.dumps(tf_config),
                                               TMPDIR=str(tmp_path)),
            stdout=open(tmp_path / f"{task_type}.log", "w"), stderr=subprocess.STDOUT)
    try:
        codes = {task_type: process.wait(timeout=600) for task_type, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    output = {task_type: (tmp_path / f"{task_type}.log").read_text() for task_type in tasks}
    assert codes == {"chief": ExitCode.DONE, "worker": ExitCode.DONE}, output

    for task_type in tasks:
        assert "step 40/40" in output[task_type] and "2 replicas" in output[task_type]
    assert "saved model.ckpt-40" in output["chief"]
    assert "saved model.ckpt" not in output["worker"]  # worker 0, yet not the chief here
    assert checkpoint_state(tmp_path / "train" / "default") == "model.ckpt-40"
    assert len(list((tmp_path / "train" / "default").glob("events.out.tfevents.*"))) == 1
    assert not list(tmp_path.glob("cifar10-worker-*"))  # the worker's own folder is gone
