"""`python -m app report`: the history it reads, its table, its plot, and its exit codes."""
import json
from types import SimpleNamespace

from PIL import Image

from app import report, results
from app.exit_codes import ExitCode


def result(step, precision, loss):
    return {"step": step, "precision_at_1": precision, "loss": loss, "num_examples": 1000,
            "checkpoint": f"model.ckpt-{step}", "weights": "moving_averages"}


def write_results(train_dir, *rows, broken_line=False):
    eval_dir = train_dir / "eval"
    eval_dir.mkdir(parents=True)
    lines = [json.dumps(row) for row in rows] + (['{"step": 9'] if broken_line else [])
    (eval_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    return eval_dir


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


def test_report_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    write_results(tmp_path, result(100, 0.3, 1.9), result(200, 0.9, 0.4))
    assert report.main(config(tmp_path)) == 0
    output = capsys.readouterr().out
    assert "2 evaluated checkpoints in" in output
    assert "best: precision @ 1 = 0.900 at step 200" in output
    plot = tmp_path / "eval" / "precision_at_1.png"
    assert f"plot: {plot}" in output
    with Image.open(plot) as picture:
        assert picture.format == "PNG" and picture.size == (report.WIDTH, report.HEIGHT)
        colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 16)}
    assert report.LINE in colours and report.BEST in colours


def test_report_names_the_export_when_there_is_one(tmp_path, capsys):
    write_results(tmp_path, result(100, 0.3, 1.9))
    (tmp_path / "export" / "best").mkdir(parents=True)
    (tmp_path / "export" / "best" / "evaluation.json").write_text(json.dumps(result(100, 0.3, 1.9)))
    report.main(config(tmp_path), plot_path=str(tmp_path / "elsewhere" / "plot.png"))
    output = capsys.readouterr().out
    assert f"exported: step 100 (precision @ 1 = 0.300) in {tmp_path / 'export' / 'best'}" in output
    assert (tmp_path / "elsewhere" / "plot.png").is_file()


def test_report_without_evaluations_says_so_and_exits_2(tmp_path, capsys):
    assert report.main(config(tmp_path)) == ExitCode.BAD_INPUT
    assert "no evaluations yet" in capsys.readouterr().out
    assert not (tmp_path / "eval" / "precision_at_1.png").exists()


def test_step_ticks_are_round_and_reach_past_the_last_step():
    assert report._nice_ticks(300) == [0, 50, 100, 150, 200, 250, 300]
    assert report._nice_ticks(310) == [0, 100, 200, 300, 400]
    assert report._nice_ticks(100_000) == [0, 20_000, 40_000, 60_000, 80_000, 100_000]
    assert report._nice_ticks(0) == [0, 1]
