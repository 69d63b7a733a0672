"""Runs side by side: how the one eval keeps up while 1, 2 or 4 runs train at once, and what
TensorBoard takes to start on a volume of 4 runs.

    .venv/bin/python -m bench.runs [--runs 1,2,4] [--window 150] [--tensorboard-starts 3]

For each count, a fresh volume: that many real `python -m app train --set paths.run=run-N` and
one real `python -m app eval` side by side, all with the appliance's defaults but for the
synthetic set (10,000 training and 10,000 test images), half the tutorial's learning rate (see
SETTINGS) and a checkpoint every 20 steps (every few seconds), so that eval always has
checkpoints waiting: the most it can do. Once every trainer trains and eval has recorded its
first evaluation (or 2 minutes have passed without one), a window of `--window` seconds is
measured:

  evaluations per minute    eval's result lines in the window, over its length
  seconds per evaluation    the median time between consecutive result lines
  runs evaluated            how many of the runs had an evaluation in the window, and how many
                            evaluations each
  waiting at the end        per run, the listed checkpoints newer than its newest evaluation
  trainer img/s             each trainer's speed from its own step lines (all runs summed too)
  others' cores             what other programs on this shared machine took meanwhile (/proc)

Then, on the volume the 4 runs left, `python -m app tensorboard` is started
`--tensorboard-starts` times: seconds from start to /data/runs listing every folder of event files
(each run, and each eval/ that eval wrote), and its memory (RSS) then and 2 reload intervals
later, with its peak.

The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from app.volume.results import read_results
from bench import machine
from bench.app_process import (EVAL_RESULT_LINE, TRAIN_STEP_LINE, AppProcess, run_to_completion,
                               write_config)
from tests.harness.checkpoints import listed_checkpoints
from tests.harness.ports import free_port

SETTINGS = {
    "data": {"source": "synthetic", "synthetic_train_examples": 10_000,
             "synthetic_test_examples": 10_000},
    "train": {"max_steps": 1_000_000},
    "runtime": {"checkpoint_every_steps": 20, "checkpoint_min_gap_secs": None,
                "keep_checkpoints": 20},
    # At the tutorial's 0.1 a run on the synthetic set now and then diverges within a few
    # hundred steps, and a diverged trainer leaves eval nothing to do: half of it, for a window
    # in which every trainer surely trains.
    "tutorial": {"initial_learning_rate": 0.05},
    "eval": {"every_secs": 1},
}
BATCH_SIZE = 128  # the default train.batch_size
START_TIMEOUT_SECS = 600
FIRST_EVALUATION_WAIT_SECS = 120
POLL_SECS = 0.2


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def eval_beside(folder: Path, data_dir: Path, runs: int, window: float) -> dict:
    """Eval's throughput while `runs` trainers train; the volume is left in folder/train."""
    folder.mkdir(parents=True)
    config_file = write_config(folder, {**SETTINGS, "paths": {"train_dir": str(folder / "train"),
                                                              "data_dir": str(data_dir)}})
    logs = folder / "programs.log"
    trainers = [AppProcess("train", config_file, f"--set=paths.run=run-{number}", log_file=logs)
                for number in range(runs)]
    evaluator = AppProcess("eval", config_file, log_file=logs)
    everyone = [*trainers, evaluator]
    try:
        for trainer in trainers:
            trainer.wait_for_line(TRAIN_STEP_LINE, START_TIMEOUT_SECS)
        # Eval runs at niceness 19: where the trainers keep every core busy it gets next to no
        # CPU and may record nothing at all; that is then what the window measures.
        with contextlib.suppress(RuntimeError):
            evaluator.wait_for_line(EVAL_RESULT_LINE, FIRST_EVALUATION_WAIT_SECS)
        if evaluator.poll() is not None:  # a crash, not a starved eval: nothing to measure
            raise RuntimeError(f"eval exited (exit code {evaluator.poll()}) before the window; "
                               f"it printed:\n{evaluator.tail()}")
        cpu_before = sum(process.cpu_seconds() for process in everyone)
        machine_before = machine.cpu_busy_seconds()
        started = time.monotonic()
        time.sleep(window)  # the measurement window itself
        ended = time.monotonic()
        own_cores = (sum(process.cpu_seconds() for process in everyone) - cpu_before) / window
        others_cores = max(0.0, (machine.cpu_busy_seconds() - machine_before) / window - own_cores)
        trainer_speeds = [_images_per_sec(trainer, started, ended) for trainer in trainers]
        eval_rss = rss_bytes(evaluator.pid)
        waiting = {f"run-{number}": _waiting(folder / "train" / f"run-{number}")
                   for number in range(runs)}
    finally:
        for process in everyone:
            process.stop()
    arrivals = [arrived for arrived, _ in evaluator.matches(EVAL_RESULT_LINE)]
    in_window = [arrived for arrived in arrivals if started <= arrived <= ended]
    # Each gap ends at a result in the window; the first one starts at the result before it.
    gaps = [after - before for before, after in zip(arrivals, arrivals[1:])
            if started <= after <= ended]
    evaluations_by_run = {f"run-{number}": 0 for number in range(runs)}
    for arrived, match in evaluator.matches(EVAL_RESULT_LINE):
        if started <= arrived <= ended:
            evaluations_by_run[match["run"]] += 1
    return {
        "runs_training": runs,
        "window_secs": round(ended - started, 1),
        "evaluations": len(in_window),
        "evaluations_per_min": round(len(in_window) * 60 / (ended - started), 2),
        "secs_per_evaluation": round(statistics.median(gaps), 1) if gaps else None,
        "runs_evaluated_in_window": sum(1 for count in evaluations_by_run.values() if count),
        "evaluations_by_run": evaluations_by_run,
        "checkpoints_waiting_at_the_end": waiting,
        "trainer_img_per_s": [round(speed) for speed in trainer_speeds],
        "trainers_img_per_s_total": round(sum(trainer_speeds)),
        "eval_rss_mib": round(eval_rss / 2**20),
        "own_cores": round(own_cores, 2),
        "others_cores": round(others_cores, 2),
    }


def _waiting(run_dir: Path) -> int:
    """The listed checkpoints of a run newer than its newest evaluation."""
    evaluated = max((result["step"] for result in read_results(run_dir / "eval")), default=-1)
    return sum(1 for step in listed_checkpoints(run_dir) if step > evaluated)


def _images_per_sec(trainer: AppProcess, since: float, until: float) -> float:
    steps = trainer.train_steps(since, until)
    if len(steps) < 2:
        return 0.0
    (first_time, first_step), (last_time, last_step) = steps[0], steps[-1]
    return (last_step - first_step) * BATCH_SIZE / (last_time - first_time)


def tensorboard_start(folder: Path, runs: list[str], reload_secs: float = 5.0) -> dict:
    """Starts TensorBoard on folder/train (as the appliance does) and times /data/runs listing
    every one of `runs`; its memory then and two reload intervals later."""
    port = free_port()
    own = folder / "tensorboard"
    own.mkdir(exist_ok=True)
    config_file = write_config(own, {**SETTINGS, "paths": {"train_dir": str(folder / "train")},
                                     "tensorboard": {"port": port,
                                                     "reload_every_secs": reload_secs}})
    server = AppProcess("tensorboard", config_file, log_file=own / "tensorboard.log")
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"TensorBoard exited {server.exit_code}:\n{server.tail()}")
            if time.monotonic() - server.started_at > START_TIMEOUT_SECS:
                raise RuntimeError(f"TensorBoard did not list every run:\n{server.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs",
                                            timeout=5) as response:
                    listed = json.loads(response.read())
            except OSError:
                listed = []
            if set(runs) <= set(listed):
                break
            time.sleep(POLL_SECS)
        listed_after = time.monotonic() - server.started_at
        rss_listed = rss_bytes(server.pid)
        time.sleep(2 * reload_secs)  # its reloads read the rest of the event files meanwhile
        rss_later, rss_peak = rss_bytes(server.pid), rss_bytes(server.pid, "VmHWM")
    finally:
        server.stop()
    return {"runs_listed_after_secs": round(listed_after, 1),
            "rss_mib_when_listed": round(rss_listed / 2**20),
            "rss_mib_after_2_reloads": round(rss_later / 2**20),
            "peak_rss_mib": round(rss_peak / 2**20)}


def volume_size(train_dir: Path) -> dict:
    events = list(train_dir.rglob("events.out.tfevents.*"))
    return {"event_files": len(events),
            "event_mib": round(sum(path.stat().st_size for path in events) / 2**20, 1),
            "volume_mib": round(sum(path.stat().st_size for path in train_dir.rglob("*")
                                    if path.is_file()) / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="1,2,4", help="how many runs train at once, in turn")
    parser.add_argument("--window", type=float, default=150.0, help="seconds measured each")
    parser.add_argument("--tensorboard-starts", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work folder to look at")
    arguments = parser.parse_args(argv)
    counts = [int(count) for count in arguments.runs.split(",")]

    about = machine.describe()
    print(machine.headline(about), flush=True)
    work = Path(tempfile.mkdtemp(prefix="cifar10-runs-"))
    figures: dict = {"eval_beside_training": [], "tensorboard": {}}
    try:
        data_config = write_config(work, {**SETTINGS, "paths": {"data_dir": str(work / "data")}})
        run_to_completion("data", data_config, timeout=600)
        for count in counts:
            print(f"{count} run(s) training beside eval ...", flush=True)
            result = eval_beside(work / f"{count}-runs", work / "data", count, arguments.window)
            figures["eval_beside_training"].append(result)
            print(json.dumps(result), flush=True)
        largest = max(counts)
        volume = work / f"{largest}-runs"
        # Every folder that holds event files: each trainer's, and the eval/ of each run that eval
        # got to (none, where it was starved).
        runs = sorted({str(events.parent.relative_to(volume / "train"))
                       for events in (volume / "train").rglob("events.out.tfevents.*")})
        starts = []
        for number in range(arguments.tensorboard_starts):
            starts.append(tensorboard_start(volume, runs))
            print(f"TensorBoard start {number + 1}: {json.dumps(starts[-1])}", flush=True)
        figures["tensorboard"] = {
            "volume_runs": largest, "runs_listed": runs, **volume_size(volume / "train"),
            "starts": starts,
            "median_runs_listed_after_secs": statistics.median(
                start["runs_listed_after_secs"] for start in starts),
            "median_rss_mib_after_2_reloads": statistics.median(
                start["rss_mib_after_2_reloads"] for start in starts)}
    finally:
        if arguments.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'runs':>4} {'evals/min':>9} {'s/eval':>7} {'runs evaluated':>14} "
          f"{'trainers img/s':>15} {'others cores':>12}")
    for row in figures["eval_beside_training"]:
        print(f"{row['runs_training']:>4} {row['evaluations_per_min']:>9} "
              f"{row['secs_per_evaluation'] or '-':>7} {row['runs_evaluated_in_window']:>14} "
              f"{row['trainers_img_per_s_total']:>15} {row['others_cores']:>12}")
    board = figures["tensorboard"]
    print(f"TensorBoard on {board['volume_runs']} runs ({board['event_mib']} MiB of events): "
          f"all runs listed after {board['median_runs_listed_after_secs']} s (median of "
          f"{len(board['starts'])}), {board['median_rss_mib_after_2_reloads']} MiB RSS")
    print(json.dumps({"machine": about, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
