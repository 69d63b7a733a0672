"""The two recipes (their networks, losses and schedules) as the trainer and eval see them
through the contract, and the weight averages."""
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from app import config as configuration
from app.model import recipes
from app.model.averages import MovingAverages
from app.model.flops import training_flops_per_image
from app.model.recipes import fast, tutorial


@pytest.fixture(scope="module")
def cnn():
    return tutorial.tutorial_cnn()


def test_tutorial_cnn_has_the_tutorials_layers_and_size(cnn):
    names = [layer.name for layer in cnn.layers]
    for name in ("conv1", "pool1", "norm1", "conv2", "norm2", "pool2", "local3", "local4",
                 "softmax_linear"):
        assert name in names
    assert names.index("pool1") < names.index("norm1")   # conv1 -> pool1 -> norm1
    assert names.index("norm2") < names.index("pool2")   # conv2 -> norm2 -> pool2
    assert cnn.count_params() == 1_068_298


def test_tutorial_cnn_outputs_its_layers_by_name_and_logits_and_embedding_by_role(cnn):
    outputs = cnn(tf.zeros([4, 24, 24, 3]))
    assert {name: tuple(t.shape) for name, t in outputs[recipes.LAYERS].items()} == {
        "conv1": (4, 24, 24, 64), "conv2": (4, 12, 12, 64), "local3": (4, 384),
        "local4": (4, 192), "softmax_linear": (4, 10)}
    assert outputs[recipes.LOGITS] is outputs[recipes.LAYERS]["softmax_linear"]
    assert outputs[recipes.EMBEDDING] is outputs[recipes.LAYERS]["local4"]
    assert tuple(recipes.logits_model(cnn)(tf.zeros([2, 24, 24, 3])).shape) == (2, 10)


def test_weight_decay_is_the_tutorials_half_sum_of_squares_on_local3_and_local4(cnn):
    losses = tutorial.weight_decay_losses(cnn, 0.004)
    assert sorted(losses) == ["local3/weight_loss", "local4/weight_loss"]
    kernel = cnn.get_layer("local4").kernel.numpy()
    assert float(losses["local4/weight_loss"]) == pytest.approx(0.004 * (kernel ** 2).sum() / 2,
                                                                rel=1e-5)


def test_training_flops_match_the_tutorials_multiply_adds(cnn):
    # The tutorial quotes 19.5M multiply-adds for one forward pass; convolutions and dense
    # layers alone come to 18.5M of them. Training is forward + backward = 3 passes, 2 FLOPs each.
    forward_multiply_adds = training_flops_per_image(cnn) / 6
    assert forward_multiply_adds == 18_470_784


def test_staircase_schedule_drops_tenfold_every_350_epochs():
    import keras
    steps_per_epoch = 50_000 / 128
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=int(steps_per_epoch * 350), decay_rate=0.1, staircase=True)
    decay_steps = int(steps_per_epoch * 350)
    assert decay_steps == 136_718
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(decay_steps - 1)) == pytest.approx(0.1)
    assert float(schedule(decay_steps)) == pytest.approx(0.01)
    assert float(schedule(2 * decay_steps)) == pytest.approx(0.001)


def test_moving_averages_warm_up_then_follow_the_decay():
    weight = tf.Variable([0.0])
    averages = MovingAverages([weight], decay=0.9999)
    weight.assign([10.0])
    averages.update(step=0)  # decay = min(0.9999, 1/10) = 0.1
    assert averages.averages[0].numpy() == pytest.approx([9.0])
    averages.update(step=10 ** 7)  # decay = 0.9999
    assert averages.averages[0].numpy() == pytest.approx([9.0001], rel=1e-6)
    averages.copy_to_variables()
    np.testing.assert_allclose(weight.numpy(), averages.averages[0].numpy())


def test_resnet9_has_page_s_size_and_sees_whole_images():
    resnet = fast.resnet9()
    assert resnet.count_params() == 6_577_600
    outputs = resnet(tf.zeros([2, 32, 32, 3]))
    assert tuple(outputs[recipes.LOGITS].shape) == (2, 10)
    assert tuple(outputs[recipes.EMBEDDING].shape) == (2, 512)  # the penultimate features
    assert training_flops_per_image(resnet) / 6 == pytest.approx(379e6, rel=0.01)


def test_resnet9_names_its_own_layers_in_the_summaries():
    layers = fast.resnet9(width=4)(tf.zeros([1, 32, 32, 3]))[recipes.LAYERS]
    assert list(layers) == ["prep", "layer1", "layer2", "layer3", "features", "logits"]
    assert tuple(layers["layer3"].shape) == (1, 4, 4, 32)


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_each_recipe_keeps_the_contract(name):
    config = configuration.load(None, [f"train.recipe={name}", "fast.width=4"], {})
    recipe = recipes.for_config(config)
    assert isinstance(recipe, recipes.Recipe)
    model = recipe.build_model()
    size = recipe.input_size
    outputs = model(tf.zeros([2, size, size, 3]))
    assert set(outputs) == {recipes.LOGITS, recipes.EMBEDDING, recipes.LAYERS}
    assert outputs[recipes.EMBEDDING] is outputs[recipes.LAYERS][recipe.embedding_layer]
    images = tf.zeros([2, 32, 32, 3], tf.uint8)
    assert tuple(recipe.augment(images, tf.constant([1, 2])).shape) == (2, size, size, 3)
    loss = recipe.per_example_loss(tf.constant([1, 2]), outputs[recipes.LOGITS])
    assert tuple(loss.shape) == (2,)
    optimizer = recipe.optimizer(recipe.learning_rate(steps_per_epoch=100, scale=1.0))
    assert float(optimizer.learning_rate) >= 0
    assert all(tuple(term.shape) == () for term in recipe.regularization_losses(model).values())


def test_one_cycle_rises_to_the_peak_then_falls_to_zero_at_the_end():
    schedule = fast.OneCycle(peak=0.4, total_steps=1000, warmup_fraction=0.25)
    rates = {step: float(schedule(step)) for step in (0, 125, 250, 625, 1000, 1200)}
    assert rates == pytest.approx({0: 0.0, 125: 0.2, 250: 0.4, 625: 0.2, 1000: 0.0, 1200: 0.0})


def test_label_smoothing_spreads_a_fifth_of_the_target_over_all_classes():
    config = SimpleNamespace(train=SimpleNamespace(max_steps=100),
                             fast=SimpleNamespace(label_smoothing=0.2))
    logits = tf.math.log([[0.82, *[0.02] * 9]])  # exactly the smoothed target
    loss = fast.FastRecipe(config).per_example_loss(tf.constant([0]), logits)
    entropy = -(0.82 * np.log(0.82) + 9 * 0.02 * np.log(0.02))
    assert float(loss[0]) == pytest.approx(entropy, rel=1e-5)


@pytest.mark.parametrize("clip, expected_norm", [("10.0", 1.0), ("null", 100.0)])
def test_a_tutorial_step_is_clipped_to_the_gradients_global_norm_unless_null(clip, expected_norm):
    """At the rate of 0.1, a gradient of global norm 1,000 moves the weights by 1.0 clipped at
    10, and by all of its 100 with the tutorial's unclipped SGD; a small one is never touched."""
    config = configuration.load(None, [f"tutorial.gradient_clip_norm={clip}"], {})
    recipe = recipes.for_config(config)
    weights = tf.Variable(tf.zeros([2, 2]))
    optimizer = recipe.optimizer(0.1)
    optimizer.apply_gradients([(tf.fill([2, 2], 500.0), weights)])  # global norm 1,000
    assert float(tf.norm(weights)) == pytest.approx(expected_norm, rel=1e-5)
    weights.assign(tf.zeros([2, 2]))
    optimizer.apply_gradients([(tf.fill([2, 2], 0.5), weights)])  # norm 1: below any clip
    assert float(tf.norm(weights)) == pytest.approx(0.1, rel=1e-5)
