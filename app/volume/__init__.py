"""The volume (train_dir): one folder per run, and every file train and eval leave in it."""
