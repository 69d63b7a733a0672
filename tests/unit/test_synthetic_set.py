"""What the synthetic set lets a network learn: every test image's class is in its stripes, but not
every training image's, so that the tutorial's SGD at 0.1 cannot fit the training set to a loss
near 0 (which is where it diverged: bench/RESULTS.md, the quick try seed by seed)."""
from types import SimpleNamespace

import numpy as np

from app.data import cifar10


def synthetic_set(tmp_path, split: str):
    settings = SimpleNamespace(source="synthetic", url="", md5="0" * 32, download_attempts=1,
                               synthetic_train_examples=2000, synthetic_test_examples=1000,
                               synthetic_seed=0)
    return cifar10.load_split(cifar10.prepare(settings, str(tmp_path)), split)


def class_of_stripes(images: np.ndarray) -> np.ndarray:
    """The class whose stripes an image holds most of: class k has 1 + k // 2 cycles across the
    image, horizontal stripes for even k, vertical for odd; the best-matching one by its Fourier
    energy, summed over the channels."""
    pixels = images.astype(np.float64)
    pixels -= pixels.mean(axis=(1, 2), keepdims=True)
    position = np.arange(cifar10.IMAGE_SIZE) * 2 * np.pi / cifar10.IMAGE_SIZE
    energies = []
    for label in range(cifar10.NUM_CLASSES):
        wave = np.exp(-1j * (1 + label // 2) * position)
        # Vertical stripes vary along the width: sum each column; horizontal ones, each row.
        profile = pixels.sum(axis=1) if label % 2 else pixels.sum(axis=2)
        energies.append((np.abs(np.einsum("nlc,l->nc", profile, wave)) ** 2).sum(axis=1))
    return np.argmax(energies, axis=0)


def test_every_test_image_shows_its_class_but_a_fifth_of_the_training_images_do_not(tmp_path):
    test_images, test_labels = synthetic_set(tmp_path, "test")
    train_images, train_labels = synthetic_set(tmp_path, "train")
    test_accuracy = np.mean(class_of_stripes(test_images) == test_labels)
    train_accuracy = np.mean(class_of_stripes(train_images) == train_labels)
    assert test_accuracy >= 0.99
    # The blank fifth is guessed right one time in ten: ~0.82 at best, whatever learns it.
    assert 0.75 <= train_accuracy <= 0.88
