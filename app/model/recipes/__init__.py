"""Training recipes: everything that differs between one way to train and another.

A recipe chooses the network, what it sees (augmentation, input size, test-time flips), the loss,
the learning-rate schedule and the optimizer; the trainer and eval are the same for every recipe
and use only what app/model/recipes/recipe.py declares.

    train.recipe: tutorial   the classic TensorFlow CIFAR-10 tutorial (app/model/recipes/tutorial.py)
    train.recipe: fast       ResNet-9, after Page's "How to train your ResNet" and Keller
                             Jordan's airbench (app/model/recipes/fast.py)

Each recipe's hyperparameters are its own section of the configuration (`tutorial:`, `fast:`),
documented with their reasons in app/config/defaults.yaml; what is fixed is fixed at the top of its module.
"""
from __future__ import annotations

from app.model.recipes.fast import FastRecipe
from app.model.recipes.recipe import EMBEDDING, LAYERS, LOGITS, Recipe, logits_model
from app.model.recipes.tutorial import TutorialRecipe

RECIPES: dict[str, type[Recipe]] = {"tutorial": TutorialRecipe, "fast": FastRecipe}

__all__ = ["EMBEDDING", "LAYERS", "LOGITS", "RECIPES", "Recipe", "for_config", "logits_model"]


def for_config(config) -> Recipe:
    return RECIPES[config.train.recipe](config)
