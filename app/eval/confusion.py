"""The confusion matrix of one evaluation: counted, broken down per class, and drawn as a picture.

Rows are the true classes, columns the predicted ones, so row `cat`, column `dog` counts the cats
taken for dogs. Per class:
  precision  of the images predicted to be the class, the fraction that are;
  recall     of the images of the class, the fraction found (the tutorial's precision @ 1,
             counted within one class).

Drawn with Pillow (TensorBoard already depends on it) rather than matplotlib, which would add
tens of megabytes to the image for one picture.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 44                 # pixels per cell: room for a four-digit count
FONT_SIZE = 13
MARGIN = 12
LIGHT = np.array([247, 251, 255])  # the empty end of the colour scale
DARK = np.array([8, 48, 107])      # the full end: every image of the row in this cell


def count(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """The [true, predicted] matrix of counts."""
    pairs = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    return np.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def precision_by_class(matrix: np.ndarray) -> np.ndarray:
    """A class never predicted has no precision to speak of; it reads 0 rather than NaN, which
    TensorBoard would draw as a gap."""
    predicted = matrix.sum(axis=0)
    return np.divide(np.diag(matrix), predicted, out=np.zeros(len(matrix)), where=predicted > 0)


def recall_by_class(matrix: np.ndarray) -> np.ndarray:
    actual = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), actual, out=np.zeros(len(matrix)), where=actual > 0)


def draw(matrix: np.ndarray, class_names) -> np.ndarray:
    """An RGB picture [height, width, 3] of the matrix: each cell shaded by its share of the row
    (so the diagonal reads as recall, whatever the class sizes) and labelled with its count."""
    font = ImageFont.load_default(size=FONT_SIZE)
    name_width = max(_text_size(font, name)[0] for name in class_names)
    line_height = _text_size(font, "Ag")[1]
    size = CELL * len(class_names)
    left = MARGIN + line_height + MARGIN + name_width + MARGIN   # axis title, names, gap
    top = MARGIN + line_height + MARGIN + name_width + MARGIN
    picture = Image.new("RGB", (left + size + MARGIN, top + size + MARGIN), "white")
    canvas = ImageDraw.Draw(picture)

    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for row, column in np.ndindex(matrix.shape):
        x, y = left + column * CELL, top + row * CELL
        colour = tuple(int(c) for c in LIGHT + (DARK - LIGHT) * shares[row, column])
        canvas.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=colour, outline=(220, 220, 220))
        text = str(int(matrix[row, column]))
        width, height = _text_size(font, text)
        ink = "white" if shares[row, column] > 0.5 else "black"
        canvas.text((x + (CELL - width) / 2, y + (CELL - height) / 2), text, fill=ink, font=font)

    for index, name in enumerate(class_names):
        width, height = _text_size(font, name)
        middle = index * CELL + CELL / 2
        canvas.text((left - MARGIN - width, top + middle - height / 2), name, fill="black",
                    font=font)
        _paste_upright(picture, name, font, (left + middle - height / 2, top - MARGIN),
                       anchor_bottom=True)
    title_width = _text_size(font, "predicted class")[0]
    canvas.text((left + (size - title_width) / 2, MARGIN), "predicted class", fill="black",
                font=font)
    _paste_upright(picture, "true class", font, (MARGIN, top + size / 2), anchor_bottom=False)
    return np.asarray(picture)


def _text_size(font, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return right - left, bottom - top


def _paste_upright(picture: Image.Image, text: str, font, position, anchor_bottom: bool) -> None:
    """Writes text turned 90 degrees, read bottom to top, as column names usually are. With
    anchor_bottom the text ends at position's y (column names sit on the grid); otherwise it is
    centred on it."""
    left, top, right, bottom = font.getbbox(text)
    label = Image.new("RGB", (right - left, bottom - top), "white")
    ImageDraw.Draw(label).text((-left, -top), text, fill="black", font=font)
    label = label.transpose(Image.Transpose.ROTATE_90)
    x, y = position
    y = y - label.height if anchor_bottom else y - label.height / 2
    picture.paste(label, (int(x), int(y)))
