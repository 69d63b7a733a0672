"""A paper estimate, not a measurement: what one NVIDIA H100 would train, for both recipes.

    .venv/bin/python -m bench.h100_estimate [--host-overhead-us 190] [--tutorial-utilisation 0.10]
        [--fast-utilisation 0.35]

No GPU machine here can run TensorFlow, so this multiplies what is known: each recipe's training
FLOPs per image (counted from the model's layers, app/model/flops.py), the H100 SXM's dense peak in the
precision the recipe trains in on Ampere and newer (the tutorial in float32, which TensorFlow
computes in TF32 on tensor cores; the fast recipe in bfloat16), a stated share of that peak (small
convolutions and dense layers do not fill an H100: the tutorial's 64-channel 5x5 convolutions on
24x24 crops are bound by memory, not arithmetic), and the host's work per step, measured on this
machine's CPU by bench.host_overhead (ours, several steps per call; and, to compare, one call per
step as Keras fit does by default), spread over a step's batch.

    images/s = batch / (batch * flops_per_image / (peak * utilisation) + host_overhead_per_step)

The last line printed is one JSON object with every figure and every assumption.
"""
from __future__ import annotations

import argparse
import json

from app import config as configuration
from app.model.flops import training_flops_per_image
from app.model.recipes import for_config

# NVIDIA H100 SXM5 dense (no sparsity) peaks, TFLOP/s (NVIDIA's data sheet).
PEAK_TFLOPS = {"tf32": 494.7, "bfloat16": 989.4}
CIFAR10_TRAIN_IMAGES = 50_000
FAST_EPOCHS = 10  # airbench's and Page's 94% runs took about this many


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host-overhead-us", type=float, default=190.0,
                        help="host work per step, from bench.host_overhead (ours; default 190)")
    parser.add_argument("--one-step-a-call-us", type=float, default=1300.0,
                        help="host work per step with one call per step (Keras fit's default, "
                             "from bench.host_overhead; default 1300)")
    parser.add_argument("--tutorial-utilisation", type=float, default=0.10)
    parser.add_argument("--fast-utilisation", type=float, default=0.35)
    arguments = parser.parse_args()

    rows = []
    for recipe, precision, batch, utilisation in (
            ("tutorial", "tf32", 128, arguments.tutorial_utilisation),
            ("fast", "bfloat16", 512, arguments.fast_utilisation)):
        config = configuration.load(None, [f"train.recipe={recipe}",
                                           f"train.batch_size={batch}"], {})
        flops = training_flops_per_image(for_config(config).build_model())
        device_secs = batch * flops / (PEAK_TFLOPS[precision] * 1e12 * utilisation)
        step_secs = device_secs + arguments.host_overhead_us * 1e-6
        one_step_a_call_secs = device_secs + arguments.one_step_a_call_us * 1e-6
        rows.append({"recipe": recipe, "precision": precision, "batch_size": batch,
                     "training_gflop_per_image": flops / 1e9, "peak_tflops": PEAK_TFLOPS[precision],
                     "utilisation": utilisation, "device_ms_per_step": 1e3 * device_secs,
                     "host_overhead_ms_per_step": arguments.host_overhead_us / 1e3,
                     "images_per_sec": batch / step_secs,
                     "images_per_sec_one_step_a_call": batch / one_step_a_call_secs,
                     "images_per_sec_without_host_overhead": batch / device_secs})
    fast = rows[1]
    ten_epochs = FAST_EPOCHS * CIFAR10_TRAIN_IMAGES / fast["images_per_sec"]

    print("ESTIMATE for one H100 SXM, not measured (no GPU machine here runs TensorFlow):\n")
    print(f"{'recipe':<9} {'precision':<9} {'batch':>5} {'GFLOP/img':>9} {'share of peak':>13} "
          f"{'device ms':>9} {'host ms':>7} {'images/s':>9} {'one step a call':>16}")
    for row in rows:
        print(f"{row['recipe']:<9} {row['precision']:<9} {row['batch_size']:>5} "
              f"{row['training_gflop_per_image']:>9.3f} {row['utilisation']:>13.0%} "
              f"{row['device_ms_per_step']:>9.3f} {row['host_overhead_ms_per_step']:>7.3f} "
              f"{row['images_per_sec']:>9,.0f} {row['images_per_sec_one_step_a_call']:>16,.0f}")
    print(f"\nthe fast recipe's {FAST_EPOCHS} epochs ({FAST_EPOCHS * CIFAR10_TRAIN_IMAGES:,} images): "
          f"{ten_epochs:.1f} s of training (start-up, XLA's compilation and evaluation not counted)")
    print(json.dumps({"benchmark": "h100_estimate", "estimate": True, "rows": rows,
                      "fast_ten_epochs_secs": ten_epochs,
                      "host_overhead_us_per_step": arguments.host_overhead_us,
                      "one_step_a_call_us": arguments.one_step_a_call_us}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
