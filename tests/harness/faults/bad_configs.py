"""Malformed configurations, as users hand them over (the one table of them), and how the
appliance met each: its exit code, what it said, what it left running and what it wrote.
Natively through entrypoint.sh, or through the image's entrypoint under podman. tests/faults
checks each: exit 2 (BAD_INPUT), a message that names the key, the line or the file, nothing
started and nothing written."""
from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from pathlib import Path

from app.exit_codes import ExitCode
from tests.harness.environment import app_environment
from tests.harness.native_stack import ENTRYPOINT, run_in_own_session
from tests.harness.podman import IsolatedPodman


@dataclasses.dataclass(frozen=True)
class BadConfig:
    """One malformed configuration, as a user would hand it over."""
    name: str
    file: str | bytes | None   # the config file (CIFAR10_CONFIG); None: the default one
    names: str                 # what the message must name: the key, the line, the file
    env: dict = dataclasses.field(default_factory=dict)  # overrides; None removes a variable
    # What the case's folder must hold first: "a_file" (a plain file), "read_only" (a mounted
    # read-only folder), "config_dir" (a folder where the config file should be).
    setup: str = ""


def _section(name: str, **keys) -> str:
    return f"{name}:\n" + "".join(f"  {key}: {value}\n" for key, value in keys.items())


# "{here}" stands for the case's own folder: natively a temporary one, /faults in a container.
BAD_CONFIGS = [
    # YAML that does not parse
    BadConfig("unclosed bracket", "train: [1, 2\neval:\n  batch_size: 5\n", "line 2"),
    BadConfig("bad indentation", "train:\n  max_steps: 10\n batch_size: 32\n", "line 3"),
    BadConfig("tab indentation", "train:\n\tmax_steps: 10\n", "line 2"),
    BadConfig("unterminated quote", 'train:\n  model: "cnn\neval:\n  batch_size: 5\n', "line 2"),
    BadConfig("missing colon", "train\n  max_steps: 10\n", "line 2"),
    BadConfig("two documents", "train: {}\n---\neval: {}\n", "line 2"),
    BadConfig("control characters", "\x00\x01\x02train: {}\n", "line 1"),
    # YAML that parses, but is not a config
    BadConfig("a list instead of sections", "- train\n- eval\n", "line 1"),
    BadConfig("a section that is a number", "train: 5\n", "'train'"),
    BadConfig("a key set twice",
              _section("train", max_steps=10, batch_size=4) + "  max_steps: 20\n",
              "train.max_steps"),
    BadConfig("a section twice", _section("train", max_steps=10) + _section("eval", batch_size=5)
              + _section("train", batch_size=4), "'train'"),
    # unknown keys
    BadConfig("unknown section", _section("trian", max_steps=10), "trian"),
    BadConfig("misspelt key", _section("train", max_stpes=10), "train.max_stpes"),
    BadConfig("key in the wrong section", _section("eval", max_steps=10), "eval.max_steps"),
    BadConfig("misspelt override", None, "CIFAR10_TRAIN_MAX_STPES",
              env={"CIFAR10_TRAIN_MAX_STPES": "300"}),
    BadConfig("override of an unknown section", None, "CIFAR10_TRAINING_STEPS",
              env={"CIFAR10_TRAINING_STEPS": "300"}),
    # wrong types
    BadConfig("a word for a number", _section("train", max_steps="ten"), "train.max_steps"),
    BadConfig("a fraction for a whole number", _section("train", batch_size=32.5),
              "train.batch_size"),
    BadConfig("a word for a rate", _section("tutorial", initial_learning_rate="fast"),
              "tutorial.initial_learning_rate"),
    BadConfig("a port with its protocol", _section("tensorboard", port="6006/tcp"),
              "tensorboard.port"),
    BadConfig("a list for a word", _section("train", recipe="[tutorial]"), "train.recipe"),
    BadConfig("a mapping for a number", _section("eval", num_examples="{all: true}"),
              "eval.num_examples"),
    BadConfig("an empty value", "train:\n  max_steps:\n", "train.max_steps"),
    BadConfig("a list for a path", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "[a, b]"}),
    BadConfig("not a number", _section("tutorial", initial_learning_rate=".nan"),
              "tutorial.initial_learning_rate"),
    BadConfig("a URL that is not one", _section("data", source="cifar10", url="cifar-10.tar.gz"),
              "data.url"),
    # booleans as strings, and a boolean where a word belongs
    BadConfig("quoted yes", _section("eval", use_moving_averages='"yes"'),
              "eval.use_moving_averages"),
    BadConfig("quoted false", _section("export", best="'false'"), "export.best"),
    BadConfig("maybe as a boolean override", None, "export.best",
              env={"CIFAR10_EXPORT_BEST": "maybe"}),
    BadConfig("off for a word", _section("runtime", xla="off"), "runtime.xla"),
    # zero or negative sizes
    BadConfig("zero steps", _section("train", max_steps=0), "train.max_steps"),
    BadConfig("negative batch", _section("train", batch_size=-32), "train.batch_size"),
    BadConfig("no checkpoints kept", _section("runtime", keep_checkpoints=0),
              "runtime.keep_checkpoints"),
    BadConfig("zero eval examples", _section("eval", num_examples=0), "eval.num_examples"),
    BadConfig("zero learning rate", _section("tutorial", initial_learning_rate=0),
              "tutorial.initial_learning_rate"),
    BadConfig("negative interval", _section("eval", every_secs=-5), "eval.every_secs"),
    BadConfig("no pause between eval's idle looks", _section("eval", every_secs=0),
              "eval.every_secs"),
    BadConfig("empty test set", _section("data", synthetic_test_examples=0),
              "data.synthetic_test_examples"),
    BadConfig("port out of range", _section("tensorboard", port=70000), "tensorboard.port"),
    BadConfig("more eval examples than test images", _section("eval", num_examples=20000),
              "eval.num_examples"),
    # paths that cannot serve
    BadConfig("train_dir is a file", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "{here}/a_file"}, setup="a_file"),
    BadConfig("data_dir is a file", None, "paths.data_dir",
              env={"CIFAR10_PATHS_DATA_DIR": "{here}/a_file"}, setup="a_file"),
    BadConfig("train_dir below a file", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "{here}/a_file/train"}, setup="a_file"),
    BadConfig("train_dir on a read-only volume", None, "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": "{here}/read_only/train"}, setup="read_only"),
    BadConfig("data_dir on a read-only volume", None, "paths.data_dir",
              env={"CIFAR10_PATHS_DATA_DIR": "{here}/read_only/data"}, setup="read_only"),
    BadConfig("a NUL in a path", 'paths:\n  train_dir: "{here}/tr\\0ain"\n', "paths.train_dir",
              env={"CIFAR10_PATHS_TRAIN_DIR": None}),
    # files that are no config at all
    BadConfig("empty file", "", "empty"),
    BadConfig("only comments", "# train:\n#   max_steps: 10\n", "empty"),
    BadConfig("binary junk", random.Random(7).randbytes(512),
              "not a text file"),
    BadConfig("saved as UTF-16", _section("train", max_steps=10).encode("utf-16"),
              "not a text file"),
    BadConfig("config is a directory", None, "is a directory",
              env={"CIFAR10_CONFIG": "{here}/config_dir"}, setup="config_dir"),
    BadConfig("config file missing", None, "not found",
              env={"CIFAR10_CONFIG": "{here}/no_such.yaml"}),
]


def named(*names: str) -> list[BadConfig]:
    """The cases of BAD_CONFIGS with these names, in this order."""
    by_name = {case.name: case for case in BAD_CONFIGS}
    return [by_name[name] for name in names]


def bad_config_environment(case: BadConfig, here: str, config_file: str) -> dict[str, str]:
    """The CIFAR10_* variables for a case: its own folder for train_dir and data_dir, the
    synthetic source (should a config wrongly pass, nothing is downloaded), its overrides."""
    env = {"CIFAR10_PATHS_TRAIN_DIR": f"{here}/train", "CIFAR10_PATHS_DATA_DIR": f"{here}/data",
           "CIFAR10_DATA_SOURCE": "synthetic"}
    if case.file is not None:
        env["CIFAR10_CONFIG"] = config_file
    env.update(case.env)
    return {name: value.replace("{here}", here) for name, value in env.items()
            if value is not None}


def prepare_bad_config(case: BadConfig, folder: Path, here: str) -> None:
    """Writes the case's config file and makes what its setup names, in folder."""
    if case.file is not None:
        content = case.file if isinstance(case.file, bytes) else case.file.replace("{here}", here)
        (folder / "config.yaml").write_bytes(
            content if isinstance(content, bytes) else content.encode())
    if case.setup == "a_file":
        (folder / "a_file").write_text("not a folder\n")
    elif case.setup == "config_dir":
        (folder / "config_dir").mkdir()
    elif case.setup == "read_only":
        (folder / "read_only").mkdir()  # mounted read-only by whoever runs the case


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path below folder with its kind, size and modification time."""
    return {str(path.relative_to(folder)): (path.is_dir(), path.stat().st_size,
                                             path.stat().st_mtime_ns)
            for path in folder.rglob("*")}


@dataclasses.dataclass
class BadConfigRun:
    """How the appliance met one case."""
    exit_code: int
    output: str              # what it printed, stdout then stderr
    left_running: list[int]  # what it started that was still running when it had exited
    written: list[str]       # the paths below the case's folder it made, changed or removed


def _written(before: dict, after: dict) -> list[str]:
    return sorted(set(before) ^ set(after)
                  | {path for path in before if before[path] != after.get(path)})


def run_bad_config(case: BadConfig, folder: Path) -> BadConfigRun:
    """Runs entrypoint.sh natively with the case's config in a folder of its own (made here)."""
    folder.mkdir(parents=True)
    prepare_bad_config(case, folder, str(folder))
    read_only = folder / "read_only"
    if case.setup == "read_only":  # even root may not write there
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", read_only],
                       check=True)
    try:
        env = app_environment(**bad_config_environment(case, str(folder),
                                                       str(folder / "config.yaml")),
                              PYTHON=sys.executable,
                              APPLIANCE_SUPERVISOR_SOCKET=str(folder / "supervisor.sock"))
        before = snapshot(folder)
        # Anything still in the entrypoint's session after 60 s was started by it.
        finished = run_in_own_session([str(ENTRYPOINT)], folder, env, timeout=60)
        after = snapshot(folder)
    finally:
        if case.setup == "read_only":
            subprocess.run(["umount", read_only], check=True)
    return BadConfigRun(finished.exit_code, finished.output, finished.left_running,
                        _written(before, after))


def run_bad_config_in_container(podman: IsolatedPodman, image: str, case: BadConfig,
                                folder: Path) -> BadConfigRun:
    """Runs the image with the case (its folder, made here, mounted at /faults as a user mounts
    theirs)."""
    folder.mkdir(parents=True)
    os.chown(folder, 1000, 1000)  # the image's user, as a fresh volume's owner would be
    prepare_bad_config(case, folder, "/faults")
    env = bad_config_environment(case, "/faults", "/faults/config.yaml")
    options = [option for name, value in env.items() for option in ("--env", f"{name}={value}")]
    options += ["--volume", f"{folder}:/faults"]
    if case.setup == "read_only":
        options += ["--volume", f"{folder / 'read_only'}:/faults/read_only:ro"]
    before = snapshot(folder)
    result = podman("run", "--rm", "--pull=never", *options, image, timeout=120, check=False)
    # `run --rm` returns once the container is gone: nothing it started can still run.
    return BadConfigRun(result.returncode, result.stdout + result.stderr, [],
                        _written(before, snapshot(folder)))


@dataclasses.dataclass
class BadConfigs:
    """How the appliance met every case of the table."""
    runs: dict[str, BadConfigRun]   # case name -> how it was met

    def figures(self) -> dict:
        cases = {case.name: case for case in BAD_CONFIGS}
        runs = self.runs.values()
        return {"bad_configs": len(self.runs),
                "exited_2": sum(run.exit_code == ExitCode.BAD_INPUT for run in runs),
                "named_what_and_where": sum(cases[name].names in run.output
                                            for name, run in self.runs.items()),
                "started_something": sum(bool(run.left_running) for run in runs),
                "wrote_something": sum(bool(run.written) for run in runs)}


def bad_configs(folder: Path) -> BadConfigs:
    """Every case of the table through entrypoint.sh, natively."""
    return BadConfigs({case.name: run_bad_config(case, folder / f"case-{number:02d}")
                       for number, case in enumerate(BAD_CONFIGS)})


def container_bad_configs(podman: IsolatedPodman, image: str, folder: Path) -> BadConfigs:
    """Every case of the table through the image's entrypoint."""
    return BadConfigs({case.name: run_bad_config_in_container(podman, image, case,
                                                              folder / f"case-{number:02d}")
                       for number, case in enumerate(BAD_CONFIGS)})
