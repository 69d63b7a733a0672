"""Evaluation, a program apart from training that only reads checkpoints: the watcher over every
run, one run's evaluator, and the confusion matrix."""
