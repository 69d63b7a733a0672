"""The confusion matrix: counts, per-class precision and recall, and its picture."""
import numpy as np
import pytest

from app.eval import confusion
from app.data.cifar10 import CLASS_NAMES


def test_rows_are_true_classes_and_columns_predicted_ones():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 1, 1, 2, 2])
    matrix = confusion.count(labels, predictions, num_classes=3)
    assert matrix.tolist() == [[2, 1, 0],
                               [0, 1, 1],
                               [0, 0, 1]]


def test_precision_is_per_predicted_class_and_recall_per_true_class():
    matrix = np.array([[2, 1, 0],
                       [0, 1, 1],
                       [0, 0, 0]])  # class 2 is never seen, and predicted once wrongly
    assert confusion.precision_by_class(matrix) == pytest.approx([1.0, 0.5, 0.0])
    assert confusion.recall_by_class(matrix) == pytest.approx([2 / 3, 0.5, 0.0])


def test_a_class_never_predicted_has_precision_0_not_nan():
    matrix = np.array([[1, 0], [1, 0]])
    assert confusion.precision_by_class(matrix).tolist() == [0.5, 0.0]


def test_the_picture_shades_each_cell_by_its_share_of_the_row():
    matrix = np.diag([100] * 10)
    matrix[3, 5] = 100  # half of the cats are taken for dogs
    picture = confusion.draw(matrix, CLASS_NAMES)
    height, width, channels = picture.shape
    assert channels == 3 and picture.dtype == np.uint8
    assert 440 < width < 800 and 440 < height < 800  # 10 cells of 44 px and the names

    def cell_colour(row, column):  # the top-left pixel inside a cell, clear of its count
        bottom, right = height - confusion.MARGIN, width - confusion.MARGIN
        top, left = bottom - 10 * confusion.CELL, right - 10 * confusion.CELL
        return picture[top + row * confusion.CELL + 3, left + column * confusion.CELL + 3]

    assert cell_colour(0, 0).tolist() == confusion.DARK.tolist()   # all of its row
    assert cell_colour(0, 1).tolist() == confusion.LIGHT.tolist()  # none of it
    half = cell_colour(3, 5).astype(int)
    assert np.abs(half - (confusion.LIGHT + confusion.DARK) / 2).max() <= 1
    assert cell_colour(3, 3).tolist() == half.tolist()
