"""kill -9 the trainer at random moments: it still reaches max_steps, never goes back further than
its last checkpoint, every checkpoint on disk restores, and eval never crashes."""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from tests.harness import log_lines
from tests.harness.checkpoints import audit_checkpoints, newest_listed
from tests.harness.faults.outcome import Outcome
from tests.harness.faults.stack_log import Life, StackLog, program_pid, resumed_after
from tests.harness.native_stack import NativeStack, alive, small_config
from tests.harness.waiting import wait_until


def crash_loop(folder: Path, kills: int, seed: int = 0) -> Outcome:
    """kill -9 the trainer `kills` times at random moments: a quarter while it starts (importing
    TensorFlow, reading the data, restoring), a quarter as it begins a checkpoint save, the rest
    a random number of steps into training. Then lets it train to max_steps."""
    rng = random.Random(seed)
    every = 25
    # Each life trains at most 2 x `every` steps before its kill, so the kills all happen
    # before max_steps; the last stretch then trains undisturbed.
    max_steps = kills * 2 * every + 150
    config = small_config(train={"max_steps": max_steps},
                          runtime={"checkpoint_every_steps": every, "checkpoint_every_secs": 0,
                                   "log_every_steps": 1, "summary_every_steps": 100},
                          eval={"every_secs": 2})
    stack = NativeStack(folder, config)
    log = StackLog(stack.log_file)
    faults: list[str] = []
    killed: list[dict] = []
    after_kills = {"restorable": 0, "total": 0, "partial_saves": 0}
    stack.start()
    try:
        for _ in range(kills):
            life = wait_until(lambda: _new_life(log, "train", killed), 120, "the trainer to start",
                              interval=0.05)
            pid = program_pid(life)
            when = rng.choice(["starting", "saving", "training", "training"])
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
            after_kills["partial_saves"] += len(partial)
            faults += [f"after kill {len(killed)}: {p}" for p in problems if p not in partial]
        log.wait(lambda: log.matching(log_lines.REACHED_MAX_STEPS), 600,
                 f"the trainer to reach max_steps {max_steps}")
        reached_at, last = time.monotonic(), log.current("train")
        log.wait(lambda: last.exit, 120, "the trainer to exit after max_steps")
        exit_secs = time.monotonic() - reached_at
        if exit_secs > 5:
            faults.append(f"the trainer took {exit_secs:.0f} s to exit after reaching max_steps")
        # Eval goes on watching for runs to come: it is done once it says so.
        log.wait(lambda: log.matching(log_lines.EVAL_IDLE), 300,
                 "eval to evaluate the last checkpoint", interval=1)
    finally:
        stack.stop()
    log.update()

    lives = log.lives["train"]
    lost = []
    for kill in killed:
        life = kill["life"]
        resumed = resumed_after(lives, life)
        reached = life.reached if life.reached is not None else kill["checkpoint"] or 0
        if resumed is None:
            faults.append(f"no life after the kill at step {reached} ever resumed")
            continue
        if resumed < (kill["checkpoint"] or 0):
            faults.append(f"killed at step {reached} with model.ckpt-{kill['checkpoint']} listed, "
                          f"it resumed from step {resumed}: further back than its checkpoint")
        lost.append(max(0, reached - resumed))
    final = newest_listed(stack.run_dir)
    if final != max_steps:
        faults.append(f"the newest checkpoint is {final}, not max_steps {max_steps}")
    faults += [f"eval crashed: {line}" for line in log.unexpected_exits("eval")]
    restorable, total, problems = audit_checkpoints(stack.run_dir)
    faults += problems
    return Outcome("crash_loop", {
        "kills": len(killed),
        "kills_while_starting": sum(k["when"] == "starting" for k in killed),
        "steps_lost_per_kill_max": max(lost, default=0),
        "steps_lost_per_kill_mean": round(sum(lost) / len(lost), 1) if lost else 0,
        "checkpoint_every_steps": every,
        "reached_max_steps": final == max_steps,
        "restorable_checkpoints_after_each_kill": (f"{after_kills['restorable']}/"
                                                   f"{after_kills['total']}"),
        "partial_saves_left_by_kills": after_kills["partial_saves"],
        "restorable_checkpoints_at_the_end": f"{restorable}/{total}",
        "eval_crashes": len(log.unexpected_exits("eval")),
    }, faults)


def _new_life(log: StackLog, program: str, killed: list[dict]) -> Life | None:
    life = log.current(program)
    if life is None or life.exit or any(k["life"] is life for k in killed):
        return None
    return life
