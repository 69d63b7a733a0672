"""The network: the recipes that build and train it, its weight averages, and the model as eval
measures it and the export serves it."""
