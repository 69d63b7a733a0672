"""`python -m app report`: the history it reads, its table, its plot, and its exit codes."""
import json
from types import SimpleNamespace

from PIL import Image

import yaml

from app.tools import report
from app.volume import results, runs
from app.exit_codes import ExitCode


def result(step, precision, loss):
    return {"step": step, "precision_at_1": precision, "loss": loss, "num_examples": 1000,
            "checkpoint": f"model.ckpt-{step}", "weights": "moving_averages"}


def write_results(train_dir, *rows, broken_line=False, run="default"):
    eval_dir = train_dir / run / "eval"
    eval_dir.mkdir(parents=True)
    lines = [json.dumps(row) for row in rows] + (['{"step": 9'] if broken_line else [])
    (eval_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    return eval_dir


def write_run(train_dir, run, recipe, steps, max_steps, examples_per_sec, *rows):
    """A run as its trainer and eval leave it: the state file, run.yaml, progress.json, results."""
    folder = train_dir / run
    write_results(train_dir, *rows, run=run)
    (folder / "checkpoint").write_text("".join(
        f'all_model_checkpoint_paths: "model.ckpt-{step}"\n' for step in steps))
    runs.write_record(folder, yaml.safe_dump({"train": {"recipe": recipe,
                                                          "max_steps": max_steps}}))
    runs.write_progress(folder, steps[-1], max_steps, examples_per_sec, 0.05, 9.0)


def config(train_dir):
    return SimpleNamespace(paths=SimpleNamespace(train_dir=str(train_dir)))


def test_history_is_one_result_per_step_in_step_order_newest_kept(tmp_path):
    eval_dir = write_results(tmp_path, result(300, 0.7, 0.8), result(100, 0.2, 2.0),
                             result(200, 0.5, 1.0), result(300, 0.71, 0.8), broken_line=True)
    assert [(r["step"], r["precision_at_1"]) for r in results.history(eval_dir)] == [
        (100, 0.2), (200, 0.5), (300, 0.71)]


def test_table_shows_the_best_so_far_and_stars_each_new_best():
    rows = [result(100, 0.412, 1.734), result(200, 0.801, 0.934), result(300, 0.713, 0.825),
            result(400, 0.801, 0.9)]  # equal precision, lower loss: a new best too
    assert report.table(rows).splitlines() == [
        "      step  precision @ 1    loss  best so far",
        "       100          0.412   1.734        0.412 *",
        "       200          0.801   0.934        0.801 *",
        "       300          0.713   0.825        0.801",
        "       400          0.801   0.900        0.801 *",
    ]


def test_one_runs_report_prints_its_history_and_writes_its_plot(tmp_path, capsys):
    write_results(tmp_path, result(100, 0.3, 1.9), result(200, 0.9, 0.4))
    assert report.main(config(tmp_path), run="default") == ExitCode.DONE
    output = capsys.readouterr().out
    assert "2 evaluated checkpoints of run default in" in output
    assert "best: precision @ 1 = 0.900 at step 200" in output
    plot = tmp_path / "default" / "eval" / "precision_at_1.png"
    assert f"plot: {plot}" in output
    with Image.open(plot) as picture:
        assert picture.format == "PNG" and picture.size == (report.WIDTH, report.HEIGHT)
        colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 16)}
    assert report.COLOURS[0] in colours


def test_the_report_of_the_volume_has_a_row_per_run_and_plots_them_together(tmp_path, capsys):
    write_run(tmp_path, "default", "tutorial", [100, 200, 300], 1000, 2860.1,
              result(100, 0.3, 1.9), result(200, 0.81, 0.6), result(300, 0.8, 0.5))
    write_run(tmp_path, "fast-8", "fast", [50, 100], 100, 912.5,
              result(50, 0.4, 1.2), result(100, 0.7, 0.8))
    assert report.main(config(tmp_path)) == ExitCode.DONE
    output = capsys.readouterr().out
    rows = [line.split() for line in output.splitlines() if line.startswith(("default", "fast"))]
    assert rows == [["default", "tutorial", "300/1000", "0.810", "200", "2860.1"],
                    ["fast-8", "fast", "100/100", "0.700", "100", "912.5"]]
    with Image.open(tmp_path / "precision_at_1.png") as picture:
        colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 16)}
    assert report.COLOURS[0] in colours and report.COLOURS[1] in colours  # one line per run


def test_report_names_the_export_when_there_is_one(tmp_path, capsys):
    write_results(tmp_path, result(100, 0.3, 1.9))
    version = tmp_path / "default" / "export" / "100"
    (version / "assets").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    (version / "assets" / "evaluation.json").write_text(json.dumps(result(100, 0.3, 1.9)))
    report.main(config(tmp_path), plot_path=str(tmp_path / "elsewhere" / "plot.png"),
                run="default")
    output = capsys.readouterr().out
    assert f"exported: step 100 (precision @ 1 = 0.300) in {version}" in output
    assert (tmp_path / "elsewhere" / "plot.png").is_file()


def test_report_without_runs_or_evaluations_says_so_and_exits_2(tmp_path, capsys):
    assert report.main(config(tmp_path)) == ExitCode.BAD_INPUT
    assert "no runs yet" in capsys.readouterr().out
    assert report.main(config(tmp_path), run="default") == ExitCode.BAD_INPUT
    assert "no evaluations yet" in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.png"))


def test_step_ticks_are_round_and_reach_past_the_last_step():
    assert report._nice_ticks(300) == [0, 50, 100, 150, 200, 250, 300]
    assert report._nice_ticks(310) == [0, 100, 200, 300, 400]
    assert report._nice_ticks(100_000) == [0, 20_000, 40_000, 60_000, 80_000, 100_000]
    assert report._nice_ticks(0) == [0, 1]
