"""kill -9 the trainer at random moments, then let it train to max_steps: what each kill left and
what the next life resumed from, every checkpoint audited after each kill and at the end, and
eval's exits. tests/faults checks that it still reaches max_steps, never goes back further than
its last checkpoint, every checkpoint on disk restores, and eval never crashes."""
from __future__ import annotations

import dataclasses
import os
import random
import signal
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.checkpoints import audit_checkpoints, newest_listed
from tests.harness.faults.stack_log import Life, StackLog, program_pid, resumed_after
from tests.harness.native_stack import NativeStack, alive, small_config
from tests.harness.waiting import wait_until


# When a kill comes, dealt in turn: a quarter of the kills while the trainer starts, a quarter as
# it saves, half while it trains.
KILL_KINDS = ("starting", "saving", "training", "training")


@dataclasses.dataclass
class Kill:
    when: str                  # "starting", "saving" or "training"
    reached: int               # the step the killed life had reached (or its checkpoint)
    checkpoint: int | None     # the newest checkpoint the state file listed at the kill
    resumed: int | None        # the step the next life resumed from (None: none did)

    @property
    def steps_lost(self) -> int:
        return max(0, self.reached - (self.resumed or 0))


@dataclasses.dataclass
class CrashLoop:
    max_steps: int
    checkpoint_every_steps: int
    kills: list[Kill]
    # audit_checkpoints() right after each kill, before the next trainer touches a file
    restorable_after_kills: int
    checkpoints_after_kills: int
    partial_saves_after_kills: list[str]   # what a kill mid-save left (the next start removes it)
    problems_after_kills: list[str]        # anything else wrong: "after kill N: ..."
    exit_secs: float                # from "reached max_steps" to the trainer's exit
    newest_checkpoint: int | None   # at the end
    restorable_at_the_end: int
    checkpoints_at_the_end: int
    problems_at_the_end: list[str]
    eval_crashes: list[str]         # supervisord's lines of eval's unexpected exits

    def figures(self) -> dict:
        lost = [kill.steps_lost for kill in self.kills if kill.resumed is not None]
        return {
            "kills": len(self.kills),
            "kills_while_starting": sum(kill.when == "starting" for kill in self.kills),
            "steps_lost_per_kill_max": max(lost, default=0),
            "steps_lost_per_kill_mean": round(sum(lost) / len(lost), 1) if lost else 0,
            "checkpoint_every_steps": self.checkpoint_every_steps,
            "reached_max_steps": self.newest_checkpoint == self.max_steps,
            "restorable_checkpoints_after_each_kill": (f"{self.restorable_after_kills}/"
                                                       f"{self.checkpoints_after_kills}"),
            "partial_saves_left_by_kills": len(self.partial_saves_after_kills),
            "restorable_checkpoints_at_the_end": (f"{self.restorable_at_the_end}/"
                                                  f"{self.checkpoints_at_the_end}"),
            "trainer_exit_after_max_steps_secs": round(self.exit_secs, 1),
            "eval_crashes": len(self.eval_crashes),
        }


def crash_loop(folder: Path, kills: int, seed: int = 0) -> CrashLoop:
    """kill -9 the trainer `kills` times at random moments: a quarter while it starts (importing
    TensorFlow, reading the data, restoring), a quarter as it begins a checkpoint save, the rest
    a random number of steps into training, in a random order (three kills: one of each).
    Then lets it train to max_steps, and returns what it saw."""
    rng = random.Random(seed)
    kinds = [KILL_KINDS[number % len(KILL_KINDS)] for number in range(kills)]
    rng.shuffle(kinds)
    every = 25
    # Each life trains at most 2 x `every` steps before its kill, so the kills all happen
    # before max_steps; the last stretch then trains undisturbed.
    max_steps = kills * 2 * every + 150
    config = small_config(train={"max_steps": max_steps},
                          runtime={"checkpoint_every_steps": every, "checkpoint_every_secs": None,
                                   "log_every_secs": 0.001, "summary_every_steps": 100},
                          eval={"every_secs": 2})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    killed: list[dict] = []
    after_kills = {"restorable": 0, "total": 0, "partial_saves": [], "problems": []}
    stack.start()
    try:
        for when in kinds:
            life = wait_until(lambda: _new_life(log, "train", killed), 120, "the trainer to start",
                              interval=0.05)
            pid = program_pid(life)
            if when == "starting":
                time.sleep(rng.uniform(0.0, 8.0))
            else:
                log.wait(lambda: life.resumed_step is not None, 180, "the trainer to resume")
                if when == "saving":  # a save follows the log line of its step at once
                    target = (life.resumed_step // every + 1) * every
                else:
                    target = life.resumed_step + rng.randint(1, 2 * every)
                log.wait(lambda: (life.last_step or 0) >= target, 180, f"step {target}",
                         interval=0.005)
            os.kill(pid, signal.SIGKILL)
            log.wait(lambda: not alive(pid) and life.exit, 30, "supervisord to notice the kill")
            killed.append({"when": when, "life": life,
                           "checkpoint": newest_listed(stack.run_dir)})
            # What the kill left is what the next trainer resumes from (it spends seconds
            # importing TensorFlow before it touches a file).
            restorable, total, problems = audit_checkpoints(stack.run_dir)
            after_kills["restorable"] += restorable
            after_kills["total"] += total
            partial = [p for p in problems if p.startswith("a partial save")]
            after_kills["partial_saves"] += partial
            after_kills["problems"] += [f"after kill {len(killed)}: {p}"
                                        for p in problems if p not in partial]
        log.wait(lambda: log.matching(log_lines.REACHED_MAX_STEPS), 600,
                 f"the trainer to reach max_steps {max_steps}")
        reached_at, last = time.monotonic(), log.current("train")
        log.wait(lambda: last.exit, 120, "the trainer to exit after max_steps")
        exit_secs = time.monotonic() - reached_at
        # Eval goes on watching for runs to come: it is done once it says so.
        log.wait(lambda: log.matching(log_lines.EVAL_IDLE), 300,
                 "eval to evaluate the last checkpoint", interval=1)
    finally:
        stack.stop()
    log.update()

    lives = log.lives["train"]
    restorable, total, problems = audit_checkpoints(stack.run_dir)
    return CrashLoop(
        max_steps=max_steps, checkpoint_every_steps=every,
        kills=[Kill(when=kill["when"],
                    reached=(kill["life"].reached if kill["life"].reached is not None
                             else kill["checkpoint"] or 0),
                    checkpoint=kill["checkpoint"], resumed=resumed_after(lives, kill["life"]))
               for kill in killed],
        restorable_after_kills=after_kills["restorable"],
        checkpoints_after_kills=after_kills["total"],
        partial_saves_after_kills=after_kills["partial_saves"],
        problems_after_kills=after_kills["problems"],
        exit_secs=exit_secs, newest_checkpoint=newest_listed(stack.run_dir),
        restorable_at_the_end=restorable, checkpoints_at_the_end=total,
        problems_at_the_end=problems, eval_crashes=log.unexpected_exits("eval"))


def _new_life(log: StackLog, program: str, killed: list[dict]) -> Life | None:
    life = log.current(program)
    if life is None or life.exit or any(k["life"] is life for k in killed):
        return None
    return life
