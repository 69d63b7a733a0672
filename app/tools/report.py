"""`python -m app report`: the runs of the volume side by side, as a table and a plot.

Reads what train and eval leave in each run's folder (app/volume/layout.py): the checkpoints' state
file, the trainer's progress.json and run.yaml, eval/results.jsonl. It needs no TensorFlow, so it
answers in a moment, while train and eval run or long after:

    run        recipe     steps           best precision @ 1   at step   images/s
    default    tutorial   20000/100000                 0.812     20000     2860.1
    lr-0.05    tutorial   12000/100000                 0.774     12000     2911.5

and plots every run's precision @ 1 against the step in one picture (each run its colour, its best
ringed, chance dashed), to <train_dir>/precision_at_1.png unless --plot names another file.

`report --run NAME` is one run's history instead: a row per evaluated checkpoint, a star at each
new best (a higher precision, or the same with a lower loss, as the export judges), and its plot in
the run's eval/ folder. Drawn with Pillow, which TensorBoard already brings, rather than matplotlib.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app.volume import checkpoints, exports, layout, results as records, runs
from app.data.cifar10 import NUM_CLASSES
from app.exit_codes import ExitCode
from app.volume.atomic import write_atomically

WIDTH, HEIGHT = 800, 450
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 50, 60  # margins around the plotting area
FONT_SIZE = 14
# One colour per run, in turn (matplotlib's first ten).
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
GRID = (225, 225, 225)
MUTED = (120, 120, 120)


def main(config, plot_path: str | None = None, run: str | None = None) -> int:
    if run:
        return _one_run(config, run, plot_path)
    train_dir = Path(config.paths.train_dir)
    names = sorted(set(runs.with_checkpoints(train_dir))
                   | {path.parent.parent.name for path in
                      train_dir.glob(f"*/{layout.EVAL_FOLDER}/{layout.RESULTS_FILE}")})
    if not names:
        print(f"no runs yet in {train_dir} (a run is a folder with checkpoints, paths.run)")
        return ExitCode.BAD_INPUT
    rows = [run_summary(train_dir, name) for name in names]
    print(f"{len(rows)} run{'s' if len(rows) > 1 else ''} in {train_dir}\n")
    print(runs_table(rows))
    histories = {row["run"]: records.history(runs.eval_folder(train_dir, row["run"]))
                 for row in rows}
    histories = {name: history for name, history in histories.items() if history}
    if histories:
        plot = Path(plot_path) if plot_path else train_dir / layout.REPORT_PLOT_FILE
        write_plot(histories, plot)
        print(f"\nplot: {plot}")
    return ExitCode.DONE


def run_summary(train_dir: Path, run: str) -> dict:
    """One row of the table: what a run is, how far it got, and how well it does."""
    folder = runs.folder(train_dir, run)
    record = runs.read_record(folder) or {}
    progress = runs.read_progress(folder) or {}
    newest = checkpoints.newest(folder)
    history = records.history(runs.eval_folder(train_dir, run))
    best = max(history, key=records.goodness) if history else None
    return {"run": run,
            "recipe": (record.get("train") or {}).get("recipe", "?"),
            "step": checkpoints.step_of(newest) if newest else 0,
            "max_steps": progress.get("max_steps") or (record.get("train") or {}).get("max_steps"),
            "best": best,
            "examples_per_sec": progress.get("examples_per_sec")}


def runs_table(rows: list[dict]) -> str:
    width = max(len("run"), *(len(row["run"]) for row in rows))
    lines = [f"{'run':<{width}}  {'recipe':<8}  {'steps':>15}  {'best precision @ 1':>18}  "
             f"{'at step':>8}  {'images/s':>9}"]
    for row in rows:
        steps = f"{row['step']}/{row['max_steps'] or '?'}"
        best = row["best"]
        precision = f"{best['precision_at_1']:.3f}" if best else "-"
        at_step = str(best["step"]) if best else "-"
        speed = f"{row['examples_per_sec']:.1f}" if row["examples_per_sec"] else "-"
        lines.append(f"{row['run']:<{width}}  {row['recipe']:<8}  {steps:>15}  {precision:>18}  "
                     f"{at_step:>8}  {speed:>9}")
    return "\n".join(lines)


# -- one run ------------------------------------------------------------------------------------

def _one_run(config, run: str, plot_path: str | None) -> int:
    run_folder = runs.folder(config.paths.train_dir, run)
    eval_dir = runs.eval_folder(config.paths.train_dir, run)
    results = records.history(eval_dir)
    results_file = eval_dir / layout.RESULTS_FILE
    if not results:
        print(f"no evaluations yet: {results_file} is missing or empty "
              f"(eval writes a line there per checkpoint it evaluates)")
        return ExitCode.BAD_INPUT
    print(f"{len(results)} evaluated checkpoints of run {run} in {results_file}\n")
    print(table(results))
    best = max(results, key=records.goodness)
    print(f"\nbest: precision @ 1 = {best['precision_at_1']:.3f} at step {best['step']}")
    exported = exports.exported_evaluation(run_folder)
    if exported:
        print(f"exported: step {exported['step']} "
              f"(precision @ 1 = {exported['precision_at_1']:.3f}) in {exports.newest(run_folder)}")
    plot = Path(plot_path) if plot_path else eval_dir / layout.REPORT_PLOT_FILE
    write_plot({run: results}, plot)
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


# -- the plot -----------------------------------------------------------------------------------

def write_plot(histories: dict[str, list[dict]], path: Path) -> None:
    """Precision @ 1 against step on a 0-1 scale, a line per run: an honest picture of how far
    from perfect, and of chance (1 in 10), rather than curves stretched to fill the frame."""
    font = ImageFont.load_default(size=FONT_SIZE)
    picture = Image.new("RGB", (WIDTH, HEIGHT), "white")
    canvas = ImageDraw.Draw(picture)
    step_ticks = _nice_ticks(max(history[-1]["step"] for history in histories.values()))
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

    for number, (run, results) in enumerate(sorted(histories.items())):
        colour = COLOURS[number % len(COLOURS)]
        points = [at(result["step"], result["precision_at_1"]) for result in results]
        if len(points) > 1:
            canvas.line(points, fill=colour, width=2)
        for x, y in points:
            canvas.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        best = max(results, key=records.goodness)
        x, y = at(best["step"], best["precision_at_1"])
        canvas.ellipse([x - 7, y - 7, x + 7, y + 7], outline=colour, width=2)
        label = f"{run}: best {best['precision_at_1']:.3f} at step {best['step']:,}"
        _text(canvas, (LEFT + 10, TOP + 8 + 18 * number), label, font, anchor="lt", fill=colour)

    num_examples = next(iter(histories.values()))[-1]["num_examples"]
    _text(canvas, (WIDTH / 2, 18), f"precision @ 1 on {num_examples:,} test images, by global "
                                   f"step", font, anchor="mm")
    _text(canvas, ((LEFT + right) / 2, HEIGHT - 18), "global step", font, anchor="mm")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(Path(path), lambda temporary: picture.save(temporary, format="PNG"))


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

