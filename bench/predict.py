"""Using the model: how long `python -m app predict` takes for 1 and for 100 images, cold start
included (a new process each time: Python, TensorFlow, the SavedModel), how large an export is,
and what TensorFlow Serving's layout looks like on the volume.

    .venv/bin/python -m bench.predict [--repeats 3] [--recipe tutorial]

Makes a run of its own first (the synthetic set, a few hundred steps, evaluated and exported),
then times the two cases in alternation. The last line printed is one JSON object with every
figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench import machine
from tests.harness.environment import run_app


def app(*arguments: str, settings: list[str]) -> subprocess.CompletedProcess:
    """`python -m app ARGS... SETTINGS...` run to completion; its output, or the benchmark ends."""
    finished = run_app(*arguments, *settings, timeout=1800)
    if finished.returncode != 0:
        raise SystemExit(f"python -m app {' '.join(arguments)} exited {finished.returncode}:\n"
                         f"{finished.stdout[-2000:]}{finished.stderr[-2000:]}")
    return finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipe", default="tutorial")
    arguments = parser.parse_args()
    print(machine.headline(machine.describe()), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as folder:
        root = Path(folder)
        settings = [f"--set={key}={value}" for key, value in {
            "paths.train_dir": root / "train", "paths.data_dir": root / "data",
            "data.source": "synthetic", "data.synthetic_train_examples": 5000,
            "data.synthetic_test_examples": 1000, "eval.num_examples": 1000,
            "eval.every_secs": 1, "train.recipe": arguments.recipe, "fast.width": 16,
            "train.max_steps": 300, "train.batch_size": 64,
            "runtime.checkpoint_every_steps": 100,
            "runtime.checkpoint_min_gap_secs": "null"}.items()]
        app("train", settings=settings)
        app("eval", "--until-done", settings=settings)
        images = write_images(root)
        timings = {"1 image": [], "100 images": []}
        for _ in range(arguments.repeats):
            for case, files in (("1 image", images[:1]), ("100 images", images[:100])):
                started = time.perf_counter()
                app("predict", *map(str, files), settings=settings)
                timings[case].append(time.perf_counter() - started)
        export = root / "train" / "default" / "export"
        layout = sorted(str(path.relative_to(root / "train")) for path in export.rglob("*")
                        if path.is_file())
        sizes = {version.name: sum(path.stat().st_size for path in version.rglob("*")
                                   if path.is_file())
                 for version in export.iterdir() if version.name.isdigit()}
    figures = {"benchmark": "predict", "machine": machine.describe(), "recipe": arguments.recipe,
               "predict_secs_1_image": statistics.median(timings["1 image"]),
               "predict_secs_100_images": statistics.median(timings["100 images"]),
               "timings": timings, "export_bytes_by_version": sizes, "export_layout": layout}
    print(f"\npredict, a new process each time (median of {arguments.repeats}): 1 image "
          f"{figures['predict_secs_1_image']:.1f} s, 100 images "
          f"{figures['predict_secs_100_images']:.1f} s")
    print(f"export size: {', '.join(f'{name}: {size / 2**20:.1f} MiB' for name, size in sizes.items())}")
    print("on the volume:\n  " + "\n  ".join(layout))
    print(json.dumps(figures))
    return 0


def write_images(root: Path) -> list[Path]:
    """The first 100 synthetic test images as PNG files."""
    records = np.fromfile(next(root.rglob("test_batch.bin")), dtype=np.uint8).reshape(-1, 3073)
    images = records[:100, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    folder = root / "images"
    folder.mkdir()
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"{index:03d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


if __name__ == "__main__":
    raise SystemExit(main())
