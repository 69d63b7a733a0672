"""Eval does not starve training: the trainer's speed while the scheduled eval runs beside it.

    .venv/bin/python -m bench.eval_contention [--rounds 8] [--window 10] [--eval-nice 0]

A real `python -m app train` and a real `python -m app eval` (the default eval settings,
eval.threads=1 among them, polling every second over the full 10,000-image test set) run side
by side. Once eval has printed its first result (TensorFlow imported, test set read, graph
traced), the benchmark alternates windows: eval running, then eval paused with SIGSTOP (the
trainer alone, on the same warm process), and so on. Pausing instead of restarting eval keeps
its start-up out of the figures and lets the windows be short, so that a change in what else
runs on this shared machine falls on both kinds of window alike.

Checkpoints come every 100 steps (every few seconds here) instead of the default 1,000, so that
eval always has a new checkpoint waiting: the worst case, eval busy all the time. The trainer's
speed is read from its own "step N/M" lines, timed as they arrive; the CPU each program and
everything else on the machine used comes from /proc.

Target: the trainer keeps >= 85% of its alone speed while eval runs.
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from app import config as configuration
from bench import machine
from bench.app_process import EVAL_RESULT_LINE, AppProcess, run_to_completion, write_config

MIN_SPEED_KEPT = 0.85
WARMUP_STEPS = 60          # past step 0's tracing and the first summary step
SETTLE_SECS = 1.0          # after pausing or resuming eval, before a window starts
EVAL_START_TIMEOUT = 300

SETTINGS = {
    "data": {"source": "synthetic", "synthetic_train_examples": 10_000,
             "synthetic_test_examples": 10_000},
    "train": {"max_steps": 1_000_000},
    "runtime": {"checkpoint_every_steps": 100, "checkpoint_min_gap_secs": None,
                "log_every_secs": 0.001},  # a line after every call
    "eval": {"every_secs": 1, "num_examples": 10_000},
}


def trainer_speed(trainer: AppProcess, batch_size: int, since: float, until: float) -> dict:
    """Steps and seconds between the first and the last step line in [since, until]."""
    steps = trainer.train_steps(since, until)
    if len(steps) < 2:
        raise RuntimeError(f"too few trainer log lines in a window:\n{trainer.tail()}")
    (first_time, first_step), (last_time, last_step) = steps[0], steps[-1]
    return {"steps": last_step - first_step, "seconds": last_time - first_time,
            "img_per_s": (last_step - first_step) * batch_size / (last_time - first_time)}


def timed_window(trainer: AppProcess, evaluator: AppProcess, seconds: float) -> dict:
    """Lets `seconds` pass; returns the window's bounds and the cores each program used."""
    started = time.monotonic()
    machine_before = machine.cpu_busy_seconds()
    train_before, eval_before = trainer.cpu_seconds(), evaluator.cpu_seconds()
    time.sleep(seconds)
    ended = time.monotonic()
    cores = {"train": (trainer.cpu_seconds() - train_before) / (ended - started),
             "eval": (evaluator.cpu_seconds() - eval_before) / (ended - started)}
    # This machine is shared: what other programs took in the window says how far to trust it.
    cores["others"] = max(0.0, (machine.cpu_busy_seconds() - machine_before) / (ended - started)
                          - cores["train"] - cores["eval"])
    return {"since": started, "until": ended, "cpu_cores": cores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8,
                        help="with-eval/alone window pairs (default 8)")
    parser.add_argument("--window", type=float, default=10.0,
                        help="seconds per window (default 10)")
    parser.add_argument("--eval-nice", type=int, default=0,
                        help="start eval with this niceness (19: it gets only the CPU the "
                             "trainer leaves); default 0, as supervisord starts it")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-eval-contention-") as folder_name:
        folder = Path(folder_name)
        config_file = write_config(folder, SETTINGS)
        run_to_completion("data", config_file, timeout=300)  # both read the same set
        figures = measure(config_file, arguments.rounds, arguments.window, folder / "log",
                          arguments.eval_nice)
    print_summary(figures)
    print(json.dumps(figures))
    return 0


def measure(config_file: Path, rounds: int, window: float, log_file: Path,
            eval_niceness: int) -> dict:
    batch_size = configuration.load(str(config_file), environ={}).train.batch_size
    print(machine.headline(machine.describe()))
    print(f"trainer: batch {batch_size}, a checkpoint every "
          f"{SETTINGS['runtime']['checkpoint_every_steps']} steps; eval: every "
          f"{SETTINGS['eval']['every_secs']} s over {SETTINGS['eval']['num_examples']:,} "
          f"images, default threads, niceness {eval_niceness}; {rounds} rounds of {window:g} s "
          f"with eval running + {window:g} s with eval paused\n")

    trainer = AppProcess("train", config_file, log_file=log_file)
    evaluator = AppProcess("eval", config_file, log_file=log_file, niceness=eval_niceness)
    windows = []
    try:
        wait_for_step(trainer, WARMUP_STEPS)
        evaluator.wait_for_line(EVAL_RESULT_LINE, EVAL_START_TIMEOUT)
        for round_number in range(1, rounds + 1):
            for eval_running in (True, False):
                (evaluator.resume if eval_running else evaluator.pause)()
                time.sleep(SETTLE_SECS)
                measured = timed_window(trainer, evaluator, window)
                measured.update(trainer_speed(trainer, batch_size, measured["since"],
                                              measured["until"]),
                                round=round_number, eval_running=eval_running,
                                evaluations=len(evaluator.matches(EVAL_RESULT_LINE,
                                                                  measured["since"])))
                windows.append(measured)
            print_round(*windows[-2:], header=round_number == 1)
    finally:
        evaluator.stop()
        trainer.stop()

    def rate(eval_running: bool) -> float:
        chosen = [w for w in windows if w["eval_running"] == eval_running]
        return sum(w["steps"] for w in chosen) * batch_size / sum(w["seconds"] for w in chosen)

    with_eval = [w for w in windows if w["eval_running"]]
    figures = {
        "benchmark": "eval_contention",
        "machine": machine.describe(),
        "batch_size": batch_size, "rounds": rounds, "window_secs": window,
        "eval_niceness": eval_niceness, "settings": SETTINGS,
        "train_alone_img_per_s": rate(False),
        "train_with_eval_img_per_s": rate(True),
        "speed_kept": rate(True) / rate(False),
        # Each round's own ratio: robust to a moment when other programs took the machine.
        "speed_kept_median_of_rounds": statistics.median(
            w["img_per_s"] / alone["img_per_s"] for w, alone in zip(windows[0::2], windows[1::2])),
        "speed_kept_by_round": [
            w["img_per_s"] / alone["img_per_s"]
            for w, alone in zip(windows[0::2], windows[1::2])],
        "eval_cpu_cores": sum(w["cpu_cores"]["eval"] for w in with_eval) / len(with_eval),
        "evaluations_per_minute": 60 * sum(w["evaluations"] for w in with_eval)
                                  / sum(w["until"] - w["since"] for w in with_eval),
        "other_programs_cpu_cores": sum(w["cpu_cores"]["others"] for w in windows) / len(windows),
        "windows": [{key: value for key, value in w.items() if key not in ("since", "until")}
                    for w in windows],
    }
    figures["targets"] = {
        "speed_kept >= 0.85": figures["speed_kept"] >= MIN_SPEED_KEPT,
        "speed_kept_median_of_rounds >= 0.85":
            figures["speed_kept_median_of_rounds"] >= MIN_SPEED_KEPT}
    return figures


def wait_for_step(trainer: AppProcess, step: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not any(s >= step for _, s in trainer.train_steps()):
        if trainer.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the trainer did not reach step {step}:\n{trainer.tail()}")
        time.sleep(0.5)


def print_round(running: dict, paused: dict, header: bool) -> None:
    if header:
        print(f"{'round':>5} {'img/s, eval running':>20} {'eval paused':>12} {'kept':>6} "
              f"{'train cores':>12} {'eval cores':>11} {'evaluations':>12} "
              f"{'cores others took':>18}")
    print(f"{running['round']:>5} {running['img_per_s']:>20.0f} {paused['img_per_s']:>12.0f} "
          f"{running['img_per_s'] / paused['img_per_s']:>6.0%} "
          f"{running['cpu_cores']['train']:>5.2f} /{paused['cpu_cores']['train']:>5.2f} "
          f"{running['cpu_cores']['eval']:>11.2f} {running['evaluations']:>12} "
          f"{running['cpu_cores']['others']:>7.2f} /{paused['cpu_cores']['others']:>5.2f}",
          flush=True)


def print_summary(f: dict) -> None:
    def verdict(name):
        return "met" if f["targets"][name] else "MISSED"

    by_round = sorted(f["speed_kept_by_round"])
    print(f"\ntrainer alone (eval paused):  {f['train_alone_img_per_s']:.0f} img/s")
    print(f"trainer while eval runs:      {f['train_with_eval_img_per_s']:.0f} img/s")
    print(f"speed kept, all windows:      {f['speed_kept']:.1%} "
          f"(target >= 85%: {verdict('speed_kept >= 0.85')})")
    print(f"speed kept, median of rounds: {f['speed_kept_median_of_rounds']:.1%} "
          f"(target >= 85%: {verdict('speed_kept_median_of_rounds >= 0.85')}; rounds "
          f"{by_round[0]:.0%} to {by_round[-1]:.0%})")
    print(f"eval used {f['eval_cpu_cores']:.2f} cores while running and finished "
          f"{f['evaluations_per_minute']:.1f} evaluations a minute")
    print(f"other programs on this machine took {f['other_programs_cpu_cores']:.2f} of its "
          f"{f['machine']['cores']} cores on average (0 on a quiet machine)")


if __name__ == "__main__":
    raise SystemExit(main())
