"""Training: the trainer, how it spreads over devices and machines, and the sweep."""
