"""Evaluation, a program apart from training that only reads checkpoints: the watcher over every
run, its pace (how often it looks, which waiting checkpoint it takes), one run's evaluator, and
the confusion matrix."""
