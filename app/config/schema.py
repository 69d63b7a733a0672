"""The configuration: YAML in, one typed, validated, frozen object out.

Each key is written once, here: a field of its section's dataclass, with its type, default,
limits and documentation. app/config/defaults.yaml is rendered from them (app/config/defaults.py).

Layers, each over the one before:
  1. the packaged defaults, app/config/defaults.yaml (every key, documented);
  2. the user's file (--config FILE, or the CIFAR10_CONFIG environment variable): only the keys
     it changes;
  3. environment overrides CIFAR10_<SECTION>_<KEY>=value, e.g. CIFAR10_TRAIN_MAX_STEPS=2000;
  4. command-line overrides --set section.key=value.

Values given as text (layers 3 and 4) are read as YAML scalars, so "2000" is a number and "false"
a boolean. Everything else is strict: an unknown key, a wrong type or a value out of range is a
ConfigError whose message names the source (file and line, variable, or --set) and the key.

A key that was renamed is still read under its old name for a release, with a one-line warning
that names the new one (app/compat.py).

A file may also list a sweep: runs that the trainer trains one after another, each a name and the
keys it changes (app/config/sweep.py reads and checks it; app/train/sweep.py trains it). Each is
checked like the rest, before anything starts.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import ipaddress
import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import yaml

from app import compat
from app.config import sources, sweep
from app.volume import runs
# What callers know the configuration by (app/config/__init__.py passes them on).
from app.config.sources import CONFIG_FILE_VARIABLE, OVERRIDE_PREFIX, ConfigError  # noqa: F401

DEFAULTS_FILE = Path(__file__).resolve().parent / "defaults.yaml"
# What urllib can fetch the data set from (file: a copy on a mounted disk).
URL_SCHEMES = ("http", "https", "ftp", "file")
# What a browser opens (tensorboard.url).
WEB_SCHEMES = ("http", "https")
# The real data set: five training batches of 10,000 images and test_batch.bin of 10,000. (The
# synthetic one holds what data.synthetic_train_examples and synthetic_test_examples say.)
CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000
# What train.batch_size `auto` is for each recipe: what its sources trained at (the tutorial's
# cifar10_train.py, and Page's and airbench's runs). train.max_steps `auto` is the tutorial's
# 100,000 steps, and for the fast recipe fast.epochs passes over the training images.
RECIPE_BATCH_SIZE = {"tutorial": 128, "fast": 512}
# The sections that hold one recipe's hyperparameters each, named after it (train.recipe).
RECIPE_SECTIONS = tuple(RECIPE_BATCH_SIZE)
TUTORIAL_MAX_STEPS = 100_000

# Until 2026-12-04 `eval.every_secs: 0` meant no pause between looks. Since then eval looks every
# 0.5 s by itself while there is training to watch, and the key is only its pause when idle, where
# no pause would be a busy loop: a 0 is refused with this advice.
EVERY_SECS_ADVICE = ("eval.every_secs is eval's pause between looks when idle; 0 used to mean "
                     "no pause, which now makes no sense: while a run trains eval looks every "
                     "0.5 s by itself. Give a pause in seconds, e.g. 300 (the default), or leave "
                     "the key out")

# What to_yaml shows instead of a password.
SECRET_LEFT_OUT = "(set, not shown)"
# What a key typed `int | Auto` takes besides its numbers: `auto`, the appliance decides
# (TensorFlow's thread pools, the steps in a call). 0 is never that: a 0 means off or none,
# wherever a key takes it.
Auto = Literal["auto"]


# What a key is to a run that resumes: the trainer compares the config it resumes with against
# the run's record (app/train/starts.py). Each section says it for its keys (AT_RESUME), a key
# where it differs from its section's; None: not the trainer's business (eval's, TensorBoard's).
LEARNED = "learned"          # what is learned: another value is refused, unless train.allow_changes
RUN_LENGTH = "run length"    # how long: goes on, unless the recipe's schedule spans the run
FIRST_START = "first start"  # read when a run starts from nothing: a resume leaves it be
MACHINE = "machine"          # how this machine runs it: goes on, and the log says what changed
# The keys of what the HParams tab shows as a run's hyperparameters.
HYPERPARAMETER_KINDS = (LEARNED, RUN_LENGTH, FIRST_START)


UNKNOWN = object()  # what a run recorded before a key existed trained with, where nobody knows


def _field(default, doc: str = "", minimum=None, choices=None, exclusive_minimum=None,
           maximum=None, url=(), ip_address=False, folder_name=False, run_reference=False,
           too_small="", at_resume="section's", before_it_existed=UNKNOWN):
    """A key, written once: its default, what it is for (its comment in defaults.yaml; none when
    the one above it covers it too), the limits its values are checked against, and what it is to
    a resumed run (at_resume: its section's AT_RESUME unless given) and, where known, the value a
    run recorded before the key existed trained with (before_it_existed); `too_small` is the advice
    added to the message when a value is under its minimum (where a value that is refused now
    meant something before, it says what); `url`, the schemes a URL may have; `ip_address`, an
    IPv4 or IPv6 address."""
    return dataclasses.field(default=default, metadata=dict(
        doc=inspect.cleandoc(doc), minimum=minimum, exclusive_minimum=exclusive_minimum,
        maximum=maximum, choices=choices, url=url, ip_address=ip_address,
        folder_name=folder_name, run_reference=run_reference, too_small=too_small,
        at_resume=at_resume, before_it_existed=before_it_existed))


@dataclasses.dataclass(frozen=True)
class PathsConfig:
    """Where the appliance keeps what it writes, and finds the data set."""
    AT_RESUME: ClassVar[str | None] = None
    train_dir: str = _field("/cifar10_train", doc="""
        The volume: one folder per run, which holds its checkpoints (model.ckpt-<step>, the
        `checkpoint` state file), its training event files and eval/ (eval's events and results).
        TensorBoard shows every run in it. Nothing ever wipes it: a restart resumes.""")
    run: str = _field("default", folder_name=True, doc="""
        The run this trainer trains (and `eval --once`, `report --run`, `predict` look at): the
        name of its folder in train_dir and of its line in TensorBoard, made of letters, digits,
        '.', '_', '-'.""")
    data_dir: str = _field("/cifar10_data", doc="""
        Where CIFAR-10 is downloaded to, or found already extracted (cifar-10-batches-bin/).
        May be mounted read-only when the data is already there.""")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The images the trainer learns from and eval measures on."""
    AT_RESUME: ClassVar[str | None] = LEARNED
    source: str = _field("cifar10", choices=("cifar10", "synthetic"), doc="""
        cifar10: the real data set (downloaded once and verified, or mounted).
        synthetic: a generated, learnable set in the same binary layout, for demos and tests.""")
    url: str = _field(
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", url=URL_SCHEMES,
        at_resume=None, doc="""
        The binary version from the data set's home page, and its published MD5.""")
    md5: str = _field("c32a1d4ab5d03f1284b67883e8d87530", at_resume=None)
    download_attempts: int = _field(3, minimum=1, at_resume=None, doc="""
        Download attempts before giving up (with a growing pause between them).""")
    synthetic_train_examples: int = _field(10000, minimum=5, doc="""
        Size of the synthetic set: training images (split over five batch files) and test images
        (10,000, as in the real set, so that eval.num_examples' default fits either source).""")
    synthetic_test_examples: int = _field(10000, minimum=1, at_resume=None)
    synthetic_seed: int = _field(0, minimum=0, doc="""
        The synthetic set is a pure function of this seed and the sizes above.""")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What is learned, and from how much: every key here is a hyperparameter, shown in the
    HParams tab with the recipe's section. How this machine runs the training is `runtime:`."""
    AT_RESUME: ClassVar[str | None] = LEARNED
    recipe: str = _field("tutorial", choices=RECIPE_SECTIONS, doc="""
        How to train, network included (app/model/recipes/): `tutorial` is the classic TensorFlow
        tutorial (its CNN, 1.07M parameters, trained its way; tuned in the `tutorial:` section);
        `fast` is ResNet-9 trained as the fastest known CIFAR-10 recipes train it (6.6M parameters;
        the `fast:` section).""")
    max_steps: int | Auto = _field("auto", minimum=1, at_resume=RUN_LENGTH, doc="""
        Training stops (with a final checkpoint) at this global step. auto: the recipe's own run
        length, the tutorial's 100,000 steps, or fast.epochs passes over the training images
        for the fast recipe (`check-config` shows what it came to).""")
    batch_size: int | Auto = _field("auto", minimum=1, doc="""
        Images per step (per replica). auto: the recipe's own, 128 for the tutorial, 512 for the
        fast recipe.""")
    moving_average_decay: float = _field(0.9999, minimum=0.0, maximum=1.0, doc="""
        Decay of the exponential moving averages of all trainable variables, kept in the checkpoint
        and used by eval. Early on the effective decay is min(decay, (1 + step) / (10 + step)).""")
    seed: int | None = _field(None, minimum=0, doc="""
        Seed of everything random in training: the initial weights, each epoch's order, every
        batch's augmentation (a function of the seed and the step, so that a resumed run sees the
        batches the unbroken run would have). null: each start draws one (the log says which).""")
    deterministic: bool = _field(False, at_resume=MACHINE, doc="""
        Make the ops repeat too (TensorFlow's op determinism), so that two runs of one config and
        seed give bit-identical weights and curves on the same machine and TensorFlow build, a
        run killed and resumed included. Needs train.seed. Without it a seed already fixes the
        weights, the batches and their augmentation; what may still differ is the order in which
        some kernels add up (on GPUs, cuDNN's chosen convolution algorithms and sums by atomic
        adds), and with it the rounding.""")
    scale_learning_rate: str = _field("linear", choices=("linear", "none"), doc="""
        train.batch_size is per replica: a step takes batch_size x replicas images. `linear`
        multiplies the recipe's learning rates by the number of replicas to match (Goyal et al.,
        2017); `none` keeps them.""")
    # Words that YAML does not read as booleans (it would read on/off/yes/no so).
    mixed_precision: str = _field("auto", choices=("auto", "float32", "bfloat16", "float16"),
                                  doc="""
        What the network computes in, the weights kept in float32 (auto|float32|bfloat16|float16).
        float16 runs with dynamic loss scaling: a step whose gradients overflowed is skipped and
        the scale halved (said in the log; the scale is the `loss_scale` curve and is kept in the
        checkpoint); the global step counts the steps applied. auto: bfloat16 for the fast recipe
        on GPUs from Ampere on (compute capability 8.0+) and on CPUs with bfloat16 instructions
        (AVX512_BF16, AMX); float16 for it on Volta and Turing (7.x: V100, T4), whose tensor cores
        have no bfloat16; float32 for the tutorial CNN, which was seen to diverge in bfloat16 at
        its learning rate, and on other hardware.""")
    init_from: str | None = _field(None, run_reference=True, at_resume=FIRST_START, doc="""
        Start this run from another run's checkpoint instead of from nothing: RUN (its newest
        checkpoint) or RUN@STEP (its newest at or before STEP), a run of the same recipe in
        train_dir. The other run is only read. Used when this run has no checkpoint yet; once
        it has, it resumes from its own.""")
    init_mode: str = _field("continue", choices=("continue", "fine_tune"),
                            at_resume=FIRST_START, doc="""
        What init_from takes: `continue` the weights, their averages, the optimizer's state and
        the step count (the run's curves start at that step, its schedule goes on from there);
        `fine_tune` the weights and their averages only, from step 0 with a new optimizer.""")
    allow_changes: bool = _field(False, at_resume=None, doc="""
        A run resumed with other values of what it learns (any key of train:, its recipe's
        section, data.source and the synthetic set's size and seed) is refused, naming them, so
        that a curve never mixes two experiments unsaid. true lets it go on with them: the change
        is recorded in the run's starts.jsonl, shown in TensorBoard's Text tab, and counted in
        its HParams row. (How the machine runs it, runtime:, may always change.)""")


@dataclasses.dataclass(frozen=True)
class TutorialConfig:
    """The tutorial's recipe (train.recipe: tutorial), with the values of its cifar10.py."""
    AT_RESUME: ClassVar[str | None] = LEARNED
    initial_learning_rate: float = _field(0.1, exclusive_minimum=0.0, doc="""
        Plain SGD at initial_learning_rate, multiplied by learning_rate_decay_factor every
        epochs_per_decay epochs (staircase): at batch 128, 0.1 for the first 136,718 steps, which is
        longer than the tutorial ever trained (it reached 86% in 100k steps).""")
    learning_rate_decay_factor: float = _field(0.1, exclusive_minimum=0.0, maximum=1.0)
    epochs_per_decay: float = _field(350.0, exclusive_minimum=0.0)
    weight_decay: float = _field(0.004, minimum=0.0, doc="""
        L2 weight decay on the kernels of local3 and local4 only, the fully connected layers that
        hold most of the parameters (and overfit first); the convolutions are left free.""")
    gradient_clip_norm: float | None = _field(10.0, exclusive_minimum=0.0, before_it_existed=None,
                                              doc="""
        A step whose gradients' global norm is above this is scaled down to it; null never clips,
        as the tutorial did not. Not the tutorial's: at its rate of 0.1, plain SGD overshoots once
        the network has fitted what it can of a set, and on the synthetic set a run could fall
        back to chance level, or to NaN (bench/RESULTS.md, section 17). On a photo-like set the
        norm stayed below 5 over 600 steps, so there it never acts.""")


@dataclasses.dataclass(frozen=True)
class FastConfig:
    """The fast recipe (train.recipe: fast), after David Page's "How to train your ResNet" and
    Keller Jordan's airbench. Their 94% CIFAR-10 runs took about 10 epochs at batch 512."""
    AT_RESUME: ClassVar[str | None] = LEARNED
    epochs: float = _field(10.0, exclusive_minimum=0.0, doc="""
        The run's length where train.max_steps is auto: this many passes over the training images
        at train.batch_size (10 on CIFAR-10 at 512: 977 steps).""")
    width: int = _field(64, minimum=1, doc="""
        Channels of the first layer; the three stages have 2x, 4x and 8x as many (Page's 64).
        Narrower trains faster and reaches less.""")
    peak_learning_rate: float = _field(0.4, exclusive_minimum=0.0, doc="""
        The one-cycle schedule: linear from 0 to this peak over the first warmup_fraction of
        train.max_steps, then linear back to 0 at max_steps. A high peak reached slowly lets a short
        run take large steps without diverging early (Smith's super-convergence; Page's 0.4).""")
    warmup_fraction: float = _field(0.25, exclusive_minimum=0.0, maximum=1.0)
    momentum: float = _field(0.9, minimum=0.0, maximum=1.0, doc="""
        Nesterov momentum, as Page used it.""")
    weight_decay: float = _field(0.0005, minimum=0.0, doc="""
        Weight decay applied by the optimizer, decoupled from the loss (Page's 5e-4).""")
    label_smoothing: float = _field(0.2, minimum=0.0, maximum=1.0, doc="""
        Cross entropy against targets of 1 - s on the true class and s/10 spread over all classes:
        over-confident scores are what a 10-epoch run most overfits into (Page: 0.2).""")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """How the trainer runs on this machine, and what it writes down how often: none of it
    changes what is learned (the HParams tab shows train: and the recipe's section, not
    this). The cadences belong here beside the devices: a GPU's pace asks for other
    cadences than a CPU's, and steps_per_call runs up to the next of them.
    """
    AT_RESUME: ClassVar[str | None] = MACHINE
    device: str = _field("auto", choices=("auto", "gpu", "cpu"), doc="""
        What to train on: auto uses the GPUs TensorFlow sees, else the CPU, but refuses to start
        (exit 2, saying why) when the container was given GPUs that TensorFlow cannot use; gpu
        refuses to start without one; cpu trains on the CPU even where there are GPUs.""")
    strategy: str = _field("auto", choices=("auto", "mirrored", "multi_worker"), doc="""
        How training spreads over devices and machines (see docs/scaling.md):
          auto          all GPUs of this machine in sync (MirroredStrategy) when there are several,
                        else the one GPU or the CPU
          mirrored      MirroredStrategy, also on one device
          multi_worker  MultiWorkerMirroredStrategy over the machines named in TF_CONFIG; only the
                        chief writes checkpoints and summaries into train_dir""")
    threads: int | Auto = _field("auto", minimum=1, doc="""
        CPU threads for TensorFlow's ops (auto: TensorFlow decides, usually all cores).""")
    cpu_devices: int = _field(1, minimum=1, doc="""
        Split the CPU into this many logical devices: distribution on a machine without GPUs
        (tests).""")
    xla: str = _field("auto", choices=("auto", "enabled", "disabled"), doc="""
        Compile the forward and backward pass with XLA (auto|enabled|disabled; summary steps stay
        uncompiled: XLA cannot compile summary ops). auto: enabled with a GPU, disabled on the CPU,
        where it measured ~20% slower.""")
    steps_per_call: int | Auto = _field("auto", minimum=1, doc="""
        Steps run in one call to TensorFlow, without a return to Python in between (as Keras'
        steps_per_execution): auto runs as many as there are before the next summary step,
        checkpoint by steps or max_steps, and at most ~1 s of them, so that a stop is answered at
        once; N caps that at N (1: one step a call). A progress line never ends a call.""")
    # The cadences below hold at any pace, from a GPU's 0.3 ms step to a CPU's 300 ms one: each
    # counted in steps has a bound in seconds beside it. Each is a number > 0; null turns off
    # what takes it.
    checkpoint_every_steps: int | None = _field(1000, exclusive_minimum=0, doc="""
        Save a checkpoint every this many steps and/or seconds (null turns either trigger off);
        the trainer also saves at max_steps and on a stop. Eval evaluates each checkpoint it
        finds: the steps give it a curve on a slow machine, the seconds on a fast one.""")
    checkpoint_every_secs: float | None = _field(600.0, exclusive_minimum=0.0)
    checkpoint_min_gap_secs: float | None = _field(5.0, exclusive_minimum=0.0, doc="""
        No save by checkpoint_every_steps sooner than this after the last save (null: no gap).
        On a GPU 1000 steps take ~0.5 s: without it the trainer would save twice a second and
        rotate checkpoints away faster than eval reads them; 5 s keeps saves (~30 ms each) under
        1% of the time. The save by seconds, at max_steps and on a stop are never held back.""")
    keep_checkpoints: int = _field(5, minimum=1, doc="""
        Checkpoints kept on disk; older ones are rotated away.""")
    summary_every_steps: int = _field(100, exclusive_minimum=0, doc="""
        Write summaries (histograms, images, losses) at most every this many steps, on a grid of
        this many x 1, 2, 4, ... steps that summary_max_share widens, and at the last step, so
        that every curve reaches the end of the run.""")
    summary_max_share: float | None = _field(0.02, exclusive_minimum=0.0, maximum=1.0, doc="""
        The most of the training time that summary steps may take beyond a plain step (null: no
        limit, summaries every summary_every_steps). The trainer measures each summary step's
        extra time and doubles the spacing (at most once a summary) until it fits, or halves it
        back. A summary step costs about the same extra time at any pace (bench/summary_cost.py:
        ~20 ms on a CPU beside a 100 ms step, 40x a GPU's 0.5 ms step): counted in steps alone,
        summaries would take ~0.2% of a CPU's time and ~30% of a GPU's. 2% keeps them within 3% of
        the time, noise and the steps before the first measurement included.""")
    log_every_secs: float = _field(15.0, exclusive_minimum=0.0, doc="""
        Print a progress line (and write the throughput curve and progress.json) every this many
        seconds, whatever the pace; also after the first call (the run is going) and at the end
        (max_steps or a stop). 15 s: four lines a minute, which a person reads as they come and a
        day-long run keeps in ~6,000 lines; a stalled run shows within 15 s. (Counted in steps,
        the old cadence printed 180 lines a second on a GPU and one a minute at batch 1024 on a
        CPU.)""")
    log_every_steps: int | None = _field(None, exclusive_minimum=0, doc="""
        The old cadence, still read: a line after each call that crosses a multiple of this many
        steps, instead of log_every_secs (null: by seconds). It no longer ends a call.""")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Eval, the program beside the trainer that measures every run's new checkpoints."""
    AT_RESUME: ClassVar[str | None] = None
    every_secs: float = _field(300.0, exclusive_minimum=0.0, too_small=EVERY_SECS_ADVICE, doc="""
        The pause between looks for new checkpoints while eval is idle (every run evaluated up
        to its max_steps, none training), as in the tutorial. While there is training to watch,
        eval looks every 0.5 s (or every this many seconds, if fewer), so that it keeps up with a
        trainer at a GPU's pace; a trainer starting ends an idle pause within 0.5 s.""")
    num_examples: int = _field(10000, minimum=1, doc="""
        Test images evaluated, each exactly once (at most the size of the test set).""")
    batch_size: int = _field(500, minimum=1)
    use_moving_averages: bool = _field(True, doc="""
        Restore the exponential moving averages (as the tutorial did); false uses the raw
        weights.""")
    device: str = _field("auto", choices=("auto", "gpu", "cpu"), doc="""
        What to evaluate on, as runtime.device (auto, gpu, cpu). cpu leaves the GPU to the
        trainer.""")
    threads: int | Auto = _field(1, minimum=1, doc="""
        CPU threads for eval's ops (auto: TensorFlow decides). 1 keeps eval from slowing training
        down on small machines.""")
    niceness: int = _field(19, minimum=0, maximum=19, doc="""
        Eval's CPU priority (0-19, as `nice`): at 19 it gets only the CPU the trainer leaves, so it
        never slows training down; 0 shares the CPU evenly (faster evaluations, slower
        training).""")
    gpu_memory_limit_mb: int = _field(2048, minimum=0, doc="""
        Eval never grabs the whole GPU (memory growth is on). A cap in MiB on what it may take,
        0 for no cap.""")


@dataclasses.dataclass(frozen=True)
class ProjectorConfig:
    """What eval writes for TensorBoard's Projector tab."""
    AT_RESUME: ClassVar[str | None] = None
    examples: int = _field(1000, minimum=0, maximum=10000, doc="""
        Test images placed in TensorBoard's Projector tab by their penultimate-layer (local4)
        activations, coloured by class: the first ones of the test set (all of it if it is smaller);
        0: no projector. For 1,000 images a write costs ~0.25 s on one CPU thread and ~1 MB on
        disk.""")
    every_evals: int = _field(1, minimum=1, doc="""
        Write them at every this-many-th evaluation (and always at train.max_steps); the newest 5
        writes are kept, so the Projector can show the classes drawing apart.""")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The models eval exports for serving."""
    AT_RESUME: ClassVar[str | None] = None
    best: bool = _field(True, doc="""
        Whenever an evaluation beats the run's best so far, export that model as a SavedModel that
        TensorFlow Serving loads: <run>/export/<step>/, image files (or uint8 32x32x3 pixels) in,
        class probabilities and names out. The newest version is always the best.""")
    keep: int = _field(3, minimum=1, doc="""
        Versions kept in <run>/export (the older ones are let go of).""")


@dataclasses.dataclass(frozen=True)
class TensorBoardConfig:
    """TensorBoard, serving every run of train_dir."""
    AT_RESUME: ClassVar[str | None] = None
    port: int = _field(6006, minimum=1, maximum=65535)
    address: str = _field("127.0.0.1", ip_address=True, doc="""
        The address TensorBoard listens on: 127.0.0.1, this machine only (what `make run`
        serves); 0.0.0.0, every interface (what the image sets, since a published port needs
        it; natively `TENSORBOARD_ADDRESS=0.0.0.0 make run`). Off loopback, give it a password
        (below).""")
    url: str | None = _field(None, url=WEB_SCHEMES, doc="""
        Where to open TensorBoard, as the log's `open ...` line tells it; by default
        http://localhost:<port>, which in a container is what `-p 127.0.0.1:6006:6006` publishes.
        Set it when you publish another port or reach it by another name, e.g.
        CIFAR10_TENSORBOARD_URL=http://localhost:6007 with `-p 127.0.0.1:6007:6006`.""")
    reload_every_secs: float = _field(5.0, exclusive_minimum=0.0, doc="""
        Scan train_dir for new event files every this many seconds.""")
    password: str | None = _field(None, doc="""
        TensorBoard has no login of its own: whoever reaches the port sees every run. With a
        password, every page and data route asks for it (HTTP Basic authentication, any user name).
        Give it here, or better in a file (a Docker or Kubernetes secret), named by password_file;
        not both.""")
    password_file: str | None = _field(None)


@dataclasses.dataclass(frozen=True)
class Config:
    paths: PathsConfig
    data: DataConfig
    train: TrainConfig
    tutorial: TutorialConfig
    fast: FastConfig
    runtime: RuntimeConfig
    eval: EvalConfig
    projector: ProjectorConfig
    export: ExportConfig
    tensorboard: TensorBoardConfig
    sweep: tuple[sweep.SweepEntry, ...] = _field((), doc="""
        Runs the trainer trains one after another, each in a folder of its own, instead of
        paths.run: a name (its folder, its line in TensorBoard) and the keys it changes. After a
        restart the finished runs are skipped and the one in progress resumes; HParams compares
        them. Only in a config file, for example
          sweep:
            - run: lr-0.05
              set: {tutorial.initial_learning_rate: 0.05}
            - run: lr-0.2
              set: {tutorial.initial_learning_rate: 0.2, train.batch_size: 256}""")
    # The run's length as it came to be, a line per key with where it came from (auto, or the
    # file, variable or --set that set it): for check-config and the trainer's log. Not a key.
    chosen: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def as_dict(self) -> dict:
        settings = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        settings[sweep.SECTION] = sweep.as_written(self.sweep)
        return settings

    def to_yaml(self) -> str:
        """The configuration as a user writes it, the password left out (it lands in logs and in
        TensorBoard's Text tab)."""
        settings = self.as_dict()
        if settings["tensorboard"]["password"] is not None:
            settings["tensorboard"]["password"] = SECRET_LEFT_OUT
        return yaml.safe_dump(settings, sort_keys=False)


# With postponed annotations, dataclass field types are the names written above.
SECTIONS: dict[str, type] = {f.name: globals()[f.type] for f in dataclasses.fields(Config)
                             if f.name not in (sweep.SECTION, "chosen")}
VALUE_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def in_effect(config: Config, section: str, key: str) -> bool:
    """Whether section.key has a say in this config: a recipe's section only for the run's own
    recipe, the synthetic set's keys only for the synthetic source."""
    if section in RECIPE_SECTIONS:
        return section == config.train.recipe
    if section == "data" and key.startswith("synthetic_"):
        return config.data.source == "synthetic"
    return True


def at_resume(section: str, key: str) -> str | None:
    """What section.key is to a resumed run: LEARNED, RUN_LENGTH, FIRST_START, MACHINE or None."""
    kind = _metadata(section, key)["at_resume"]
    return SECTIONS[section].AT_RESUME if kind == "section's" else kind


def with_a_say_at_resume(config: Config):
    """(section, key, value, kind) of every key that has a say in this config (in_effect) and
    that a resume compares (at_resume is not None), section by section, as the schema lists them:
    what a resume checks (app/train/starts.py) and HParams shows (app/tensorboard/hparams.py)."""
    for section in SECTIONS:
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            kind = at_resume(section, key)
            if kind is not None and in_effect(config, section, key):
                yield section, key, value, kind


def before_it_existed(section: str, key: str):
    """The value of section.key a run recorded before the key existed trained with, or UNKNOWN."""
    return _metadata(section, key)["before_it_existed"]


@functools.cache
def _metadata(section: str, key: str):
    return next(field.metadata for field in dataclasses.fields(SECTIONS[section])
                if field.name == key)


# Sections written as a list, each with what reads it.
LISTS = {sweep.SECTION: sweep.read}
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def load(config_file: str | None = None, overrides: list[str] = (),
         environ: Mapping[str, str] | None = None) -> Config:
    """Resolves the four layers into a Config, or raises ConfigError."""
    environ = os.environ if environ is None else environ
    raw = sources.read_yaml_file(DEFAULTS_FILE, SECTIONS, LISTS)
    user_file = config_file or environ.get(sources.CONFIG_FILE_VARIABLE)
    if user_file:
        user_layer = sources.read_yaml_file(Path(user_file), SECTIONS, LISTS)
        sources.merge(raw, compat.as_written_now(user_layer))
    for layer in (sources.environment_overrides(environ),
                  sources.command_line_overrides(overrides)):
        sweep.refuse_outside_a_file(layer)
        sources.merge(raw, compat.as_written_now(layer))
    return _build(raw)


def _check_section(section: str, origin: str) -> type:
    sources.check_section(section, SECTIONS, origin)
    return SECTIONS[section]


def _build(raw: dict[str, dict[str, sources.Setting]]) -> Config:
    written = sweep.take(raw)
    config = _build_sections(raw)
    return dataclasses.replace(config, sweep=sweep.entries(written, raw, _build_sections))


def _build_sections(raw: dict[str, dict[str, sources.Setting]]) -> Config:
    sections = {}
    for section, settings in raw.items():
        first_origin = next(iter(settings.values())).origin
        section_type = _check_section(section, first_origin)
        fields = {f.name: f for f in dataclasses.fields(section_type)}
        values = {}
        for key, setting in settings.items():
            if key not in fields:
                raise ConfigError(f"{setting.origin}: unknown key '{section}.{key}'"
                                  f"{sources.did_you_mean(key, fields, prefix=section + '.')}")
            values[key] = _checked(section, fields[key], setting)
        missing = set(fields) - set(values)
        if missing:  # only possible if the packaged defaults are broken
            raise ConfigError(f"{DEFAULTS_FILE}: missing keys {sorted(missing)} in '{section}'")
        sections[section] = section_type(**values)
    config = _with_run_length(Config(**sections), raw)
    _check_together(config, raw)
    return config


def _with_run_length(config: Config, raw: dict[str, dict[str, sources.Setting]]) -> Config:
    """`config` with train.batch_size and train.max_steps `auto` turned into the recipe's own
    numbers, and what each came to and from where in config.chosen, so that check-config and
    the trainer's first lines tell the user how long the run is and why."""
    train = config.train
    origin = {key: raw["train"][key].origin for key in ("batch_size", "max_steps")}
    batch_size, max_steps = train.batch_size, train.max_steps
    why = {key: f"set in {origin[key]}" for key in origin}
    if batch_size == sources.AUTO:
        batch_size = RECIPE_BATCH_SIZE[train.recipe]
        why["batch_size"] = f"auto: the {train.recipe} recipe's own"
    if max_steps == sources.AUTO and train.recipe == "fast":
        images = (config.data.synthetic_train_examples if config.data.source == "synthetic"
                  else CIFAR10_TRAIN_IMAGES)
        max_steps = math.ceil(config.fast.epochs * images / batch_size)
        why["max_steps"] = (f"auto: fast.epochs {config.fast.epochs:g} x {images:,} training "
                            f"images / batch {batch_size}")
    elif max_steps == sources.AUTO:
        max_steps = TUTORIAL_MAX_STEPS
        why["max_steps"] = f"auto: the {train.recipe} recipe's own"
    chosen = (f"train.max_steps: {max_steps} ({why['max_steps']})",
              f"train.batch_size: {batch_size} ({why['batch_size']})")
    train = dataclasses.replace(train, batch_size=batch_size, max_steps=max_steps)
    return dataclasses.replace(config, train=train, chosen=chosen)


def _check_together(config: Config, raw: dict[str, dict[str, sources.Setting]]) -> None:
    """Rules between keys, reported where the key that breaks them was set: caught here, they
    stop the appliance before it starts instead of one of its programs later."""
    data = config.data
    test_images = (data.synthetic_test_examples if data.source == "synthetic"
                   else CIFAR10_TEST_IMAGES)
    if config.eval.num_examples > test_images:
        raise ConfigError(
            f"{raw['eval']['num_examples'].origin}: eval.num_examples: expected at most the "
            f"{test_images:,} images of the {data.source} test set, got "
            f"{config.eval.num_examples:,}")
    if config.train.deterministic and config.train.seed is None:
        raise ConfigError(f"{raw['train']['deterministic'].origin}: train.deterministic: true "
                          f"needs train.seed (a number): without one, each start draws its own "
                          f"seed and no two runs could repeat")
    tensorboard = config.tensorboard
    if tensorboard.password and tensorboard.password_file:
        raise ConfigError(f"{raw['tensorboard']['password_file'].origin}: "
                          f"tensorboard.password_file: set either it or tensorboard.password, "
                          f"not both")
    if tensorboard.password_file:
        _check_password_file(tensorboard.password_file, raw["tensorboard"]["password_file"].origin)


def _check_password_file(path: str, origin: str) -> None:
    """A password file that is missing, unreadable or empty would leave TensorBoard open, or not
    start it at all: both are refused here, before anything starts."""
    where = f"{origin}: tensorboard.password_file: {path}"
    try:
        with open(path, encoding="utf-8") as secret:
            empty = not secret.read().strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise ConfigError(f"{where}: cannot read it as uid {os.getuid()} ({reason})") from None
    if empty:
        raise ConfigError(f"{where}: the file is empty; it must hold the password")


def _checked(section: str, field: dataclasses.Field, setting: sources.Setting) -> Any:
    value, name = setting.value, f"{section}.{field.name}"
    optional = field.type.endswith(" | None")
    or_auto = f" or {sources.AUTO}" if field.type.endswith(" | Auto") else ""
    base_type = VALUE_TYPES[field.type.removesuffix(" | None").removesuffix(" | Auto")]

    def fail(expectation: str, advice: str = ""):
        raise ConfigError(f"{setting.origin}: {name}: expected {expectation}, got {value!r}"
                          f"{advice}")

    if value == sources.AUTO and or_auto:
        return sources.AUTO
    if value is None:
        if optional:
            return None
        fail(f"a value ({_describe(base_type)})")
    if base_type is bool:
        if not isinstance(value, bool):
            fail("true or false (unquoted)")
    elif base_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("a whole number" + or_auto)
    elif base_type is float:
        # YAML 1.1 (PyYAML) reads 1e-3 as text: it wants 1.0e-3. People write 1e-3.
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        value = float(value)
        # .nan and .inf are YAML floats, and NaN passes every comparison below.
        if not math.isfinite(value):
            fail("a finite number")
    elif base_type is str:
        # A free text given as text stays that text: a password 123456 or a path `yes` is not
        # the number or the boolean YAML would read, nor the address `::` a mapping. (A list or
        # a mapping for any other text is refused below: `[a, b]` for a path is a mistake.)
        if (setting.text is not None and not field.metadata["choices"]
                and (isinstance(value, (bool, int, float)) or field.metadata["ip_address"])):
            value = setting.text
        if not isinstance(value, str) and field.metadata["choices"]:
            fail("one of " + ", ".join(field.metadata["choices"]))  # e.g. `off`, read as false
        if not isinstance(value, str) or not value.strip():
            fail("a non-empty text")
        if "\0" in value:  # no path or URL can hold one; a path would be cut short at it
            fail("a text without NUL characters")
        schemes = field.metadata["url"]
        if schemes and urllib.parse.urlsplit(value).scheme not in schemes:
            fail("a URL starting " + " or ".join(f"{scheme}://" for scheme in schemes))
        if field.metadata["ip_address"] and not _is_ip_address(value):
            fail("an IP address (127.0.0.1: this machine only; 0.0.0.0: every interface)")
        if field.metadata["folder_name"] and (problem := runs.name_problem(value)):
            fail(f"a folder name ({problem})")
        if field.metadata["run_reference"] and (problem := runs.reference_problem(value)):
            fail(f"RUN or RUN@STEP ({problem})")

    rules = field.metadata
    if rules["choices"] and value not in rules["choices"]:
        fail("one of " + ", ".join(rules["choices"]))
    advice = f": {rules['too_small']}" if rules["too_small"] else ""
    if rules["minimum"] is not None and value < rules["minimum"]:
        fail(f"{_describe(base_type)} >= {rules['minimum']}{or_auto}", advice)
    if rules["exclusive_minimum"] is not None and value <= rules["exclusive_minimum"]:
        fail(f"{_describe(base_type)} > {rules['exclusive_minimum']}{or_auto}", advice)
    if rules["maximum"] is not None and value > rules["maximum"]:
        fail(f"{_describe(base_type)} <= {rules['maximum']}{or_auto}")
    return value


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _describe(base_type: type) -> str:
    return {int: "a whole number", float: "a number", str: "a text", bool: "true or false"}[base_type]


def with_sections_of(config: Config, record: dict, sections: tuple[str, ...]) -> Config:
    """`config` with the keys of `sections` taken from `record` (a run's run.yaml, as its trainer
    wrote it) where it has them; keys this version does not know are left out."""
    changes = {}
    for section in sections:
        current = getattr(config, section)
        known = {field.name for field in dataclasses.fields(current)}
        values = {key: value for key, value in (record.get(section) or {}).items()
                  if key in known}
        changes[section] = dataclasses.replace(current, **values)
    return dataclasses.replace(config, **changes)


def config_of_run(config: Config, run: str) -> Config:
    """`config` with the train and recipe sections that the run's trainer last started with (its
    run.yaml), so that the run's model is built as it was trained; `config` itself for a run
    without one (trained before runs kept a record)."""
    record = runs.read_record(runs.folder(config.paths.train_dir, run))
    return with_sections_of(config, record or {}, ("train", *RECIPE_SECTIONS))


def check_paths(config: Config) -> None:
    """Fails early, naming the key, when a path cannot serve: a file where a folder belongs, or a
    folder the appliance may not write. Creates nothing."""
    _check_folder("paths.train_dir", Path(config.paths.train_dir), must_write=True)
    data_dir = Path(config.paths.data_dir)
    # A read-only data_dir is fine when the data is already there (a mounted copy).
    already_there = (data_dir / "cifar-10-batches-bin").is_dir() and config.data.source == "cifar10"
    _check_folder("paths.data_dir", data_dir, must_write=not already_there)


def _check_folder(key: str, folder: Path, must_write: bool) -> None:
    existing = folder
    while not existing.exists():  # the folder will be created inside its nearest existing parent
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: {existing} is a file, expected a directory")
    if must_write and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: {existing} is not writable by uid {os.getuid()}")
