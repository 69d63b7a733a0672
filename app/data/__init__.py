"""CIFAR-10: the data set on disk (cifar10), the pipelines that feed it (pipeline), and image
files of any kind made into CIFAR-10 images (image_files)."""
