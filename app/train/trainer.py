"""The trainer: data in, checkpoints and summaries out, resumable at any moment.

    build    the seed (app/train/seeding.py), the strategy, the recipe's model and optimizer, the
             weight averages
    restore  the run's newest checkpoint that fits, if there is one, or the checkpoint of
             another run that train.init_from names; what this start changed was checked
             before anything was written, and is recorded (app/train/starts.py)
    loop     steps until train.max_steps or a stop signal, with progress lines, summaries and
             checkpoints at their cadences (app/train/cadence.py), which hold at any pace
    save     a last checkpoint at the step reached

One step: augmented batch (the batch of its step, augmented by the pipeline, or in the step:
Recipe.augments_in_step; either way a function of the seed and the step)
-> model -> the recipe's loss -> an optimizer step on the recipe's schedule -> moving averages of
the weights. The global step is the optimizer's own iteration counter, saved in every checkpoint,
so a restart continues the schedule where it stopped. In float16 the loss is scaled for the
gradients and a step whose gradients overflowed is skipped (app/train/loss_scaling.py): the
counter then stands still, and the loop reads the step reached from it.

Steps run several to a call where nothing has to happen between them (`train_steps`: a loop in
the graph, which draws its batches from the pipeline itself): on a GPU the tutorial CNN's step is a
fraction of a millisecond, and one Python round trip per step would set the speed, as Keras'
steps_per_execution knows. A call ends where something is due (the next summary step, checkpoint
by steps or max_steps) and lasts at most MAX_SECS_PER_CALL, which bounds how long a stop request
waits (runtime.steps_per_call caps or sets the number). Summary steps run one at a time. The rule
is app/train/call_size.py's, told once for the trainer and the benchmarks that time it.

Each call is timed: plain calls give the pace that sizes the next calls; a summary step's time
less that pace is what summaries cost, which spaces them (runtime.summary_max_share). On a job of
several workers both are means over the job, so that every worker runs the same calls. The first
call, and a process's first summary step, trace their graphs and are not timed.

A progress line comes after the first call, after the call that reaches runtime.log_every_secs
since the last one, and at the end (max_steps or a stop); it says what share of the time the
summaries took. Checkpoints (app/volume/checkpoints.py) are written every
`runtime.checkpoint_every_steps` (at least `checkpoint_min_gap_secs` apart) and/or
`runtime.checkpoint_every_secs`, on SIGTERM/SIGINT (after the step in flight) and at max_steps.

Everything goes into the run's folder, <train_dir>/<paths.run> (app/volume/runs.py), whose lock this
trainer holds while it trains: one trainer per run.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import time

import keras
import tensorflow as tf

from app import compat
from app.volume import checkpoints, disk_space, layout, runs
from app.data import cifar10, pipeline
from app.runtime import devices, process_end
from app.train import cadence, distribution, loss_scaling, seeding, starts
from app.train.call_size import CallSizes
from app.train.loss_scaling import LossScaling
from app.tensorboard import hparams, summaries
from app.model import recipes
from app.model.averages import MovingAverages
from app.exit_codes import AppError, ExitCode
from app.runtime.logs import duration

log = logging.getLogger(__name__)


class TrainingError(AppError):
    """Training cannot go on; the message says why and what was kept. A crash, as supervisord
    sees it: it restarts the trainer."""
    exit_code = ExitCode.CRASH


class TrainingDiverged(TrainingError):
    """The loss is no longer a number. supervisord does not restart this exit code: the same
    run would only diverge again."""
    exit_code = ExitCode.DIVERGED


class Trainer:
    # -- build ---------------------------------------------------------------------------------

    def __init__(self, config, recipe: recipes.Recipe | None = None,
                 start: starts.Start | None = None):
        """`recipe` is train.recipe's unless one is given (a benchmark's own network); `start`
        is what starts.check made of this start (checked here when not given)."""
        self.config = config
        self.start = start if start is not None else starts.check(config)
        train, runtime = config.train, config.runtime
        gpus = devices.configure(threads=runtime.threads, device=runtime.device)
        distribution.split_cpu(runtime.cpu_devices)
        self.strategy = distribution.create_strategy(runtime.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        # Every worker of a job resumes from the chief's checkpoints, in the run's folder.
        self.run_folder = runs.folder(config.paths.train_dir, config.paths.run)
        self.output = distribution.OutputFolder(self.run_folder)
        self.seed = seeding.seed_this_start(train.seed, train.deterministic)

        self.recipe = recipe or recipes.for_config(config)
        precision = devices.mixed_precision_policy(
            train.mixed_precision, bfloat16_is_safe=self.recipe.bfloat16_is_safe,
            float16_is_safe=self.recipe.float16_is_safe,
            compute_capability=devices.compute_capability(gpus),
            cpu_has_bfloat16=devices.cpu_has_bfloat16())
        keras.mixed_precision.set_global_policy(precision)
        xla = devices.use_xla(runtime.xla)
        # Summary steps run uncompiled: XLA cannot compile summary ops.
        self._compiled_forward_backward = tf.function(self._forward_backward, jit_compile=xla)
        source = f" from {self.start.source}" if self.start.source else ""
        log.info(f"training run '{config.paths.run}'{source} on {devices.describe(gpus)}; "
                 f"{distribution.describe(self.strategy)}; "
                 f"{devices.describe_precision(precision)}, XLA {'on' if xla else 'off'}")

        if train.seed is None:
            log.info(f"train.seed is null: this start draws seed {self.seed} (set train.seed to "
                     f"repeat a run)")
        log.info("; ".join(config.chosen))
        # train.batch_size is per replica; the job as a whole takes this many images a step.
        self.global_batch_size = train.batch_size * self.replicas
        batches = cifar10.prepare(config.data, config.paths.data_dir)
        images, labels = cifar10.load_split(batches, "train")
        self.examples_per_epoch = len(labels)
        self.training_images = images, labels

        with self.strategy.scope():
            self.model = self.recipe.build_model()
            self.learning_rate = self.recipe.learning_rate(
                self.examples_per_epoch / self.global_batch_size, self._learning_rate_scale())
            # Saved as `optimizer` whatever the precision; float16 wraps it (loss_scaling.py).
            self.optimizer = self.recipe.optimizer(self.learning_rate)
            self.loss_scaling = None
            if precision == "mixed_float16":
                self.loss_scaling = LossScaling(self.optimizer, self.model.trainable_variables)
            else:
                self.optimizer.build(self.model.trainable_variables)
            self.global_step = self.optimizer.iterations
            self.weight_averages = MovingAverages(self.model.trainable_variables,
                                                  train.moving_average_decay)
            loss_names = ["cross_entropy", *self.recipe.regularization_losses(self.model),
                          "total_loss"]
            self.loss_averages = summaries.LossAverages(loss_names)

        training_state = dict(step=self.global_step, model=self.model, optimizer=self.optimizer,
                              averages=self.weight_averages, loss_averages=self.loss_averages)
        # Restored without the loss scale, which a checkpoint of another precision lacks.
        self.checkpoint = tf.train.Checkpoint(**training_state)
        if self.loss_scaling:
            training_state[loss_scaling.CHECKPOINT_KEY] = self.loss_scaling.checkpointed
        self.saver = checkpoints.Saver(tf.train.Checkpoint(**training_state), self.output.path,
                                        runtime.keep_checkpoints)
        self.stop_requested = False
        self.summary_traced = False  # whether this process ran a summary step yet
        self.batches = None
        self.writer = self._with_room_on_disk(
            lambda: tf.summary.create_file_writer(str(self.output.path)), "open its event file")

    def dataset_from(self, step: int):
        """The training batches from `step` on, each split into the replicas' shares: the same
        batches at that step whether the run got there unbroken or resumed there."""
        images, labels = self.training_images
        return self.strategy.experimental_distribute_dataset(pipeline.training_dataset(
            images, labels, self.global_batch_size, self.recipe.pipeline_augment(),
            seed=self.seed, start_step=step))

    def _learning_rate_scale(self) -> float:
        # Linear scaling (Goyal et al., 2017): a k times larger batch takes k times larger steps.
        return self.replicas if self.config.train.scale_learning_rate == "linear" else 1.0

    # -- the step ------------------------------------------------------------------------------

    @tf.function
    def train_step(self, images, labels, write_summaries: bool):
        """One synchronous SGD step of all replicas. A Python bool, write_summaries traces two
        graphs: the plain one runs on all other steps and carries none of the summary work."""
        step = tf.convert_to_tensor(self.global_step)  # the step these gradients belong to
        per_replica_losses = self.strategy.run(
            self._replica_step, args=(step, images, labels, write_summaries))
        # Each replica's losses are its share of the global mean, so their sum is that mean.
        losses = {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                  for name, value in per_replica_losses.items()}
        self.weight_averages.update(step + 1)
        averaged_losses = self.loss_averages.update(losses)
        if write_summaries:
            summaries.write_losses(step, losses, averaged_losses, self.learning_rate(step))
            if self.loss_scaling:
                summaries.write_loss_scale(step, self.loss_scaling.scale)
        return losses["total_loss"]

    @tf.function
    def train_steps(self, batches, steps):
        """`steps` plain steps in one call, each on the next batch of the iterator; returns the
        last one's total loss. `steps` is a tensor, so that one graph serves every count."""
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            images, labels = next(batches)
            loss = self.train_step(images, labels, write_summaries=False)
        return loss

    def _replica_step(self, step, images, labels, write_summaries: bool):
        if self.recipe.augments_in_step:  # on this replica's device (recipe.py says why)
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            images = self.recipe.augment(
                images, pipeline.augmentation_seed(self.seed, step, replica))
        forward_backward = (self._forward_backward if write_summaries
                            else self._compiled_forward_backward)
        losses, gradients, layers = forward_backward(images, labels)
        variables = self.model.trainable_variables
        if self.loss_scaling:  # the gradients are of the scaled loss
            self.loss_scaling.apply(gradients, variables)
            gradients = self.loss_scaling.unscaled(gradients) if write_summaries else gradients
        else:
            self.optimizer.apply_gradients(zip(gradients, variables))
        if write_summaries:
            summaries.write_activations_and_gradients(step, images, layers,
                                                      zip(gradients, variables))
        return losses

    def _forward_backward(self, images, labels):
        """This replica's share of the losses, their gradients, and every layer's activations."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            logits = tf.cast(outputs[recipes.LOGITS], tf.float32)
            per_example = self.recipe.per_example_loss(labels, logits)
            losses = {"cross_entropy": tf.reduce_sum(per_example) / self.global_batch_size}
            # Gradients are summed over replicas; each carries 1/replicas of the decay term.
            for name, value in self.recipe.regularization_losses(self.model).items():
                losses[name] = value / self.replicas
            # The loss itself, before any scaling: not finite means diverged (see _run). With
            # float16 the gradients may overflow while it is finite: loss scaling skips those.
            losses["total_loss"] = tf.debugging.check_numerics(
                tf.add_n(list(losses.values())), "total_loss")
            differentiated = (self.loss_scaling.scale_loss(losses["total_loss"])
                              if self.loss_scaling else losses["total_loss"])
        return losses, tape.gradient(differentiated, variables), outputs[recipes.LAYERS]

    # -- run: restore, loop, save --------------------------------------------------------------

    def run(self) -> int:
        train = self.config.train
        self._restore()
        step = int(self.global_step.numpy())
        if step >= train.max_steps:
            log.info(f"already at step {step} >= train.max_steps {train.max_steps}; nothing to do")
            return ExitCode.DONE
        self._handle_stop_signals()
        recorded = []
        if self.output.chief:
            self._with_room_on_disk(
                lambda: runs.write_record(self.run_folder, self.config.to_yaml()),
                f"write {layout.RUN_RECORD_FILE}")
            recorded = self._with_room_on_disk(
                lambda: starts.record(self.run_folder, self.start, step),
                f"write {layout.STARTS_FILE}")
        with self.writer.as_default():
            summaries.mark_session_start(step)
            summaries.write_config(step, self.config.to_yaml())
            hparams.write_hparams(self.config, step)
            summaries.write_starts(step, starts.as_markdown(recorded))
            hparams.write_hyperparameter_changes(step, starts.learned_changes_of(recorded))
            step = self._loop(step)
        self._save(step)
        if self.stop_requested:
            log.info(f"stopped at step {step} on request; resume from "
                     f"{checkpoints.path_of(self.output.path, step).name}")
        else:
            log.info(f"reached train.max_steps = {train.max_steps}")
        return ExitCode.DONE

    def _restore(self) -> None:
        if self.output.chief:
            for removed in checkpoints.remove_unfinished_saves(self.run_folder):
                log.info(f"removed {removed}: a save cut short (by a kill or a full disk) "
                         f"before the state file listed it")
        try:
            restored = checkpoints.restore_newest_that_fits(
                self.checkpoint, self.run_folder,
                f"this model (train.recipe: {self.config.train.recipe})")
        except checkpoints.CheckpointsDoNotFit as error:
            raise checkpoints.CheckpointsDoNotFit(
                f"{error}. Another recipe or config made them, and starting over would save over "
                f"that run: go on with the config it was trained with, or give the new run "
                f"another name (paths.run)") from None
        if restored:
            log.info(f"resumed from {restored.name}")
            for line in starts.resume_lines(self.start):
                log.info(line)
            if self.loss_scaling:
                self._restore_loss_scale(restored)
        elif self.start.source:
            self._start_from(self.start.source)
        else:
            log.info(f"no checkpoint in {self.run_folder}; starting from step 0")

    def _start_from(self, source: starts.Source) -> None:
        """Takes what train.init_mode says of another run's checkpoint; that run is only read."""
        if source.mode == "continue":
            taken = self.checkpoint
        else:  # fine_tune: a new optimizer, from step 0
            taken = tf.train.Checkpoint(model=self.model, averages=self.weight_averages)
        try:
            taken.restore(str(source.checkpoint)).assert_existing_objects_matched().expect_partial()
        except (tf.errors.OpError, ValueError, AssertionError) as error:
            reason = str(error).strip().splitlines()[0][:200]
            raise starts.StartRefused(
                f"train.init_from: {self.config.train.init_from}: cannot restore "
                f"{source.checkpoint} into this run's model ({reason})") from None
        log.info(f"started from {source}")
        if self.loss_scaling and source.mode == "continue":
            self._restore_loss_scale(source.checkpoint)

    def _restore_loss_scale(self, checkpoint) -> None:
        if self.loss_scaling.restore(str(checkpoint)):
            log.info(f"float16: resumed at {self.loss_scaling.describe()}")
        else:
            log.info(f"float16: {checkpoint.name} was saved without loss scaling; starting at "
                     f"{self.loss_scaling.describe()}")

    def _loop(self, step: int) -> int:
        """Trains from `step` until max_steps or a stop request; returns the step reached."""
        train, runtime = self.config.train, self.config.runtime
        # Kept beyond the loop: deleting it can take a minute (see _exit_without_teardown).
        self.batches = iter(self.dataset_from(step))
        loop_started = last_save_time = last_line_time = time.monotonic()
        last_line_step, line_from_step, loop_from_step, calls = None, step, step, 0
        self.summary_share = cadence.SummaryShare()
        call_sizes = CallSizes(self.config, self.strategy, first_step=step)
        while step < train.max_steps and not self.stop_requested:
            steps, loss = self._call(step, call_sizes, first_call=calls == 0)
            step = self._step_reached(step, steps)
            calls += 1
            now = time.monotonic()
            self.summary_share.loop_secs = now - loop_started
            # A stop asked of one worker, or a save one worker's clock calls for, is the whole
            # job's after the same call: each save and each step is a collective.
            self.stop_requested, save_due = call_sizes.on_any_worker(
                self.stop_requested, cadence.checkpoint_due(runtime, step, now - last_save_time))
            if (self.stop_requested or cadence.progress_line_due(
                    runtime, step, train.max_steps, last_line_step, now - last_line_time)):
                sec_per_batch = (now - last_line_time) / max(1, step - line_from_step)
                self._log_progress(step, loss, sec_per_batch, (step - loop_from_step) / calls)
                last_line_time, last_line_step, line_from_step = now, step, step
            if save_due:
                self._save(step)
                last_save_time = time.monotonic()
        return step

    def _call(self, step: int, call_sizes: CallSizes, first_call: bool):
        """One call from `step`: a summary step alone, or as many plain steps as call_sizes says;
        times it for call_sizes. Returns the steps it ran and the last one's loss."""
        summary = call_sizes.summary_due(step)
        steps = call_sizes.steps(step)  # one on the first call: no pace is timed yet
        started = time.monotonic()
        if steps == 1:
            if first_call:  # once per process: later traces of the same graph export empty
                tf.summary.trace_on(graph=True)
            images, labels = next(self.batches)
            loss = self._run(step, lambda: self.train_step(
                images, labels, write_summaries=summary))
            if first_call:
                tf.summary.trace_export(name="train_step", step=step)
        else:
            loss = self._run(step, lambda: self.train_steps(self.batches, tf.constant(steps)))
        seconds = time.monotonic() - started
        # The first call traces its graph, and so does a process's first summary step: their
        # times are no pace.
        traced = first_call or (summary and not self.summary_traced)
        self.summary_traced = self.summary_traced or summary
        if summary and not traced:
            self.summary_share.add(call_sizes.timed_summary(seconds))
        elif not traced:
            call_sizes.timed(steps, seconds)
        return steps, loss

    def _step_reached(self, step: int, steps: int) -> int:
        """The global step after a call of `steps` from `step`: fewer when float16 skipped
        some (their gradients overflowed), which is said, and is a divergence only once even
        the smallest loss scale overflows."""
        if not self.loss_scaling:
            return step + steps
        reached = int(self.global_step.numpy())
        if reached - step < steps:
            log.info(f"skipped {steps - (reached - step)} of the steps after step {step}: their "
                     f"float16 gradients overflowed; {self.loss_scaling.describe()}")
        if self.loss_scaling.too_small():
            raise TrainingDiverged(
                f"the gradients overflow float16 even unscaled at step {reached + 1} "
                f"({self.loss_scaling.describe()}); training stopped. The last good checkpoint "
                f"is kept: {self._newest_checkpoint()}. Try a lower learning rate (the "
                f"`{self.config.train.recipe}:` section) or train.mixed_precision: float32")
        return reached

    def _run(self, step: int, call):
        """call(), one or several steps from `step`, its errors said in the user's words."""
        try:
            return call()
        except tf.errors.InvalidArgumentError as error:
            if "total_loss" not in error.message:
                raise
            # The step whose loss was not a number applied nothing: the counter stands before it.
            diverged_at = int(self.global_step.numpy()) + 1
            raise TrainingDiverged(
                f"the loss became NaN or infinite at step {diverged_at}; training stopped. "
                f"The last good checkpoint is kept: {self._newest_checkpoint()}. "
                f"Try a lower learning rate (the `{self.config.train.recipe}:` section)"
            ) from None
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError) as error:
            if self.config.runtime.strategy != "multi_worker":
                raise
            lost = distribution.lost_contact(error.message)
            raise TrainingError(
                f"lost contact with another worker of the job{f' ({lost})' if lost else ''} "
                f"after step {step} ({type(error).__name__}). Restart all workers: they resume "
                f"from the chief's newest checkpoint, {self._newest_checkpoint()}") from None

    def _log_progress(self, step: int, loss, sec_per_batch: float, steps_per_call: float) -> None:
        max_steps = self.config.train.max_steps
        examples_per_sec = self.global_batch_size / sec_per_batch
        eta = duration((max_steps - step) * sec_per_batch)
        replicas = f"{self.replicas} replicas; " if self.replicas > 1 else ""
        share = self.summary_share.share
        summaries_share = f"; summaries {share:.1%} of time" if share is not None else ""
        log.info(f"step {step}/{max_steps}, loss = {float(loss):.2f} "
                 f"({examples_per_sec:.1f} examples/sec; {sec_per_batch:.3f} sec/batch; "
                 f"{replicas}eta {eta}{summaries_share})")
        summaries.write_throughput(step, examples_per_sec, sec_per_batch, self.replicas)
        if self.output.chief:  # a view for eval and report: a full disk must not stop training
            with contextlib.suppress(OSError):
                runs.write_progress(self.run_folder, step, max_steps, examples_per_sec,
                                    sec_per_batch, steps_per_call, share)

    def _save(self, step: int) -> None:
        if self.saver.has_saved(step):
            return
        try:
            self._with_room_on_disk(lambda: self._write_checkpoint(step),
                                    f"save {checkpoints.path_of(self.output.path, step).name}")
        except (tf.errors.OpError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            raise TrainingError(
                f"cannot save a checkpoint at step {step} in {self.output.path}: {message}. "
                f"The last complete checkpoint is kept: {self._newest_checkpoint()}") from None
        if self.output.chief:
            log.info(f"saved {checkpoints.path_of(self.output.path, step).name}")

    def _write_checkpoint(self, step: int) -> None:
        self.saver.save(step)
        self.writer.flush()

    def _newest_checkpoint(self) -> str:
        return checkpoints.newest_name(self.run_folder)

    def _with_room_on_disk(self, write, what: str):
        try:
            return disk_space.with_room_on_disk(
                write, self.output.path, what,
                meanwhile=f"Training waits, its progress kept in memory, and goes on as soon as "
                          f"space is freed there. The last complete checkpoint is "
                          f"{self._newest_checkpoint()}",
                stop_requested=lambda: self.stop_requested)
        except disk_space.StoppedWhileDiskFull as error:
            raise TrainingError(f"{error}. The last complete checkpoint is kept: "
                                f"{self._newest_checkpoint()}") from None

    def _handle_stop_signals(self) -> None:
        def request_stop(signum, _frame):
            log.info(f"received {signal.Signals(signum).name}: saving after the current step")
            self.stop_requested = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)


def main(config) -> int:
    """Trains paths.run; an AppError (a busy run, a bad setup, checkpoints of another model, a
    stop while the disk was full) ends it, as `python -m app` reports it."""
    compat.adopt_old_layout(config.paths.train_dir, config.paths.run)
    start = starts.check(config)  # before anything is written: a refused start leaves no trace
    if distribution.is_chief():
        # Held until the process ends: closing it would let another trainer in.
        process_end.without_teardown(
            runs.hold_trainer_lock(runs.folder(config.paths.train_dir, config.paths.run)))
    trainer = Trainer(config, start=start)
    process_end.without_teardown(trainer)
    try:
        return trainer.run()
    finally:
        trainer.output.remove_if_temporary()
        trainer.writer.close()
