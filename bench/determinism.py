"""What train.deterministic costs: training images a second with and without op determinism, in
turns, each recipe.

    .venv/bin/python -m bench.determinism [--rounds 3] [--secs 15]

TensorFlow's op determinism is a switch of the whole process that cannot be turned off again, so
each measurement is a process of its own (`--child`): app.train.Trainer built from the config a
user would write (train.seed 1, train.deterministic true or false), its graphs traced, then calls
of CALL_STEPS plain steps (train_steps, as the loop runs them) for `--secs`. Rounds alternate
off, on, off, on... so that a neighbour's load hits both alike; the ratio is of the medians. Each
round also gives images per second of the process's own CPU time (all its threads), which a
neighbour's load disturbs far less than the wall clock.
The fast recipe runs at width 16 and batch 128, to fit this CPU; the tutorial as it is.
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from bench import machine
from tests.harness.environment import REPO_ROOT, app_environment

CALL_STEPS = 10
RECIPES = {
    "tutorial": ["train.recipe=tutorial"],
    "fast": ["train.recipe=fast", "fast.width=16", "train.batch_size=128"],
}


def child(recipe: str, deterministic: bool, folder: str, secs: float) -> None:
    import tensorflow as tf

    from app import config as configuration
    from app.train.trainer import Trainer

    config = configuration.load(overrides=[
        f"paths.train_dir={folder}/train", f"paths.data_dir={folder}/data",
        "data.source=synthetic", "data.synthetic_train_examples=5000", "train.seed=1",
        f"train.deterministic={str(deterministic).lower()}", "train.max_steps=100000000",
        "train.mixed_precision=float32", *RECIPES[recipe]], environ={})
    trainer = Trainer(config)
    batches = iter(trainer.dataset_from(0))
    steps = tf.constant(CALL_STEPS)
    for _ in range(2):  # traces the graph; the pipeline's threads start
        trainer.train_steps(batches, steps).numpy()
    calls, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < secs:
        trainer.train_steps(batches, steps).numpy()
        calls += 1
    images = calls * CALL_STEPS * trainer.global_batch_size
    print(json.dumps({"img_per_s": images / (time.perf_counter() - started),
                      "img_per_cpu_s": images / (time.process_time() - cpu_started)}))


def measure(recipe: str, deterministic: bool, folder: str, secs: float) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.determinism", "--child", recipe,
         "--deterministic", str(deterministic), "--folder", folder, "--secs", str(secs)],
        cwd=REPO_ROOT, env=app_environment(TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
        text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secs", type=float, default=15.0)
    parser.add_argument("--child")
    parser.add_argument("--deterministic", choices=("True", "False"))
    parser.add_argument("--folder")
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.deterministic == "True", arguments.folder,
              arguments.secs)
        return 0

    description = machine.describe()
    print(machine.headline(description))
    figures = {"machine": description, "rounds": arguments.rounds, "secs": arguments.secs}
    with tempfile.TemporaryDirectory() as folder:
        for recipe in RECIPES:
            rounds = {False: [], True: []}
            for round_number in range(1, arguments.rounds + 1):
                for deterministic in (False, True):
                    rounds[deterministic].append(measure(recipe, deterministic, folder,
                                                         arguments.secs))
                print(f"{recipe} round {round_number}: off {rounds[False][-1]['img_per_s']:,.0f} "
                      f"img/s, on {rounds[True][-1]['img_per_s']:,.0f} img/s", flush=True)
            figures[recipe] = {}
            for figure in ("img_per_s", "img_per_cpu_s"):
                off = statistics.median(each[figure] for each in rounds[False])
                on = statistics.median(each[figure] for each in rounds[True])
                figures[recipe].update({f"off_{figure}": round(off, 1),
                                        f"on_{figure}": round(on, 1),
                                        f"on_over_off_{figure}": round(on / off, 3)})
                print(f"{recipe}: deterministic {on:,.0f} vs {off:,.0f} {figure}: "
                      f"x{on / off:.3f}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
