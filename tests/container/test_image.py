"""The image as the real Docker engine builds it (BuildKit, through Compose): it builds on the
local base without pulling anything, says how to run it, and an edit to the code rebuilds only
the code's layers, with the README's `docker build` command (buildx)."""
from __future__ import annotations

import shutil
import time

import pytest

from tests.harness.environment import REPO_ROOT
from tests.harness.figures import record
from tests.harness.image import DEBIAN_SLIM, build_steps, host_ca_bundle

pytestmark = pytest.mark.container

# What the build context holds, per .dockerignore.
CONTEXT = ["Dockerfile", ".dockerignore", "app", "docker", "entrypoint.sh", "requirements.txt",
           "constraints.txt"]


def test_image_builds(docker, image_build, image):
    size = docker.inspect("image", image)["Size"]
    record("image build (CPU flavor, Compose, from a local bookworm base)",
           f"{image_build.seconds:.0f} s")
    record("image size (CPU flavor)", f"{size / 1e9:.2f} GB")
    assert size > 0


def test_image_is_built_on_the_local_base_without_pulling(docker, image_build, image):
    base_layers = docker.inspect("image", DEBIAN_SLIM)["RootFS"]["Layers"]
    assert docker.inspect("image", image)["RootFS"]["Layers"][:len(base_layers)] == base_layers
    assert f"load metadata for docker.io/library/{DEBIAN_SLIM}" in image_build.log
    assert "pulling" not in docker.log_tail(10**7).lower()


def test_image_says_how_to_run_it(docker, image):
    config = docker.inspect("image", image)["Config"]
    assert config["Entrypoint"] == ["/app/entrypoint.sh"]
    assert "6006/tcp" in config["ExposedPorts"]
    assert set(config["Volumes"]) == {"/cifar10_train", "/cifar10_data"}
    assert config["Healthcheck"]["Test"] == ["CMD", "/app/entrypoint.sh", "health"]
    assert "CIFAR10_CONFIG=/etc/cifar10/config.yaml" in config["Env"]
    # Every interface of the container, for the published port (natively: 127.0.0.1).
    assert "CIFAR10_TENSORBOARD_ADDRESS=0.0.0.0" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.title"] == "cifar10-appliance"


def test_image_is_the_cpu_flavor(docker, image):
    listing = ("import importlib.metadata as m; "
               "print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))")
    packages = docker("run", "--rm", "--entrypoint", "python", image, "-c", listing).stdout.split()
    assert "tensorflow-cpu" in {name.replace("_", "-") for name in packages}, packages
    assert not [name for name in packages if name.startswith("nvidia")], packages


def test_code_edit_keeps_the_tensorflow_layer(docker, image_build, tmp_path):
    context = tmp_path / "context"
    for name in CONTEXT:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    with (context / "app" / "__init__.py").open("a") as module:
        module.write("\n# an edit to the code\n")

    edited = "cifar10-appliance:edited"
    secret = ["--secret", f"id=ca_bundle,src={host_ca_bundle()}"] if host_ca_bundle() else []
    started = time.monotonic()
    status, log = docker.stream("build", "--progress", "plain", *secret,
                                "--build-arg", "TF_PACKAGE=tensorflow-cpu", "-t", edited, ".",
                                cwd=context, timeout=900)
    docker("rmi", edited, check=False)
    assert status == 0, log[-4000:]
    record("rebuild after a code edit (docker build)", f"{time.monotonic() - started:.0f} s")

    cached = dict(build_steps(log))
    pip_step = next(step for step in cached if "pip install" in step)
    app_step = next(step for step in cached if step.startswith("COPY app/"))
    assert cached[pip_step], log[-4000:]
    assert not cached[app_step], log[-4000:]
