"""A run's starts: what a resume changed, refused or recorded, and where a new run starts from.

At every start the trainer compares its config with the run's record (run.yaml, the config of
its last start), key by key, by what each key is to a resumed run (app/config/schema.py's
at_resume):

    learned       another value changes what the run learns (a learning rate, the batch size, the
                  weight decay, the precision, the data): refused with exit 2, naming each key
                  with both values and how to go on, unless train.allow_changes
    run length    train.max_steps: goes on, said in the log; learned where the recipe's schedule
                  spans the run (the fast recipe's one-cycle is fitted to max_steps)
    first start   train.init_from and init_mode, read when a run starts from nothing: a resume
                  says that it leaves them be
    machine       runtime: and train.deterministic: goes on, and the log says what changed

Each start is then recorded in the run's starts.jsonl (its step, time, host, what it changed,
where it started from), shown in TensorBoard's Text tab (`starts`) and counted in the HParams row
(`hyperparameter_changes`), which keeps showing a run's first values: a row with changes says so.

A run with no checkpoint of its own may start from another run's (train.init_from: RUN[@STEP]):
the newest checkpoint of RUN at or before STEP, of the same recipe, only read. All of this is
checked before anything is written: a start that is refused leaves the volume as it was.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path

from app.config import schema
from app.exit_codes import AppError
from app.model import recipes
from app.volume import checkpoints, layout, runs

class StartRefused(AppError):
    """This start would mix two experiments in one run, or names a run to start from that is not
    there: exit 2, nothing written."""


@dataclasses.dataclass(frozen=True)
class Change:
    key: str  # as --set names it: tutorial.initial_learning_rate
    old: object
    new: object
    kind: str  # schema.LEARNED, RUN_LENGTH, FIRST_START or MACHINE

    def __str__(self) -> str:
        return f"{self.key} {_shown(self.old)} -> {_shown(self.new)}"


@dataclasses.dataclass(frozen=True)
class Source:
    """The checkpoint of another run that a new run starts from (train.init_from)."""
    run: str
    checkpoint: Path
    mode: str  # train.init_mode: continue | fine_tune

    def __str__(self) -> str:
        takes = ("its weights, their averages, the optimizer's state and the step"
                 if self.mode == "continue" else "its weights and their averages, from step 0")
        return f"run '{self.run}' at {self.checkpoint.name} ({self.mode}: {takes})"


@dataclasses.dataclass(frozen=True)
class Start:
    """What this start of the trainer is: a resume (with what it changed), a run starting from
    another run's checkpoint, or a run starting from nothing."""
    resumes_from: Path | None = None
    changes: tuple[Change, ...] = ()
    source: Source | None = None

    def learned_changes(self) -> list[Change]:
        return [change for change in self.changes if change.kind == schema.LEARNED]


def check(config) -> Start:
    """What starting the trainer with `config` means for its run, or StartRefused. Only reads."""
    folder = runs.folder(config.paths.train_dir, config.paths.run)
    newest = checkpoints.newest(folder)
    if newest is None:
        return Start(source=source_of(config) if config.train.init_from else None)
    record = runs.read_record(folder)
    start = Start(resumes_from=newest, changes=tuple(changes(record, config)) if record else ())
    learned = start.learned_changes()
    if learned and not config.train.allow_changes:
        run = config.paths.run
        raise StartRefused(
            f"run '{run}' was trained with other values of what it learns: "
            f"{', '.join(map(str, learned))} (its record: {folder / layout.RUN_RECORD_FILE}); "
            f"resuming would mix two experiments in one run. To go on from its {newest.name} "
            f"with the new values, start a new run from it: paths.run=NEW and "
            f"train.init_from={run} (CIFAR10_PATHS_RUN, CIFAR10_TRAIN_INIT_FROM); to change this "
            f"run itself, on its record: train.allow_changes=true; or resume with its values")
    return start


def changes(record: dict, config) -> list[Change]:
    """Every key the trainer compares whose value in `config` differs from the run's record,
    where the key has a say (the run's recipe's section, the synthetic set's keys for it)."""
    spanning = recipes.RECIPES[config.train.recipe].schedule_spans_run
    found = []
    for section, key, new, kind in schema.with_a_say_at_resume(config):
        old = (record.get(section) or {}).get(key, schema.before_it_existed(section, key))
        if old is schema.UNKNOWN or old == new:
            continue
        if kind == schema.RUN_LENGTH and spanning:
            kind = schema.LEARNED
        found.append(Change(f"{section}.{key}", old, new, kind))
    return found


def source_of(config) -> Source:
    """The checkpoint train.init_from names, or StartRefused saying what is missing."""
    run, step = runs.parse_reference(config.train.init_from)
    train_dir = Path(config.paths.train_dir)
    where = f"train.init_from: {config.train.init_from}"
    if run == config.paths.run:
        raise StartRefused(f"{where}: that is this run itself; name another run to start from")
    listed = checkpoints.listed(runs.folder(train_dir, run))
    if not listed:
        others = ", ".join(runs.with_checkpoints(train_dir)) or "none"
        raise StartRefused(f"{where}: no run '{run}' with checkpoints in {train_dir} (runs with "
                           f"checkpoints there: {others})")
    record = runs.read_record(runs.folder(train_dir, run)) or {}
    recipe = (record.get("train") or {}).get("recipe")
    if recipe is not None and recipe != config.train.recipe:
        raise StartRefused(f"{where}: run '{run}' was trained with train.recipe {recipe}, this "
                           f"run's is {config.train.recipe}: its checkpoints hold another model")
    if step is None:
        return Source(run, listed[-1], config.train.init_mode)
    newest_step = checkpoints.step_of(listed[-1])
    if step > newest_step:
        raise StartRefused(f"{where}: run '{run}' has reached only step {newest_step} (its newest "
                           f"checkpoint, {listed[-1].name})")
    at_or_before = [path for path in listed if checkpoints.step_of(path) <= step]
    if not at_or_before:
        raise StartRefused(f"{where}: run '{run}' keeps no checkpoint at or before step {step}; "
                           f"its oldest is {listed[0].name} (runtime.keep_checkpoints keeps the "
                           f"newest few)")
    return Source(run, at_or_before[-1], config.train.init_mode)


def resume_lines(start: Start) -> list[str]:
    """What the log says of a resume's changes that go on (those refused never get here)."""
    by_kind = {kind: [str(change) for change in start.changes if change.kind == kind]
               for kind in (schema.LEARNED, schema.RUN_LENGTH, schema.FIRST_START, schema.MACHINE)}
    lines = []
    if by_kind[schema.LEARNED]:
        lines.append(f"resuming with changed hyperparameters, as train.allow_changes lets it: "
                     f"{', '.join(by_kind[schema.LEARNED])}; recorded in "
                     f"{layout.STARTS_FILE}, TensorBoard's Text tab (starts) and the HParams "
                     f"row's hyperparameter changes")
    if by_kind[schema.RUN_LENGTH]:
        lines.append(f"resuming with another run length: {', '.join(by_kind[schema.RUN_LENGTH])}")
    if by_kind[schema.FIRST_START]:
        lines.append(f"{', '.join(by_kind[schema.FIRST_START])}: read only when a run starts from "
                     f"nothing; this run resumes from its own {start.resumes_from.name}")
    if by_kind[schema.MACHINE]:
        lines.append(f"resuming with other settings of how it runs (what it learns is "
                     f"unchanged): {', '.join(by_kind[schema.MACHINE])}")
    return lines


def record(run_folder: Path, start: Start, step: int) -> list[dict]:
    """Adds this start to the run's starts.jsonl; returns every start recorded, this one last."""
    runs.append_start(run_folder, {
        "step": step,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": os.uname().nodename,
        "from": (f"{start.source.run}/{start.source.checkpoint.name} ({start.source.mode})"
                 if start.source else start.resumes_from.name if start.resumes_from else None),
        "changed": {change.key: {"old": change.old, "new": change.new, "kind": change.kind}
                    for change in start.changes},
    })
    return runs.read_starts(run_folder)


def learned_changes_of(recorded: list[dict]) -> int:
    """How many hyperparameter values the run's resumes changed, over all its starts."""
    return sum(1 for start in recorded for change in (start.get("changed") or {}).values()
               if change.get("kind") == schema.LEARNED)


def as_markdown(recorded: list[dict]) -> str:
    """The run's starts as a table for TensorBoard's Text tab."""
    rows = ["| start | step | at (UTC) | host | from | changed |", "|---|---|---|---|---|---|"]
    for number, start in enumerate(recorded, start=1):
        changed = "; ".join(f"{key} {_shown(change['old'])} -> {_shown(change['new'])} "
                            f"({change['kind']})"
                            for key, change in (start.get("changed") or {}).items()) or "-"
        rows.append(f"| {number} | {start.get('step')} | {start.get('started_at')} | "
                    f"{start.get('host')} | {start.get('from') or 'nothing'} | {changed} |")
    return "\n".join(rows)


def _shown(value) -> str:
    return "null" if value is None else str(value)
