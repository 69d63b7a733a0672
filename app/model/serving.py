"""The network as eval counts it and as the export serves it: images in, classes out.

Eval measures through `logits` (standardized images, centrally cropped to the recipe's input size;
the fast recipe also averages in each mirror image), and the export serves the same module, so
what is served classifies exactly as it was measured. Its two signatures take what a camera, a file
or an HTTP request gives, not what the network sees:

    serving_default(image_bytes: string [batch])       PNG, JPEG, BMP or GIF files, any size
    classify_pixels(images: uint8 [batch, 32, 32, 3])  CIFAR-10's own format
        -> probabilities  float32 [batch, 10]  softmax, columns in CIFAR-10's class order
           class_ids      int32   [batch]      the most probable class
           class_names    string  [batch]      its name

A file of any size is brought to 32x32 RGB as app/data/image_files.py says (its centred square, scaled
down), in TensorFlow here, as `predict` does with Pillow. `class_names` is also an attribute of the
loaded object, all ten names in column order.
"""
from __future__ import annotations

import tensorflow as tf

from app.data import cifar10, pipeline, image_files


class Classifier(tf.Module):
    def __init__(self, logits_model, input_size: int, test_time_flips: bool):
        super().__init__(name="cifar10_classifier")
        self.logits_model = logits_model
        self.input_size = input_size            # the central crop the network was trained for
        self.test_time_flips = test_time_flips  # the fast recipe also looks at each mirror image
        # A variable, not a constant: only variables are saved as attributes of the module.
        self.class_names = tf.Variable(cifar10.CLASS_NAMES, trainable=False, name="class_names")

    def logits(self, standardized_images):
        logits = self.logits_model(standardized_images, training=False)
        if self.test_time_flips:
            mirrored = self.logits_model(tf.reverse(standardized_images, axis=[2]), training=False)
            logits = (logits + mirrored) / 2
        return logits

    @tf.function(input_signature=[tf.TensorSpec(
        [None, cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, cifar10.CHANNELS], tf.uint8, name="images")])
    def classify_pixels(self, images):
        logits = self.logits(pipeline.eval_images(images, self.input_size))
        # Mixed precision may compute in 16 bits; the answer is served in 32.
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {"probabilities": probabilities, "class_ids": class_ids,
                "class_names": tf.gather(self.class_names, class_ids)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def classify_files(self, image_bytes):
        pixels = tf.map_fn(image_files.decoded_like_cifar10, image_bytes,
                           fn_output_signature=tf.TensorSpec(
                               [cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, cifar10.CHANNELS], tf.uint8))
        return self.classify_pixels(pixels)
