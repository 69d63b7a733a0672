"""The volume's layout, told once: every name that train, eval, TensorBoard and the tools give to
what they leave in train_dir (the `cifar10_train` volume, TensorBoard's logdir).

    <train_dir>/                        the volume (paths.train_dir)
      .layout.lock                      LAYOUT_LOCK_FILE: held while a volume of the old layout
                                        is moved into a run (app/compat.py)
      precision_at_1.png                REPORT_PLOT_FILE: `report`'s plot of every run
      <run>/                            one run (paths.run): TensorBoard's run `<run>`
        run.yaml                        RUN_RECORD_FILE: the config its trainer last started with
        starts.jsonl                    STARTS_FILE: one JSON line per start of its trainer: the
                                        step, the host, what changed, where it started from
        progress.json                   PROGRESS_FILE: its trainer's step, max_steps, images/s
        .trainer.lock                   TRAINER_LOCK_FILE: held by the run's one trainer
        checkpoint                      CHECKPOINT_STATE_FILE: the kept checkpoints, newest last
        model.ckpt-<step>.index         CHECKPOINT_NAME: a checkpoint at its global step, its
        model.ckpt-<step>.data-*        data beside its index
        events.out.tfevents.*           EVENT_FILES: the training summaries, the hparams
        projector_config.pbtxt          PROJECTOR_CONFIG_FILE: the Projector's view of the run
        diverged                        DIVERGED_MARK: the sweep's mark of a run that diverged
        eval/                           EVAL_FOLDER: TensorBoard's run `<run>/eval`
          events.out.tfevents.*         eval's summaries, at each checkpoint's step
          results.jsonl                 RESULTS_FILE: one JSON line per evaluation
          precision_at_1.png            `report --run`'s plot of the run
          projector_config.pbtxt        the Projector's view of the eval run
          checkpoint                    the state file of the Projector's marker
          projector/                    PROJECTOR_FOLDER: the embeddings of the kept steps
            <layer>-step-<step>.tsv     PROJECTOR_EMBEDDING_FILE: one image a row
            metadata-step-<step>.tsv    PROJECTOR_METADATA_FILE: class, predicted, correct
            sprite-<images>.png         PROJECTOR_SPRITE_FILE: the images' thumbnails
            written_at_step-<step>.*    PROJECTOR_MARKER: a tiny checkpoint marking the step
        export/                         EXPORT_FOLDER: a model base path for TensorFlow Serving
          <step>/                       a version: a SavedModel (saved_model.pb, variables/)
            assets/class_names.txt      EXPORT_CLASS_NAMES_FILE, in EXPORT_ASSETS_FOLDER
            assets/evaluation.json      EXPORT_EVALUATION_FILE: the evaluation that made it best
          .staging-<pid>/               EXPORT_STAGING_PREFIX: an export being written
          best/                         an export from before versions (app/compat.py)
      <another run>/                    ...

    .<name>.<pid>.tmp                   TEMPORARY_PREFIX: a file being written whole, beside any
                                        of the above (app/volume/atomic.py)

Who writes what: the trainer (app/train/trainer.py) the run's record, starts, progress, lock,
checkpoints and events; the sweep (app/train/sweep.py) its mark; eval (app/eval/) everything in
eval/ and export/, and the Projector's configs (app/tensorboard/projector.py); `report`
(app/tools/report.py) its plots. How each is read and written is the business of the module beside
it: app/volume/runs.py (runs, their record and lock), checkpoints.py, results.py, exports.py.

`checkpoint`, `model.ckpt-*`, `events.out.tfevents.*`, `saved_model.pb` and `variables/` are
TensorFlow's names; the others are ours. The names users see (those above) must not change: a
volume outlives the image that wrote it. Where one did change, app/compat.py still reads the
old one: it moves a run kept at the volume's root into its folder, and finds an export from
before versions.
"""

# -- the volume's root ------------------------------------------------------------------------

LAYOUT_LOCK_FILE = ".layout.lock"
REPORT_PLOT_FILE = "precision_at_1.png"

# -- a run's folder ---------------------------------------------------------------------------

RUN_RECORD_FILE = "run.yaml"
STARTS_FILE = "starts.jsonl"
PROGRESS_FILE = "progress.json"
TRAINER_LOCK_FILE = ".trainer.lock"
CHECKPOINT_STATE_FILE = "checkpoint"
CHECKPOINT_NAME = "model.ckpt"  # TensorFlow's checkpoint_name: its files are model.ckpt-<step>.*
EVENT_FILES = "events.out.tfevents.*"  # a pattern: TensorFlow names each file by time and host
PROJECTOR_CONFIG_FILE = "projector_config.pbtxt"
DIVERGED_MARK = "diverged"
EVAL_FOLDER = "eval"
EXPORT_FOLDER = "export"

# -- eval/ ------------------------------------------------------------------------------------

RESULTS_FILE = "results.jsonl"
PROJECTOR_FOLDER = "projector"
# Patterns for str.format: one file per kept step, and one sprite per sample size.
PROJECTOR_EMBEDDING_FILE = "{layer}-step-{step}.tsv"
PROJECTOR_METADATA_FILE = "metadata-step-{step}.tsv"
PROJECTOR_SPRITE_FILE = "sprite-{images}.png"
PROJECTOR_MARKER = "written_at_step"

# -- export/ ----------------------------------------------------------------------------------

SAVED_MODEL_FILE = "saved_model.pb"
EXPORT_ASSETS_FOLDER = "assets"
EXPORT_CLASS_NAMES_FILE = "class_names.txt"
EXPORT_EVALUATION_FILE = "evaluation.json"
# A name TensorFlow Serving passes over (not a number), so that it never loads half an export.
EXPORT_STAGING_PREFIX = ".staging-"

# -- anywhere ---------------------------------------------------------------------------------

# What a file being written whole starts with: whatever lies about with it was left by a kill.
TEMPORARY_PREFIX = "."
