"""Start-up latency: from starting the appliance to TensorBoard answering, and to the first
training scalar a user can see in it.

    .venv/bin/python -m bench.startup [--runs 3] [--container]

Natively, the stack is started as `make run` starts it, through ./entrypoint.sh (which makes the
data set ready, then execs supervisord with train, eval and tensorboard), by the test suite's own
NativeStack (tests/harness/native_stack.py), in a fresh folder each run: a cold start, data set
generation included. With --container (as root) the same is measured for the image on the real
Docker engine, through the container tests' own harness (tests/harness/docker_engine.py): a
dockerd of its own under a temporary folder, the image built first as the README's CPU command
builds it (Compose, from a clean copy of the checkout, on the local Debian base: a few minutes,
timed, but not as start-up), then `docker run -p 127.0.0.1:PORT:6006 -v DIR:/cifar10_train`
once per run; nothing is left behind.

Milestones, polled every 0.2 s from outside as a user would see them:
  data ready           the `data |` lines say the set is there
  trainer at step 0    the trainer is set up (TensorFlow imported, data read, model built) and
                       says it starts from step 0
  TensorBoard answers  GET / returns 200
  first train scalar   /data/plugin/scalars/tags lists a scalar of the training run (named
                       after its folder, paths.run), and /data/plugin/scalars/scalars?run=RUN&tag=...
                       returns a point of it

The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from bench import machine
from tests.harness import log_lines
from tests.harness.environment import run_name
from tests.harness.containers import TrackedContainers
from tests.harness.docker_engine import DockerEngine
from tests.harness.image import (CPU_IMAGE, clean_checkout, compose_build,
                                 import_debian_base_into_docker)
from tests.harness.native_stack import NativeStack
from tests.harness.ports import answers_http, free_port
from tests.harness.waiting import GaveUp, wait_until

POLL_SECS = 0.2
GIVE_UP_SECS = 300
# Defaults everywhere, except what a machine without internet needs (the synthetic set).
STACK_CONFIG = {"data": {"source": "synthetic"}}
CONTAINER_ENV = {"CIFAR10_DATA_SOURCE": "synthetic"}
# The tutorial's loss curve first; any scalar of the train run counts if it is not there yet.
PREFERRED_TAGS = ("total_loss", "total_loss (raw)", "cross_entropy")


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def first_train_scalar(port: int, run: str) -> str | None:
    """The tag of a scalar of the training run `run` that TensorBoard already serves a point of,
    else None."""
    base_url = f"http://127.0.0.1:{port}"
    try:
        tags = get_json(base_url + "/data/plugin/scalars/tags").get(run, {})
        preference = {tag: rank for rank, tag in enumerate(PREFERRED_TAGS)}
        for tag in sorted(tags, key=lambda t: (preference.get(t, len(preference)), t)):
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            if get_json(f"{base_url}/data/plugin/scalars/scalars?{query}"):
                return tag
    except (OSError, ValueError):
        pass
    return None


def watch_milestones(started_at: float, port: int, run: str, log: Callable[[], str],
                     alive: Callable[[], bool], log_interval: float = POLL_SECS) -> dict:
    """Polls until TensorBoard serves a train scalar; returns seconds from start to each."""
    seconds: dict[str, float] = {}
    found = {"scalar_tag": None, "next_log_check": 0.0}

    def reached(milestone: str) -> None:
        seconds.setdefault(milestone, time.monotonic() - started_at)

    def every_milestone_reached() -> bool:
        if time.monotonic() >= found["next_log_check"]:
            if not alive():
                raise GaveUp("the appliance exited")
            text = log()
            if log_lines.find(log_lines.DATA_SPLIT, text, split="test"):
                reached("data ready")
            if log_lines.FRESH_START.search(text) or log_lines.RESUMED.search(text):
                reached("trainer at step 0")
            found["next_log_check"] = time.monotonic() + log_interval
        if "TensorBoard answers" not in seconds and answers_http(port):
            reached("TensorBoard answers")
        if "TensorBoard answers" in seconds and (tag := first_train_scalar(port, run)):
            reached("first train scalar")
            found["scalar_tag"] = tag
        return "first train scalar" in seconds

    try:
        wait_until(every_milestone_reached, GIVE_UP_SECS, "a train scalar in TensorBoard",
                   interval=POLL_SECS)
    except GaveUp as gave_up:
        raise GaveUp(f"{gave_up}; the log ends:\n{log()[-3000:]}") from None
    return {"seconds": seconds, "scalar_tag": found["scalar_tag"]}


# ---------------------------------------------------------------------------------------------

def native_runs(runs: int) -> list[dict]:
    results = []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
            stack = NativeStack(Path(folder), config=STACK_CONFIG)
            stack.start()
            try:
                result = watch_milestones(stack.started_at, stack.port, stack.run_dir.name,
                                          stack.log, lambda: stack.process.poll() is None)
            finally:
                stopped = stack.stop()
        result.update(run=run, where="native", stopped_after_secs=stopped.get("stopped_after"))
        print_run(result, header=not results)
        results.append(result)
    return results


def container_runs(runs: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-startup-docker-") as work:
        docker = DockerEngine(Path(work) / "docker")
        try:
            docker.start()
            build(docker, Path(work))
            results = []
            for run in range(1, runs + 1):
                port = free_port()
                with tempfile.TemporaryDirectory(prefix="bench-startup-") as train_dir, \
                        TrackedContainers(docker, CPU_IMAGE) as containers:
                    container = containers.run(env=CONTAINER_ENV, ports={port: 6006},
                                               volumes={Path(train_dir): "/cifar10_train"})
                    # Reading a container's log and state costs docker calls: once a second.
                    result = watch_milestones(container.started_at, port,
                                              run_name(environ=CONTAINER_ENV), container.logs,
                                              container.is_running, log_interval=1.0)
                result.update(run=run, where="container")
                print_run(result, header=not results)
                results.append(result)
            return results
        finally:
            docker.stop()


def build(docker: DockerEngine, work: Path) -> None:
    print("building the image (not timed as start-up) ...", flush=True)
    started = time.monotonic()
    import_debian_base_into_docker(docker, work)
    compose_build(docker, clean_checkout(work / "cifar10-appliance"))
    print(f"built {CPU_IMAGE} in {time.monotonic() - started:.0f} s", flush=True)


# ---------------------------------------------------------------------------------------------

MILESTONES = ("data ready", "trainer at step 0", "TensorBoard answers", "first train scalar")


def print_run(result: dict, header: bool) -> None:
    if header:
        print(f"{'where':<10} {'run':>3} " + " ".join(f"{m:>20}" for m in MILESTONES)
              + "  scalar")
    cells = " ".join(f"{result['seconds'][m]:>19.1f}s" if m in result["seconds"] else f"{'-':>20}"
                     for m in MILESTONES)
    print(f"{result['where']:<10} {result['run']:>3} {cells}  {result['scalar_tag']}", flush=True)


def medians(results: list[dict]) -> dict:
    return {m: statistics.median(r["seconds"][m] for r in results)
            for m in MILESTONES if all(m in r["seconds"] for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts of each kind (default 3)")
    parser.add_argument("--container", action="store_true",
                        help="also in the container, on the real Docker engine (as root)")
    arguments = parser.parse_args()

    print(machine.headline(machine.describe()))
    print("from the start (./entrypoint.sh, or docker run) to each milestone, a fresh folder "
          "each run; default config with the synthetic set\n")
    results = native_runs(arguments.runs)
    if arguments.container:
        results += container_runs(arguments.runs)

    figures = {"benchmark": "startup", "machine": machine.describe(), "runs": results,
               "native_median_secs": medians([r for r in results if r["where"] == "native"])}
    container_results = [r for r in results if r["where"] == "container"]
    if container_results:
        figures["container_median_secs"] = medians(container_results)
    print()
    for where in ("native", "container"):
        if f"{where}_median_secs" in figures:
            print(f"{where} medians: " + ", ".join(
                f"{m} {s:.1f} s" for m, s in figures[f"{where}_median_secs"].items()))
    if not arguments.container:
        print("container: not measured (pass --container; needs root and the Docker engine: "
              ".ci/install-system-deps.sh)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
