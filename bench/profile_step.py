"""Where a training step's time goes: TensorFlow's profiler on Trainer.train_step, op by op.

    .venv/bin/python -m bench.profile_step [--steps 20] [--summary-step] [--top 15]

Runs the Trainer's own pipeline and train_step for a few warm steps under
tf.profiler.experimental, then reads the captured trace with the converter TensorFlow ships
(the one TensorBoard's profile plugin uses) and prints the ops that took the most self time,
per step, and the same grouped by what they are (convolutions, LRN, pooling, ...). With
--summary-step it profiles summary steps instead of plain ones.

Nothing to install: no TensorBoard plugin is needed to read the numbers.
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import tensorflow as tf
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

from app import config as configuration
from app.train.trainer import Trainer
from bench import machine

WARMUP_STEPS = 5

# Op types by what they do, so that the table says "LRN" rather than listing its three kernels.
OP_GROUPS = [
    ("convolution", ("Conv2D", "FusedConv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput",
                     "Conv2DBackpropFilterWithBias")),
    ("local response normalization", ("LRN", "LRNGrad")),
    ("max pooling", ("MaxPool", "MaxPoolGrad")),
    ("dense (matmul)", ("MatMul", "FusedMatMul", "BatchMatMulV2")),
    ("optimizer and moving averages", ("ResourceApplyGradientDescent", "AssignSubVariableOp",
                                       "AssignAddVariableOp", "AssignVariableOp",
                                       "ReadVariableOp")),
    ("summaries", ("WriteSummary", "WriteHistogramSummary", "WriteImageSummary",
                   "WriteScalarSummary", "EncodePng", "Histogram", "StridedSlice")),
]


def group_of(op_type: str) -> str:
    bare = op_type.removeprefix("_MklNative").removeprefix("_Mkl").removeprefix("_")
    for group, members in OP_GROUPS:
        if bare in members:
            return group
    return "other (element-wise, reductions, ...)"


def framework_op_stats(profile_folder: Path) -> list[dict]:
    """The profiler's 'framework_op_stats' table as a list of rows (one per op name)."""
    planes = [str(path) for path in profile_folder.rglob("*.xplane.pb")]
    table, ok = profiler_plugin.xspace_to_tools_data(planes, "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"the profiler's converter could not read {planes}")
    sheet = json.loads(table)[0]
    columns = [column["id"] for column in sheet["cols"]]
    return [dict(zip(columns, (cell["v"] for cell in row["c"]))) for row in sheet["rows"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="profiled steps (default 20)")
    parser.add_argument("--summary-step", action="store_true",
                        help="profile summary steps instead of plain ones")
    parser.add_argument("--top", type=int, default=15, help="ops listed (default 15)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="a config override, as for the app")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as folder:
        config = configuration.load(overrides=[
            f"paths.train_dir={folder}/train", f"paths.data_dir={folder}/data",
            "data.source=synthetic", *arguments.overrides], environ={})
        trainer = Trainer(config)
        batches = iter(trainer.dataset_from(0))
        with trainer.writer.as_default():
            for step in range(WARMUP_STEPS):
                trainer.train_step(*next(batches), write_summaries=step == 0)
            tf.profiler.experimental.start(f"{folder}/profile")
            for _ in range(arguments.steps):
                trainer.train_step(*next(batches),
                                   write_summaries=arguments.summary_step).numpy()
            tf.profiler.experimental.stop()
        rows = framework_op_stats(Path(folder) / "profile")

    ops = [row for row in rows if row["type"] != "IDLE"]
    busy_us = sum(row["total_self_time"] for row in ops)
    steps = arguments.steps
    kind = "summary" if arguments.summary_step else "plain"
    print(machine.headline(machine.describe()))
    print(f"{steps} {kind} steps of {config.train.recipe}, batch {trainer.global_batch_size}: "
          f"{busy_us / steps / 1000:.1f} ms of op self time per step, summed over all threads\n")

    by_group = collections.Counter()
    for row in ops:
        by_group[group_of(row["type"])] += row["total_self_time"]
    print(f"{'what':<40} {'ms/step':>8} {'share':>7}")
    for group, micros in by_group.most_common():
        print(f"{group:<40} {micros / steps / 1000:>8.2f} {micros / busy_us:>7.1%}")

    print(f"\n{'op':<72} {'type':<34} {'ms/step':>8} {'share':>7}")
    top = sorted(ops, key=lambda row: row["total_self_time"], reverse=True)[:arguments.top]
    for row in top:
        print(f"{row['operation'][-72:]:<72} {row['type'][:34]:<34} "
              f"{row['total_self_time'] / steps / 1000:>8.2f} "
              f"{row['total_self_time'] / busy_us:>7.1%}")

    print(json.dumps({
        "benchmark": "profile_step", "machine": machine.describe(), "step_kind": kind,
        "steps": steps, "op_self_ms_per_step": busy_us / steps / 1000,
        "groups_ms_per_step": {group: micros / steps / 1000 for group, micros in by_group.items()},
        "top_ops_ms_per_step": {row["operation"]: row["total_self_time"] / steps / 1000
                                for row in top},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
