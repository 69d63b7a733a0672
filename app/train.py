"""The training loop: data in, checkpoints and summaries out, resumable at any moment.

One step: augmented batch -> model -> loss -> an optimizer step on the recipe's schedule ->
moving averages of the weights (app/recipes.py says what each recipe uses; the tutorial's is cross
entropy plus weight decay and plain SGD). The global step is the optimizer's own iteration counter,
saved in every checkpoint, so a restart continues the schedule where it stopped.

Checkpoints are `train_dir/model.ckpt-<global step>` with the `checkpoint` state file, written by
tf.train.CheckpointManager every `checkpoint_every_steps` and/or `checkpoint_every_secs`, on
SIGTERM/SIGINT (after the step in flight) and at max_steps.
"""
from __future__ import annotations

import errno
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from app import data, devices, distribute, hparams, recipes, summaries
from app.averages import MovingAverages

CHECKPOINT_NAME = "model.ckpt"
# A trainer that finds train_dir's disk full keeps its progress in memory and waits, rather than
# exit: a restart could only lose the steps since the last checkpoint, and supervisord would
# restart it at once, again and again, while the disk stays full. It tries again as soon as this
# much space was freed, and at least this often (in case space is freed elsewhere on a quota).
DISK_ROOM_WORTH_A_TRY = 1 << 20
DISK_FULL_RETRY_SECS = 60


class TrainingError(Exception):
    """Training cannot go on; the message says why and what was kept."""
    exit_code = 1


class CheckpointsDoNotFit(TrainingError):
    """train_dir holds checkpoints but none restores into this model: another model or config
    made them. Starting from step 0 would save over them and rotate that run away, so training
    refuses; supervisord does not restart exit 2 (bad input)."""
    exit_code = 2


class TrainingDiverged(TrainingError):
    """The loss is no longer a number. supervisord does not restart this exit code: the same
    run would only diverge again."""
    exit_code = 3


class Trainer:
    def __init__(self, config):
        self.config = config
        train = config.train
        devices.configure(threads=train.threads)
        distribute.split_cpu(train.cpu_devices)
        self.strategy = distribute.create_strategy(train.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.output = distribute.OutputFolder(config.paths.train_dir)
        self.train_dir = Path(config.paths.train_dir)
        if train.seed is not None:
            tf.random.set_seed(train.seed)

        self.recipe = recipes.for_config(config)
        precision = devices.mixed_precision_policy(train.mixed_precision,
                                                    self.recipe.bfloat16_is_safe)
        keras.mixed_precision.set_global_policy(precision)
        xla = devices.use_xla(train.xla)
        # Summary steps run uncompiled: XLA cannot compile summary ops.
        self._compiled_forward_backward = tf.function(self._forward_backward, jit_compile=xla)
        print(f"{self.replicas} replica(s) ({self.strategy.__class__.__name__}), "
              f"{precision}, XLA {'on' if xla else 'off'}", flush=True)

        # train.batch_size is per replica; the job as a whole takes this many images a step.
        self.global_batch_size = train.batch_size * self.replicas
        batches = data.prepare(config.data, config.paths.data_dir)
        images, labels = data.load_split(batches, "train")
        self.examples_per_epoch = len(labels)
        self.dataset = self.strategy.experimental_distribute_dataset(data.training_dataset(
            images, labels, self.global_batch_size, self.recipe.augment, seed=train.seed))

        with self.strategy.scope():
            self.model = self.recipe.build_model()
            self.learning_rate = self.recipe.learning_rate(
                self.examples_per_epoch / self.global_batch_size, self._learning_rate_scale())
            self.optimizer = self.recipe.optimizer(self.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
            self.global_step = self.optimizer.iterations
            self.weight_averages = MovingAverages(self.model.trainable_variables,
                                                  train.moving_average_decay)
            loss_names = ["cross_entropy", *self.recipe.regularization_losses(self.model),
                          "total_loss"]
            self.loss_averages = summaries.LossAverages(loss_names)

        self.checkpoint = tf.train.Checkpoint(
            step=self.global_step, model=self.model, optimizer=self.optimizer,
            averages=self.weight_averages, loss_averages=self.loss_averages)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.output.path), max_to_keep=train.keep_checkpoints,
            checkpoint_name=CHECKPOINT_NAME)
        self.stop_requested = False
        self.writer = self._with_room_on_disk(
            lambda: tf.summary.create_file_writer(str(self.output.path)), "open its event file")

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
        return losses["total_loss"]

    def _replica_step(self, step, images, labels, write_summaries: bool):
        forward_backward = (self._forward_backward if write_summaries
                            else self._compiled_forward_backward)
        losses, gradients, activations = forward_backward(images, labels)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(gradients, variables))
        if write_summaries:
            summaries.write_activations_and_gradients(step, images, activations,
                                                      zip(gradients, variables))
        return losses

    def _forward_backward(self, images, labels):
        """This replica's share of the losses, and their gradients."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            activations = self.model(images, training=True)
            logits = tf.cast(activations["softmax_linear"], tf.float32)
            per_example = self.recipe.per_example_loss(labels, logits)
            losses = {"cross_entropy": tf.reduce_sum(per_example) / self.global_batch_size}
            # Gradients are summed over replicas; each carries 1/replicas of the decay term.
            for name, value in self.recipe.regularization_losses(self.model).items():
                losses[name] = value / self.replicas
            losses["total_loss"] = tf.debugging.check_numerics(
                tf.add_n(list(losses.values())), "total_loss")
        return losses, tape.gradient(losses["total_loss"], variables), activations

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        train = self.config.train
        self._restore()
        step = int(self.global_step.numpy())
        if step >= train.max_steps:
            print(f"already at step {step} >= train.max_steps {train.max_steps}; nothing to do",
                  flush=True)
            return 0
        self._handle_stop_signals()
        with self.writer.as_default():
            summaries.write_config(step, self.config.to_yaml())
            hparams.write_hparams(self.config)
            self._loop(step)
        return 0

    def _loop(self, step: int) -> None:
        train = self.config.train
        # Kept beyond the loop: deleting it can take a minute (see _exit_without_teardown).
        batches = self.batches = iter(self.dataset)
        last_save_time = time.monotonic()
        last_log_time, last_log_step = time.monotonic(), step
        trace_graph = True
        while step < train.max_steps and not self.stop_requested:
            images, labels = next(batches)
            # The last step too, so that every curve reaches the end of the run.
            write_summaries = (step % train.summary_every_steps == 0
                               or step + 1 == train.max_steps)
            if trace_graph:  # once per process: later traces of the same graph export empty
                tf.summary.trace_on(graph=True)
            try:
                loss = self.train_step(images, labels, write_summaries=write_summaries)
            except tf.errors.InvalidArgumentError as error:
                if "total_loss" not in error.message:
                    raise
                raise TrainingDiverged(
                    f"the loss became NaN or infinite at step {step + 1}; training stopped. "
                    f"The last good checkpoint is kept: {self._newest_checkpoint()}. "
                    f"Try a lower train.initial_learning_rate") from None
            except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                    tf.errors.CancelledError) as error:
                if self.config.train.strategy != "multi_worker":
                    raise
                raise TrainingError(
                    f"lost contact with another worker of the job at step {step + 1} "
                    f"({type(error).__name__}). Restart all workers: they resume from "
                    f"the chief's newest checkpoint, {self._newest_checkpoint()}") from None
            if trace_graph:
                tf.summary.trace_export(name="train_step", step=step)
                trace_graph = False
            step += 1

            if step % train.log_every_steps == 0 or step == train.max_steps:
                now = time.monotonic()
                sec_per_batch = (now - last_log_time) / max(1, step - last_log_step)
                examples_per_sec = self.global_batch_size / sec_per_batch
                eta = _duration((train.max_steps - step) * sec_per_batch)
                replicas = f"{self.replicas} replicas; " if self.replicas > 1 else ""
                print(f"step {step}/{train.max_steps}, loss = {float(loss):.2f} "
                      f"({examples_per_sec:.1f} examples/sec; {sec_per_batch:.3f} sec/batch; "
                      f"{replicas}eta {eta})", flush=True)
                summaries.write_throughput(step, examples_per_sec, sec_per_batch, self.replicas)
                last_log_time, last_log_step = now, step

            due_by_steps = train.checkpoint_every_steps and step % train.checkpoint_every_steps == 0
            due_by_time = (train.checkpoint_every_secs
                           and time.monotonic() - last_save_time >= train.checkpoint_every_secs)
            if due_by_steps or due_by_time:
                self._save(step)
                last_save_time = time.monotonic()
        self._save(step)
        if self.stop_requested:
            print(f"stopped at step {step} on request; resume from {CHECKPOINT_NAME}-{step}",
                  flush=True)
        else:
            print(f"reached train.max_steps = {train.max_steps}", flush=True)

    # -- checkpoints ---------------------------------------------------------------------------

    def _checkpoints_in_train_dir(self) -> list[str]:
        # Every worker of a job resumes from the chief's checkpoints, in train_dir.
        state = tf.train.get_checkpoint_state(str(self.train_dir))
        return list(state.all_model_checkpoint_paths) if state else []

    def _newest_checkpoint(self) -> str:
        checkpoints = self._checkpoints_in_train_dir()
        return Path(checkpoints[-1]).name if checkpoints else "none yet"

    def _restore(self) -> None:
        """Resumes from the newest checkpoint that restores, newest first: a save cut short
        (a full disk, a kill -9) must not stop the run from resuming from the one before."""
        checkpoints = self._checkpoints_in_train_dir()
        newest_reason = None
        for path in reversed(checkpoints):
            path = str(self.train_dir / Path(path).name)
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, AssertionError) as error:
                print(f"cannot restore {path} ({type(error).__name__}: {error}); trying an older "
                      f"checkpoint", flush=True)
                if newest_reason is None:
                    newest_reason = str(error).strip().splitlines()[0][:200].rstrip(".")
                continue
            print(f"resumed from {Path(path).name}", flush=True)
            return
        if checkpoints:
            raise CheckpointsDoNotFit(
                f"none of the {len(checkpoints)} checkpoints in {self.train_dir} restores into "
                f"this model (train.model: {self.config.train.model}); the newest: "
                f"{newest_reason}. Another model or config made them, and starting over would "
                f"save over that run: go on with the config it was trained with, or give the new "
                f"run another paths.train_dir")
        print(f"no checkpoint in {self.train_dir}; starting from step 0", flush=True)

    def _save(self, step: int) -> None:
        if self.manager.latest_checkpoint == self._checkpoint_path(step):
            return
        try:
            self._with_room_on_disk(lambda: self._write_checkpoint(step),
                                    f"save {CHECKPOINT_NAME}-{step}")
        except (tf.errors.OpError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            raise TrainingError(
                f"cannot save a checkpoint at step {step} in {self.output.path}: {message}. "
                f"The last complete checkpoint is kept: {self._newest_checkpoint()}") from None
        if self.output.chief:
            print(f"saved {CHECKPOINT_NAME}-{step}", flush=True)

    def _checkpoint_path(self, step: int) -> str:
        return f"{self.output.path / CHECKPOINT_NAME}-{step}"

    def _write_checkpoint(self, step: int) -> None:
        if self.manager.latest_checkpoint != self._checkpoint_path(step):
            try:
                self.manager.save(checkpoint_number=step)
            except (tf.errors.OpError, OSError):
                # Half a checkpoint is never listed, never rotated away: it would only hold on
                # to the space that a full disk lacks.
                for partial in self.output.path.glob(f"{CHECKPOINT_NAME}-{step}[._]*"):
                    shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() \
                        else partial.unlink(missing_ok=True)
                raise
        self.writer.flush()

    def _with_room_on_disk(self, write, what: str):
        """Returns write(); while that fails because train_dir's disk is full, says so once and
        tries again every DISK_FULL_RETRY_SECS until there is room, or a stop is requested."""
        waiting_since = None
        while True:
            try:
                result = write()
            except (tf.errors.OpError, OSError) as error:
                if not _disk_full(error):
                    raise
                if self.stop_requested:
                    raise TrainingError(
                        f"stopped while the disk of {self.output.path} was full, unable to {what}."
                        f" The last complete checkpoint is kept: {self._newest_checkpoint()}"
                        ) from None
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    print(f"disk full: cannot {what}: no space left in {self.output.path}. "
                          f"Training waits, its progress kept in memory, and goes on as soon as "
                          f"space is freed there. The last complete checkpoint is "
                          f"{self._newest_checkpoint()}", flush=True)
                free_then = _free_bytes(self.output.path)
                deadline = time.monotonic() + DISK_FULL_RETRY_SECS
                while (time.monotonic() < deadline and not self.stop_requested
                       and _free_bytes(self.output.path) < free_then + DISK_ROOM_WORTH_A_TRY):
                    time.sleep(0.5)
                continue
            if waiting_since is not None:
                print(f"disk has room again after "
                      f"{_duration(time.monotonic() - waiting_since)}: going on", flush=True)
            return result

    def _handle_stop_signals(self) -> None:
        def request_stop(signum, _frame):
            print(f"received {signal.Signals(signum).name}: saving after the current step",
                  flush=True)
            self.stop_requested = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)


def _disk_full(error: Exception) -> bool:
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    # TensorFlow's file system errors carry the OS's words, not its errno.
    message = getattr(error, "message", "")
    return "No space left on device" in message or "Disk quota exceeded" in message


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def main(config) -> int:
    try:
        trainer = Trainer(config)
    except distribute.DistributionError as error:
        print(f"config error: {error}", flush=True)
        return 2
    try:
        exit_code = trainer.run()
    except TrainingError as error:
        print(f"error: {error}", flush=True)
        exit_code = error.exit_code
    finally:
        trainer.output.remove_if_temporary()
    _exit_without_teardown(trainer, exit_code)


def _exit_without_teardown(trainer: Trainer, exit_code: int) -> None:
    """Ends the process at once. Deleting the training iterator waits for tf.data's autotuning
    thread, whose sleep grows with the run towards a minute (TF 2.21: 40 s after 40 s of
    training), so a normal exit would overrun `docker stop`'s 10 s grace after every SIGTERM and
    hold the GPU after max_steps. The checkpoint is on disk by now; only the event file and our
    output still need flushing."""
    trainer.writer.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
