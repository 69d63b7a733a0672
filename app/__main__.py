"""The command line: `python -m app <command> [--config FILE] [--set section.key=value ...]`.

    train         train, checkpoint and summarize until train.max_steps (resumes by itself)
    eval          evaluate every run's new checkpoints as they come, looking every 0.5 s while a
                  run trains, every eval.every_secs when idle (--once: the newest of paths.run,
                  then exit; --until-done: exit once every run is done)
    tensorboard   serve train_dir on tensorboard.port
    report        every run in a table and one plot (--run NAME: one run's history; --plot FILE)
    predict       classify image files with the best export of paths.run (--top K, --json)
    data          download and verify CIFAR-10, or generate the synthetic set, then exit
    check-config  print the resolved configuration, or say what is wrong with it
    health        exit 0 when the supervised programs and TensorBoard are as they should be

Exit codes (app/exit_codes.py): 0 done; 2 bad configuration or bad input, with a message naming
what and where; 3 training diverged; anything else a crash (supervisord restarts the program).
Every error that ends a program is an AppError, turned into its line and its exit code here.
The programs' lines go through one logger, set up here (app/runtime/logs.py).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# TensorFlow's C++ INFO lines (oneDNN, CPU features) drown the appliance's own log; warnings stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from app import config as configuration
from app.runtime import logs, process_end, temp_folder
from app.exit_codes import AppError, ExitCode

# Not __name__: run as `python -m app`, this module is __main__, outside the app's logger.
log = logging.getLogger(logs.ROOT)

# The commands that use the appliance's folders (train_dir, data_dir): entrypoint.sh makes those
# first and, started as root, runs these commands as the folders' owner; the others run as
# whoever calls it. entrypoint.sh learns every command and its kind from `python -m app
# --commands`, so a command added to the parser below reaches it without a change there.
USES_THE_FOLDERS = frozenset({"train", "eval", "tensorboard", "data", "report"})
LIST_COMMANDS = "--commands"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help=f"YAML file laid over the defaults (default: ${configuration.CONFIG_FILE_VARIABLE})")
    common.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one key (repeatable)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    train = commands.add_parser("train", parents=[common], help="train until train.max_steps")
    train.add_argument("--sweep-run", metavar="NAME",
                       help="train only this run of the config's sweep (what a sweep runs)")
    evaluate = commands.add_parser("eval", parents=[common], help="evaluate new checkpoints")
    until = evaluate.add_mutually_exclusive_group()
    until.add_argument("--once", action="store_true",
                       help="evaluate the newest checkpoint of paths.run, then exit")
    until.add_argument("--until-done", action="store_true",
                       help="exit once every run is evaluated up to its max_steps, none training")
    commands.add_parser("tensorboard", parents=[common], help="serve train_dir")
    report = commands.add_parser("report", parents=[common], help="every run side by side")
    report.add_argument("--plot", metavar="FILE", help="where to write the PNG plot")
    report.add_argument("--run", metavar="NAME", help="one run's history instead")
    predict = commands.add_parser("predict", parents=[common], help="classify image files")
    predict.add_argument("files", nargs="+", metavar="FILE",
                         help="image files (PNG, JPEG, BMP, GIF), folders of them, or patterns")
    predict.add_argument("--top", type=int, default=3, metavar="K",
                         help="how many classes to show per image (default 3)")
    predict.add_argument("--json", action="store_true", help="one JSON object per file")
    commands.add_parser("data", parents=[common], help="fetch or generate the data set")
    commands.add_parser("check-config", parents=[common], help="print the resolved config")
    commands.add_parser("health", parents=[common], help="check the running appliance")
    parser.command_names = list(commands.choices)
    return parser


def _list_commands(parser: argparse.ArgumentParser) -> None:
    """One line per command for entrypoint.sh: its name and `folders` or `caller`."""
    for name in parser.command_names:
        print(name, "folders" if name in USES_THE_FOLDERS else "caller")


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    parser = _parser()
    if (sys.argv[1:] if argv is None else argv) == [LIST_COMMANDS]:
        _list_commands(parser)
        return ExitCode.DONE
    arguments = parser.parse_args(argv)
    try:
        config = configuration.load(arguments.config, arguments.overrides)
        if arguments.command in ("train", "eval", "data", "check-config"):
            configuration.check_paths(config)
        return _run(arguments, config)
    except AppError as error:
        log.error(f"{error.log_prefix}: {error}")
        return error.exit_code


def _run(arguments, config) -> int:
    # Each command imports only what it needs: TensorFlow alone takes seconds to import.
    if arguments.command == "check-config":
        # The command's answer, not log lines: the run's length as it came to be, then the config.
        print("".join(f"# {line}\n" for line in config.chosen) + config.to_yaml(), end="")
        return ExitCode.DONE
    if arguments.command == "data":
        from app.data import cifar10
        batches = cifar10.prepare(config.data, config.paths.data_dir)
        for split in ("train", "test"):
            images, _ = cifar10.load_split(batches, split)
            log.info(f"{split}: {len(images):,} images in {batches}")
        return ExitCode.DONE
    if arguments.command == "train":
        if arguments.sweep_run:
            config = configuration.find_sweep_run(config.sweep, arguments.sweep_run).config
        elif config.sweep:
            from app.train import sweep
            handed_on = ([f"--config={arguments.config}"] if arguments.config else []) + [
                f"--set={override}" for override in arguments.overrides]
            return sweep.train_all(config, handed_on)
        temp_folder.use_own_folder("train")
        logs.import_tensorflow_quietly()
        from app.train import trainer
        return trainer.main(config)
    if arguments.command == "eval":
        # Before TensorFlow starts its threads, which inherit it: eval then gets only the CPU
        # the trainer leaves. Beside the trainer on 2 cores, at niceness 0 the trainer kept 67% of
        # its speed, at 19 it kept 93%, and eval still finished an evaluation every ~20 s
        # (bench/eval_contention.py). Only ever raised: lowering it needs privileges.
        os.setpriority(os.PRIO_PROCESS, 0,
                       max(config.eval.niceness, os.getpriority(os.PRIO_PROCESS, 0)))
        temp_folder.use_own_folder("eval")
        logs.import_tensorflow_quietly()
        from app.eval import watcher
        return watcher.main(config, once=arguments.once, until_done=arguments.until_done)
    if arguments.command == "tensorboard":
        logs.import_tensorflow_quietly()  # TensorBoard reads event files with it
        from app.tensorboard import server
        return server.main(config)
    if arguments.command == "predict":
        logs.import_tensorflow_quietly()
        from app.tools import predict
        return predict.main(config, arguments.files, max(1, arguments.top), arguments.json)
    if arguments.command == "report":
        from app.tools import report
        return report.main(config, plot_path=arguments.plot, run=arguments.run)
    if arguments.command == "health":
        from app.runtime import health
        return health.main(config)
    raise AssertionError(arguments.command)


if __name__ == "__main__":
    process_end.end(main())
