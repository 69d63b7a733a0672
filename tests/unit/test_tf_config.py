"""TF_CONFIG as a user writes it for a job across machines: what the trainer refuses before it
connects to anyone (exit 2, one line), and how it names a process of the job that it lost."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from app.exit_codes import ExitCode
from app.train import distribution
from tests.harness.environment import REPO_ROOT, app_environment

TWO_HOSTS = {"worker": ["host-a:2222", "host-b:2222"]}


def as_tf_config(cluster: dict, task_type: str = "worker", index: int = 0) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


BAD_TF_CONFIGS = {
    "not JSON": ("{'cluster': {'worker': ['host-a:2222']}}", "TF_CONFIG is not JSON"),
    "not an object": ('["host-a:2222"]', "TF_CONFIG must be a JSON object"),
    "task type not in the cluster": (as_tf_config(TWO_HOSTS, "chief"),
                                     "TF_CONFIG's task (chief 0) is not in its cluster "
                                     "(worker 0..1)"),
    "task index beyond the cluster": (as_tf_config(TWO_HOSTS, index=2),
                                      "TF_CONFIG's task (worker 2) is not in its cluster"),
    "no task": (json.dumps({"cluster": TWO_HOSTS}), "TF_CONFIG's task (None 0) is not in"),
    "one address twice": (as_tf_config({"worker": ["host-a:2222", "host-a:2222"]}),
                          "TF_CONFIG names the address host-a:2222 twice (worker 0 and "
                          "worker 1)"),
    "one address for the chief and a worker": (
        as_tf_config({"chief": ["host-a:2222"], "worker": ["host-a:2222"]}, "chief"),
        "TF_CONFIG names the address host-a:2222 twice (chief 0 and worker 0)"),
    "addresses not a list": (as_tf_config({"worker": "host-a:2222"}),
                             "TF_CONFIG's cluster must map each job to a list"),
}


@pytest.mark.parametrize("name", BAD_TF_CONFIGS)
def test_a_bad_tf_config_is_refused_with_what_is_wrong(name, monkeypatch):
    value, message = BAD_TF_CONFIGS[name]
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(distribution.DistributionError) as refused:
        distribution.tf_config()
    assert str(refused.value).startswith(message)
    assert refused.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("value", [
    as_tf_config(TWO_HOSTS, index=1),
    as_tf_config({"chief": ["host-a:2222"], "worker": ["host-b:2222"]}, "chief"),
    # The Kubeflow training operator's shape: an index as a string is read as TensorFlow reads it.
    json.dumps({"cluster": TWO_HOSTS, "task": {"type": "worker", "index": "1"},
                "environment": "cloud"}),
])
def test_a_good_tf_config_passes(value, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", value)
    assert distribution.tf_config()["cluster"]


def test_no_tf_config_is_a_job_of_one(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.tf_config() == {} and distribution.is_chief()


def test_the_trainer_refuses_it_in_one_line_before_it_connects(tmp_path):
    # Two tasks at one address: TensorFlow itself would bind the port twice or wait for ever.
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "app", "train", "--set", f"paths.train_dir={tmp_path / 'train'}",
         "--set", f"paths.data_dir={tmp_path / 'data'}", "--set", "data.source=synthetic",
         "--set", "runtime.strategy=multi_worker"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env=app_environment(TF_CONFIG=as_tf_config({"worker": ["localhost:1", "localhost:1"]})))
    assert result.returncode == ExitCode.BAD_INPUT, result.stdout + result.stderr
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("config error:")]
    assert ours == ["config error: TF_CONFIG names the address localhost:1 twice (worker 0 and "
                    "worker 1): each process of the job needs an address of its own"]
    assert not (tmp_path / "train").exists(), "it began a run before refusing"
    assert time.monotonic() - started < 120


# -- naming the process a job lost ----------------------------------------------------------

# TensorFlow's own words, as seen on a job of two whose worker 1 stopped answering (its
# coordination service) and whose peer died outright (its connections).
UNHEALTHY = ("Collective ops is aborted by: Error reported from /job:worker/task:1: The following "
             "tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\n"
             "The tasks have crashed.")
UNREACHABLE = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:host-a:2222: "
               "Failed to connect to remote host: Connection refused")


@pytest.mark.parametrize("own_index, message, named", [
    (0, UNHEALTHY, "worker 1 at host-b:2222"),
    (1, UNREACHABLE, "worker 0 at host-a:2222"),
    (0, "Socket closed", None),
])
def test_the_lost_process_is_named_as_tf_config_names_it(own_index, message, named,
                                                          monkeypatch):
    monkeypatch.setenv("TF_CONFIG", as_tf_config(TWO_HOSTS, index=own_index))
    assert distribution.lost_contact(message) == named
