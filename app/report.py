"""`python -m app report`: the eval history, as a table on the terminal and a plot in a PNG.

Reads train_dir/eval/results.jsonl (one line per evaluated checkpoint, written by eval) and
needs no TensorFlow, so it answers in a moment, while train and eval run or long after:

      step  precision @ 1    loss  best so far
       100          0.238   2.221        0.238 *
       200          0.907   0.534        0.907 *
       300          0.713   0.825        0.907

A star marks each new best (a higher precision, or the same with a lower loss, as the export
judges). The plot (precision @ 1 against step, the best ringed, chance
dashed) goes to train_dir/eval/precision_at_1.png unless --plot names another file. Drawn with
Pillow, which TensorBoard already brings, rather than matplotlib.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app import results as records
from app.data import NUM_CLASSES
from app.exit_codes import ExitCode

PLOT_NAME = "precision_at_1.png"

WIDTH, HEIGHT = 800, 450
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 50, 60  # margins around the plotting area
FONT_SIZE = 14
LINE = (31, 119, 180)
BEST = (255, 127, 14)
GRID = (225, 225, 225)
MUTED = (120, 120, 120)


def main(config, plot_path: str | None = None) -> int:
    eval_dir = Path(config.paths.train_dir) / "eval"
    results = records.history(eval_dir)
    results_file = eval_dir / records.RESULTS_FILE
    if not results:
        print(f"no evaluations yet: {results_file} is missing or empty "
              f"(eval writes a line there per checkpoint it evaluates)")
        return ExitCode.BAD_INPUT
    print(f"{len(results)} evaluated checkpoints in {results_file}\n")
    print(table(results))
    best = max(results, key=records.goodness)
    print(f"\nbest: precision @ 1 = {best['precision_at_1']:.3f} at step {best['step']}")
    exported = records.exported_evaluation(config.paths.train_dir)
    if exported:
        print(f"exported: step {exported['step']} "
              f"(precision @ 1 = {exported['precision_at_1']:.3f}) in "
              f"{Path(config.paths.train_dir) / records.EXPORTED_EVALUATION.parent}")
    plot = Path(plot_path) if plot_path else eval_dir / PLOT_NAME
    write_plot(results, plot)
    print(f"plot: {plot}")
    return ExitCode.DONE


def table(results: list[dict]) -> str:
    lines = [f"{'step':>10}  {'precision @ 1':>13}  {'loss':>6}  {'best so far':>11}"]
    best = None
    for result in results:
        new_best = best is None or records.goodness(result) > records.goodness(best)
        best = result if new_best else best
        lines.append(f"{result['step']:>10}  {result['precision_at_1']:>13.3f}  "
                     f"{result['loss']:>6.3f}  {best['precision_at_1']:>11.3f}"
                     + (" *" if new_best else ""))
    return "\n".join(lines)


def write_plot(results: list[dict], path: Path) -> None:
    """Precision @ 1 against step on a 0-1 scale: an honest picture of how far from perfect, and
    of chance (1 in 10), rather than a curve stretched to fill the frame."""
    font = ImageFont.load_default(size=FONT_SIZE)
    picture = Image.new("RGB", (WIDTH, HEIGHT), "white")
    canvas = ImageDraw.Draw(picture)
    step_ticks = _nice_ticks(results[-1]["step"])
    last_step = step_ticks[-1]
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def at(step, precision):
        return (LEFT + (right - LEFT) * step / last_step,
                bottom - (bottom - TOP) * precision)

    for tenth in range(0, 11, 2):
        _, y = at(0, tenth / 10)
        canvas.line([(LEFT, y), (right, y)], fill=GRID)
        _text(canvas, (LEFT - 8, y), f"{tenth / 10:.1f}", font, anchor="rm")
    for step in step_ticks:
        x, _ = at(step, 0)
        canvas.line([(x, bottom), (x, bottom + 5)], fill="black")
        _text(canvas, (x, bottom + 8), f"{step:,}", font, anchor="mt")
    canvas.line([(LEFT, TOP), (LEFT, bottom), (right, bottom)], fill="black")

    chance = 1 / NUM_CLASSES
    for x in range(LEFT, right, 12):
        canvas.line([(x, at(0, chance)[1]), (min(x + 6, right), at(0, chance)[1])], fill=MUTED)
    _text(canvas, (right - 4, at(0, chance)[1] - 4), "chance", font, anchor="rb", fill=MUTED)

    points = [at(result["step"], result["precision_at_1"]) for result in results]
    if len(points) > 1:
        canvas.line(points, fill=LINE, width=2)
    for x, y in points:
        canvas.ellipse([x - 3, y - 3, x + 3, y + 3], fill=LINE)
    best = max(results, key=records.goodness)
    x, y = at(best["step"], best["precision_at_1"])
    canvas.ellipse([x - 7, y - 7, x + 7, y + 7], outline=BEST, width=2)
    label = f"best {best['precision_at_1']:.3f} at step {best['step']:,}"
    _text(canvas, (x, y - 12), label, font, anchor="mb" if y > TOP + 30 else "mt", fill=BEST)

    _text(canvas, (WIDTH / 2, 18), f"precision @ 1 on {results[-1]['num_examples']:,} test "
                                   f"images, by global step", font, anchor="mm")
    _text(canvas, ((LEFT + right) / 2, HEIGHT - 18), "global step", font, anchor="mm")
    _write_atomically(picture, Path(path))


def _nice_ticks(largest: int) -> list[int]:
    """From 0 to the first tick at or past the largest step, at a round spacing (1, 2 or 5 times
    a power of ten) that gives at most 7 ticks."""
    largest = max(largest, 1)
    for power in itertools.count():
        for factor in (1, 2, 5):
            spacing = factor * 10 ** power
            if largest / spacing <= 6:
                return list(range(0, largest + spacing, spacing))


def _text(canvas, position, text, font, anchor, fill="black") -> None:
    canvas.text(position, text, fill=fill, font=font, anchor=anchor)


def _write_atomically(picture: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are private (0600), and people read these from the host too.
    temporary = str(path.with_name(f".{path.name}.{os.getpid()}.tmp"))
    try:
        picture.save(temporary, format="PNG")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
