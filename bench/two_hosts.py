"""A training job across two hosts, on the real Docker engine: its faults, and what a step costs.

    .venv/bin/python -m bench.two_hosts [--stops N] [--window SECS] [--only faults|steps]
                                        (as root; ~10-15 min on 2 cores)

In a Docker engine of its own (tests/harness/docker_engine.py), the CPU image built as the
README's CPU command builds it, and the compose profile `multi-worker` run as a user runs it
(tests/harness/two_host_job.py: chief and worker as containers of their own, eval and TensorBoard
beside them):

  faults  kill -9 of the worker's container, then of the chief's, each half-way between two
          checkpoints; the worker's network cut (`docker network disconnect`) until the chief
          names it, and 5 s more; `docker compose stop chief worker` then `start`, --stops
          times. Each row: recovered by itself, seconds from the fault to the chief's first step
          after both resumed, steps lost (the step the job stood at, less the checkpoint it
          resumed from), and whether any TensorBoard curve (its HTTP API) repeats a step or
          runs backward once it shows the steps after the resume.
  steps   each recipe's step time on one host (one container, one replica) and on two (the
          profile's two trainers, one replica each, the same batch per replica), over --window
          seconds of progress lines after a warm-up, and the bytes the worker's network interface
          sent and received per step meanwhile, beside the gradients' size (the trainable
          parameters in float32). Nothing else runs meanwhile (no eval, no TensorBoard).

Then an ESTIMATE, not a measurement, for two GPU hosts on a 25 Gb/s network: the step's device
time (bench.h100_estimate's, section 10 of bench/RESULTS.md) plus the measured bytes at that
line rate, unoverlapped, as the job's collectives run after the backward pass. The last line
printed is one JSON object with every figure; bench/RESULTS.md has them.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import machine
from tests.harness.containers import TrackedContainers
from tests.harness.docker_engine import DockerEngine, missing_tools
from tests.harness.image import (CPU_IMAGE, BuildFailed, clean_checkout, compose_build,
                                 import_debian_base_into_docker)
from tests.harness.tensorboard_api import TensorBoardAPI, curves, going_back
from tests.harness.two_host_job import RUN, SMALL_JOB, TRAINERS, TwoHostJob
from tests.harness.waiting import GaveUp, wait_until

SEC_PER_BATCH = re.compile(r"^step (?P<step>\d+)/\d+, .*\((?P<rate>[\d.]+) examples/sec; "
                           r"(?P<secs>[\d.]+) sec/batch", re.MULTILINE)
# Each recipe at a batch this CPU steps through in well under a second or two, per replica.
RECIPES = {"tutorial": {"CIFAR10_TRAIN_RECIPE": "tutorial", "CIFAR10_TRAIN_BATCH_SIZE": "128"},
           "fast": {"CIFAR10_TRAIN_RECIPE": "fast", "CIFAR10_TRAIN_BATCH_SIZE": "32"}}
LINE_RATE_BYTES_PER_SEC = 25e9 / 8
# bench.h100_estimate (bench/RESULTS.md, section 10): an H100's step at each recipe's default
# batch, an ESTIMATE.
GPU_STEP_SECS = {"tutorial": (0.55e-3, 128), "fast": (3.6e-3, 512)}
WARM_UP_SECS = 20
CURVES_WITHIN_SECS = 120


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--only", choices=("faults", "steps"))
    options = parser.parse_args()
    if missing := missing_tools():
        print(f"missing {', '.join(missing)}: run .ci/install-system-deps.sh as root")
        return 2
    print(machine.headline(machine.describe()), flush=True)
    figures: dict = {"benchmark": "two_hosts", "machine": machine.describe()}
    with tempfile.TemporaryDirectory(prefix="bench-two-hosts-") as work:
        work = Path(work)
        docker = DockerEngine(work / "docker")
        try:
            docker.start()
            import_debian_base_into_docker(docker, work)
            checkout = clean_checkout(work / "checkout")
            figures["build_secs"] = round(compose_build(docker, checkout).seconds)
            if options.only in (None, "faults"):
                figures["faults"] = faults(docker, checkout, work / "faults", options.stops)
                print_faults(figures["faults"])
            if options.only in (None, "steps"):
                figures["steps"] = {recipe: step_costs(docker, checkout, work / recipe, recipe,
                                                       options.window)
                                    for recipe in RECIPES}
                figures["estimate_two_gpu_hosts_25gbit"] = estimate(figures["steps"])
                print_steps(figures["steps"], figures["estimate_two_gpu_hosts_25gbit"])
        except (BuildFailed, GaveUp) as failed:
            print(failed)
            return 1
        finally:
            removed = docker.stop()
            print(f"Docker engine stopped; removed {len(removed)} things it had added to the host")
    print(json.dumps(figures, default=str))
    return 0


# -- faults -----------------------------------------------------------------------------------

def faults(docker, checkout: Path, folder: Path, stops: int) -> list[dict]:
    folder.mkdir()
    job = TwoHostJob.in_copy_of(docker, checkout, folder)
    rows = []
    try:
        job.start_up()
        job.wait_for_checkpoint_beyond(None)
        api = TensorBoardAPI(job.port)
        plan = [("kill", "worker"), ("kill", "chief"), ("cut", "worker"),
                *[("stop", None)] * stops]
        for kind, service in plan:
            mid_gap(job)
            fault = (job.kill_9(service) if kind == "kill" else
                     job.cut_off(service) if kind == "cut" else job.stop_trainers_and_start())
            row = fault.row()
            row["curves backward"] = curves_backward(job, api, fault)
            row["evaluations so far"] = job.evaluations()
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
        rows.append({"eval and tensorboard": job.neighbours()})
    finally:
        job.down()
    return rows


def mid_gap(job: TwoHostJob) -> None:
    """Waits for the next checkpoint, then half the time the one before it took: a fault then
    lands half-way between two checkpoints, as a random one does on average."""
    before = job.newest_checkpoint()
    started = time.monotonic()
    job.wait_for_checkpoint_beyond(before)
    time.sleep((time.monotonic() - started) / 2)


def curves_backward(job: TwoHostJob, api: TensorBoardAPI, fault) -> list[str] | str:
    """What TensorBoard's curves of the run show once they reach past the resumed step."""
    resumed = fault.resumed_from.get("chief")
    if resumed is None:
        return "not resumed"
    try:
        wait_until(lambda: max(api.steps("scalars", RUN, "total_loss"), default=-1)
                   > fault.step_before, CURVES_WITHIN_SECS,
                   f"TensorBoard's total_loss beyond step {fault.step_before}", 2)
    except (GaveUp, OSError, AssertionError) as error:
        return f"unseen: {error}"
    return going_back(curves(api, RUN))


def print_faults(rows: list[dict]) -> None:
    print("\n| fault | recovered by itself | seconds to recover | steps lost | curves backward |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        if "fault" in row:
            print(f"| {row['fault']} | {'yes' if row['recovered by itself'] else 'no'} | "
                  f"{row['seconds to recover']} | {row['steps lost']} | "
                  f"{row['curves backward'] or 'none'} |")


# -- what a step costs ------------------------------------------------------------------------

def step_costs(docker, checkout: Path, folder: Path, recipe: str, window: float) -> dict:
    folder.mkdir()
    shell = {**SMALL_JOB, **RECIPES[recipe], "CIFAR10_RUNTIME_CHECKPOINT_EVERY_STEPS": "null",
             "CIFAR10_RUNTIME_LOG_EVERY_SECS": "2"}
    one = one_host(docker, folder, shell, window)
    job = TwoHostJob.in_copy_of(docker, checkout, folder, shell=shell)
    try:
        job.start_up(TRAINERS)
        two = measured(lambda: job.text("chief"), window,
                       lambda: network_bytes(docker, job.name_of("worker")))
        two["gradient_bytes"] = gradient_bytes(recipe)
    finally:
        job.down()
    return {"batch_per_replica": int(RECIPES[recipe]["CIFAR10_TRAIN_BATCH_SIZE"]),
            "one_host": one, "two_hosts": two,
            "two_over_one_step_time": round(two["sec_per_step"] / one["sec_per_step"], 2)}


def one_host(docker, folder: Path, shell: dict, window: float) -> dict:
    train_dir = folder / "one-host"
    train_dir.mkdir()
    with TrackedContainers(docker, CPU_IMAGE) as containers:
        container = containers.run("train", env={key: value for key, value in shell.items()
                                                 if key.startswith("CIFAR10_")},
                                   volumes={train_dir: "/cifar10_train"})
        return measured(container.logs, window)


def measured(logs, window: float, counters=None) -> dict:
    """sec/batch over `window` seconds of progress lines after the warm-up, and the bytes
    `counters()` counted meanwhile, per step."""
    wait_until(lambda: len(SEC_PER_BATCH.findall(logs())) >= 2, 600, "steady progress lines", 2)
    time.sleep(WARM_UP_SECS)
    first_line = len(SEC_PER_BATCH.findall(logs()))
    before = counters() if counters else None
    started = time.monotonic()
    first_step = int(SEC_PER_BATCH.findall(logs())[-1][0])
    time.sleep(window)
    lines = SEC_PER_BATCH.findall(logs())
    after = counters() if counters else None
    last_step = int(lines[-1][0])
    secs = [float(line[2]) for line in lines[first_line:]]
    result = {"sec_per_step": round(statistics.median(secs), 4),
              "examples_per_sec": round(statistics.median(float(line[1])
                                                          for line in lines[first_line:]), 1),
              "steps": last_step - first_step, "secs": round(time.monotonic() - started, 1)}
    if counters and last_step > first_step:
        steps = last_step - first_step
        result["sent_bytes_per_step"] = round((after[0] - before[0]) / steps)
        result["received_bytes_per_step"] = round((after[1] - before[1]) / steps)
    return result


def network_bytes(docker, container: str) -> tuple[int, int]:
    """What the container's interface sent and received so far, as its kernel counts it."""
    counted = docker("exec", container, "cat", "/sys/class/net/eth0/statistics/tx_bytes",
                     "/sys/class/net/eth0/statistics/rx_bytes").stdout.split()
    return int(counted[0]), int(counted[1])


def gradient_bytes(recipe: str) -> int:
    """The recipe's trainable parameters in float32: one gradient of each, what a step adds up
    across the hosts."""
    from app import config
    from app.model import recipes

    model = recipes.for_config(config.load(None, environ={"CIFAR10_TRAIN_RECIPE": recipe})
                               ).build_model()
    return 4 * sum(int(variable.shape.num_elements()) for variable in model.trainable_variables)


def estimate(steps: dict) -> dict:
    """Two GPU hosts on 25 Gb/s, an ESTIMATE: each host's step at its default batch, then its
    share of the ring all-reduce (with two hosts each sends and receives one gradient's bytes),
    at the line rate and not overlapped with the step."""
    estimated = {}
    for recipe, measured_costs in steps.items():
        device_secs, batch = GPU_STEP_SECS[recipe]
        sent = measured_costs["two_hosts"].get("sent_bytes_per_step",
                                               measured_costs["two_hosts"]["gradient_bytes"])
        network_secs = sent / LINE_RATE_BYTES_PER_SEC
        one = batch / device_secs
        two = 2 * batch / (device_secs + network_secs)
        estimated[recipe] = {"ESTIMATE": True, "batch_per_gpu": batch,
                             "device_step_ms": device_secs * 1e3,
                             "network_ms_per_step": round(network_secs * 1e3, 2),
                             "one_host_img_per_sec": round(one),
                             "two_hosts_img_per_sec": round(two),
                             "speed_up": round(two / one, 2)}
    return estimated


def print_steps(steps: dict, estimated: dict) -> None:
    print("\n| recipe (batch per replica) | one host, s/step | two hosts, s/step | two/one | "
          "sent per step | gradients |")
    print("| --- | --- | --- | --- | --- | --- |")
    for recipe, costs in steps.items():
        two = costs["two_hosts"]
        print(f"| {recipe} ({costs['batch_per_replica']}) | {costs['one_host']['sec_per_step']} "
              f"| {two['sec_per_step']} | {costs['two_over_one_step_time']} | "
              f"{two.get('sent_bytes_per_step', 0) / 1e6:.2f} MB | "
              f"{two['gradient_bytes'] / 1e6:.2f} MB |")
    print("\nESTIMATE, two GPU hosts on 25 Gb/s:")
    for recipe, figures in estimated.items():
        print(f"  {recipe}: {figures}")


if __name__ == "__main__":
    sys.exit(main())
