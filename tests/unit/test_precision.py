"""What train.mixed_precision computes in, by recipe and hardware: the policy table, given a
compute capability (no GPU needed), and the line the trainer starts with."""
import pytest

from app.model import recipes
from app.runtime.devices import describe_precision, mixed_precision_policy

FAST, TUTORIAL = recipes.RECIPES["fast"], recipes.RECIPES["tutorial"]
V100, T4, A100, H100, CPU = (7, 0), (7, 5), (8, 0), (9, 0), None


def policy(setting, recipe, capability, cpu_has_bfloat16=False):
    return mixed_precision_policy(setting, bfloat16_is_safe=recipe.bfloat16_is_safe,
                                  float16_is_safe=recipe.float16_is_safe,
                                  compute_capability=capability,
                                  cpu_has_bfloat16=cpu_has_bfloat16)


@pytest.mark.parametrize("capability, expected", [
    (V100, "mixed_float16"), (T4, "mixed_float16"), (A100, "mixed_bfloat16"),
    (H100, "mixed_bfloat16"), ((6, 1), "float32"), (CPU, "float32")])
def test_auto_gives_the_fast_recipe_the_fastest_type_its_gpu_has(capability, expected):
    assert policy("auto", FAST, capability) == expected


def test_auto_gives_the_fast_recipe_bfloat16_on_a_cpu_with_bfloat16_instructions_only():
    assert policy("auto", FAST, CPU, cpu_has_bfloat16=True) == "mixed_bfloat16"
    # A GPU decides, whatever the CPU has.
    assert policy("auto", FAST, T4, cpu_has_bfloat16=True) == "mixed_float16"


@pytest.mark.parametrize("capability", [V100, T4, A100, H100, CPU])
def test_auto_keeps_the_tutorial_cnn_in_float32_everywhere(capability):
    assert policy("auto", TUTORIAL, capability, cpu_has_bfloat16=True) == "float32"


@pytest.mark.parametrize("setting, expected", [
    ("float32", "float32"), ("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16")])
@pytest.mark.parametrize("recipe", [FAST, TUTORIAL])
@pytest.mark.parametrize("capability", [T4, H100, CPU])
def test_an_explicit_setting_is_taken_as_it_is(setting, expected, recipe, capability):
    assert policy(setting, recipe, capability) == expected


def test_the_start_line_says_which_type_and_the_loss_scaling():
    assert describe_precision("mixed_float16") == (
        "computing in float16 with dynamic loss scaling (the weights in float32)")
    assert describe_precision("mixed_bfloat16") == "computing in bfloat16 (the weights in float32)"
    assert describe_precision("float32") == "computing in float32"
