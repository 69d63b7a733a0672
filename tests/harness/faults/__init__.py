"""The appliance under what happens to it on a shared machine: one module per scenario, each
running the real thing (the three programs under supervisord through entrypoint.sh, as
`make run` starts them, on the synthetic set; or the image under podman) and looking at what it
does. Each scenario takes a work folder (and a size) and returns what it saw, a dataclass of its
own: exit codes, log lines, steps, files; its figures() sum that up.

tests/faults runs them at the quick size and checks what they saw against what the appliance
promises, one promise a test; `python -m bench.faults` runs them at the full size and prints
their figures. The lines below say what each does and what tests/faults checks of it.

  crash_loop       kill -9 the trainer at random moments: it still reaches max_steps, never goes
                   back further than its last checkpoint, every checkpoint restores, eval never
                   crashes
  curves           kill -9 the trainer between checkpoints (and eval now and then): TensorBoard's
                   HTTP API shows no curve of either run repeating a step or running backward,
                   HParams one row; a save cut short is removed at the next start, a user's older
                   checkpoint kept; nothing left in the temp folder
  stops            SIGTERM to supervisord (what `docker stop` sends) at random moments: each time
                   a checkpoint at the step reached, written within docker's grace period
  eval_race        a checkpoint every step, keep_checkpoints 2, eval polling without pause
  bad_configs      51 malformed configs: exit 2 naming the key or line, nothing started, nothing
                   written (natively, and through the image's entrypoint)
  changed_model    train.recipe changed on a train_dir that holds a run: refused, run kept
  bad_data         damaged, short or missing batch files, a download with the wrong MD5
  full_disk        train_dir on a small tmpfs that fills up, then space is freed; the trainer
                   waits it out (full_disk), and so does eval with checkpoints to evaluate
                   (eval_full_disk): says so once, never exits, records everything once freed
  neighbours       TensorBoard and eval killed: supervisord restarts them, training goes on
  container_checks the image: non-root processes, one port, a private control socket, no secret
                   nor credential in any layer; container_scenario() runs them on a fresh build

outcome.py holds the sizes and ScenarioError; stack_log.py follows a stack's log as it grows.
"""
