"""The GPU check's measurements (bench/gpu_check.sh installs, then runs this).

    python -m bench.gpu_check [--seconds-per-config 4] [--together-secs 60] [--allow-cpu]

1. Speed: for every recipe of app.recipes.RECIPES, the real Trainer (its pipeline, train_step and
   summary cadence) in float32 and in mixed precision (bfloat16; float16 with dynamic loss
   scaling), each without and with XLA,
   through the config keys train.mixed_precision and runtime.xla. Images per second, and the
   GPU memory the configuration peaked at.
2. Together: a real `python -m app train` and `python -m app eval` share the one GPU for
   --together-secs seconds (full-size synthetic set, a checkpoint every 200 steps or 10 s, so
   that eval is always busy), to show that neither runs out of memory. GPU memory is sampled
   with nvidia-smi meanwhile.

Without a GPU it refuses, unless --allow-cpu (to check the script itself on a CPU machine).
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

WARMUP_STEPS = 12           # step 0 traces the summary graph; XLA compiles on the next ones
OUT_OF_MEMORY = re.compile(r"OOM|out of memory|RESOURCE_EXHAUSTED|ResourceExhausted", re.I)


# How each configuration is called here, and its train.mixed_precision / runtime.xla value.
PRECISIONS = {"float32": "float32", "mixed bfloat16": "bfloat16", "mixed float16": "float16"}
XLA_SETTINGS = {"XLA off": "disabled", "XLA on": "enabled"}


def speed_matrix(recipes: list[str], seconds: float, folder: Path) -> list[dict]:
    import tensorflow as tf

    from app import config as configuration
    from app.train.trainer import Trainer
    from bench.ours import OurTrainer

    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    rows = []
    for recipe, (precision, precision_key), (xla, xla_key) in itertools.product(
            recipes, PRECISIONS.items(), XLA_SETTINGS.items()):
        run_dir = folder / f"{recipe}-{precision_key}-{xla_key}"
        config = configuration.load(overrides=[
            f"paths.train_dir={run_dir}", f"paths.data_dir={folder}/data",
            "data.source=synthetic", f"train.recipe={recipe}",
            f"train.mixed_precision={precision_key}", f"runtime.xla={xla_key}"], environ={})
        row = {"recipe": recipe, "precision": precision, "xla": xla,
               "batch_size": config.train.batch_size}
        try:
            trainer = Trainer(config)
            ours = OurTrainer(trainer)
            if on_gpu:
                tf.config.experimental.reset_memory_stats("GPU:0")
            started = time.perf_counter()
            ours.run(WARMUP_STEPS)  # traces both graphs; XLA compiles
            row["warmup_secs"] = time.perf_counter() - started
            row["img_per_s"] = ours.run_for(seconds)
            if on_gpu:
                peak_bytes = tf.config.experimental.get_memory_info("GPU:0")["peak"]
                row["gpu_peak_mib"] = peak_bytes / 2**20
        except Exception as error:  # one configuration failing must not hide the others
            row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        print_speed_row(row, header=not rows)
        rows.append(row)
    return rows


def print_speed_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'recipe':<8} {'precision':<15} {'XLA':<8} {'batch':>5} {'img/s':>9} "
              f"{'warm-up s':>10} {'GPU peak MiB':>13}")
    if "error" in row:
        print(f"{row['recipe']:<8} {row['precision']:<15} {row['xla']:<8} "
              f"{row['batch_size']:>5} FAILED: {row['error']}", flush=True)
        return
    peak = f"{row['gpu_peak_mib']:.0f}" if "gpu_peak_mib" in row else "-"
    print(f"{row['recipe']:<8} {row['precision']:<15} {row['xla']:<8} {row['batch_size']:>5} "
          f"{row['img_per_s']:>9.0f} {row['warmup_secs']:>10.1f} {peak:>13}", flush=True)


# ---------------------------------------------------------------------------------------------

def gpu_memory_used_mib() -> list[int]:
    """Memory in use on each GPU, per nvidia-smi; empty without it."""
    if not shutil.which("nvidia-smi"):
        return []
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, timeout=20)
    return [int(value) for value in result.stdout.split()] if result.returncode == 0 else []


def train_and_eval_together(seconds: float, folder: Path) -> dict:
    from bench.app_process import (EVAL_RESULT_LINE, AppProcess, run_to_completion,
                                   write_config)

    settings = {
        "data": {"source": "synthetic", "synthetic_train_examples": 50_000,
                 "synthetic_test_examples": 10_000},
        "train": {"max_steps": 10_000_000},
        "runtime": {"checkpoint_every_steps": 200, "checkpoint_every_secs": 10},
        "eval": {"every_secs": 2, "num_examples": 10_000},
    }
    folder.mkdir(parents=True, exist_ok=True)
    config_file = write_config(folder, settings)
    log_file = folder / "programs.log"
    run_to_completion("data", config_file, timeout=300)
    print(f"\ntrain and eval together for {seconds:.0f} s (a checkpoint every 200 steps or 10 s, "
          f"eval every 2 s over 10,000 images) ...", flush=True)
    trainer = AppProcess("train", config_file, log_file=log_file)
    evaluator = AppProcess("eval", config_file, log_file=log_file)
    peak_gpu_mib = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            if trainer.poll() is not None or evaluator.poll() is not None:
                break
            peak_gpu_mib = max([peak_gpu_mib, *gpu_memory_used_mib()])
            time.sleep(1)
        ran_secs = time.monotonic() - started
        both_ran_through = trainer.poll() is None and evaluator.poll() is None
    finally:
        evaluator.stop()
        trainer.stop()
    log = log_file.read_text(errors="replace")
    out_of_memory = sorted({line.strip()[:200] for line in log.splitlines()
                            if OUT_OF_MEMORY.search(line)})
    steps = trainer.train_steps()
    speed = ((steps[-1][1] - steps[0][1]) / (steps[-1][0] - steps[0][0])
             if len(steps) >= 2 and steps[-1][0] > steps[0][0] else 0.0)
    result = {
        "seconds": ran_secs, "both_ran_through": both_ran_through,
        "train_exit_code": trainer.exit_code, "eval_exit_code": evaluator.exit_code,
        "train_steps_per_s": speed, "last_step": steps[-1][1] if steps else 0,
        "evaluations": len(evaluator.matches(EVAL_RESULT_LINE)),
        "peak_gpu_memory_used_mib": peak_gpu_mib or None,
        "out_of_memory_lines": out_of_memory,
    }
    result["passed"] = both_ran_through and not out_of_memory and result["evaluations"] > 0
    print(f"ran {ran_secs:.0f} s: trainer at step {result['last_step']} "
          f"({speed:.1f} steps/s), {result['evaluations']} evaluations, exit codes after stop: "
          f"train {trainer.exit_code}, eval {evaluator.exit_code}; peak GPU memory used "
          f"{peak_gpu_mib or '?'} MiB; out-of-memory lines: {len(out_of_memory)}")
    if not result["passed"]:
        print("the end of their log:\n" + "\n".join(log.splitlines()[-40:]))
    return result


# ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-config", type=float, default=4.0,
                        help="timed seconds per recipe/precision/XLA configuration (default 4)")
    parser.add_argument("--together-secs", type=float, default=60.0,
                        help="seconds train and eval share the GPU (default 60; 0 skips)")
    parser.add_argument("--recipes", help="comma-separated (default: all of app.recipes.RECIPES)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run without a GPU (to check this script on a CPU machine)")
    arguments = parser.parse_args()

    import tensorflow as tf

    from app.model.recipes import RECIPES
    from bench import machine

    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    print(machine.headline(machine.describe()))
    print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}; "
          f"GPUs: {[d.get('device_name', '?') for d in details] or 'none'}")
    if not gpus and not arguments.allow_cpu:
        print("error: TensorFlow sees no GPU (is tensorflow[and-cuda] installed, and the "
              "driver visible?). --allow-cpu runs the check on the CPU anyway.")
        return 2

    recipes = arguments.recipes.split(",") if arguments.recipes else list(RECIPES)
    print(f"recipes: {', '.join(recipes)}; {arguments.seconds_per_config:g} s timed per "
          f"configuration\n")
    with tempfile.TemporaryDirectory(prefix="bench-gpu-check-") as folder:
        rows = speed_matrix(recipes, arguments.seconds_per_config, Path(folder))
        together = (train_and_eval_together(arguments.together_secs, Path(folder) / "together")
                    if arguments.together_secs > 0 else None)

    failed = [row for row in rows if "error" in row]
    print(json.dumps({
        "benchmark": "gpu_check", "machine": machine.describe(),
        "tensorflow": tf.__version__, "gpus": details, "speed": rows, "together": together,
        "passed": not failed and (together is None or together["passed"]),
    }, default=str))
    return 0 if not failed and (together is None or together["passed"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
