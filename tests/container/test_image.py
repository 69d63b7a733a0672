"""The image itself: it builds, says how to run it, keeps no secret, and caches well."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.harness.environment import REPO_ROOT
from tests.harness.figures import record
from tests.harness.image import IMAGE, host_ca_bundle

pytestmark = pytest.mark.container

# What the build context holds, per .dockerignore.
CONTEXT = ["Dockerfile", ".dockerignore", "app", "docker", "entrypoint.sh", "requirements.txt",
           "constraints.txt"]


def test_image_builds(podman, image_build):
    size = podman.inspect("image", IMAGE)["Size"]
    record("image build (CPU flavor, from a local bookworm base)", f"{image_build.seconds:.0f} s")
    record("image size (CPU flavor)", f"{size / 1e9:.2f} GB")
    assert size > 0


def test_image_says_how_to_run_it(podman, image):
    details = podman.inspect("image", image)
    config = details["Config"]
    assert config["Entrypoint"] == ["/app/entrypoint.sh"]
    assert "6006/tcp" in config["ExposedPorts"]
    assert set(config["Volumes"]) == {"/cifar10_train", "/cifar10_data"}
    # podman shows the health check beside Config (docker inside it).
    assert details["Healthcheck"]["Test"] == ["CMD", "/app/entrypoint.sh", "health"]
    assert "CIFAR10_CONFIG=/etc/cifar10/config.yaml" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.title"] == "cifar10-appliance"


def test_ca_bundle_secret_leaves_no_trace(podman, image):
    ca_bundle = host_ca_bundle()
    assert ca_bundle, "no host CA bundle was found to pass as the build secret"
    first_certificate_line = next(line for line in ca_bundle.read_text().splitlines()
                                  if line and not line.startswith(("#", "-----")))
    details = podman.inspect("image", image)
    driver = details["GraphDriver"]["Data"]
    layers = [driver["UpperDir"], *driver.get("LowerDir", "").split(":")]
    in_layers = [path for layer in filter(None, layers)
                 for path in Path(layer).glob("run/secrets/*")]
    assert not in_layers, f"the build secret was left in a layer: {in_layers}"
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    metadata = f"{details['Config']}\n{history}"
    assert "PIP_CERT=" not in str(details["Config"]["Env"])
    assert first_certificate_line not in metadata


def test_code_edit_keeps_the_tensorflow_layer(podman, image_build, tmp_path):
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

    edited = f"{IMAGE}-edited"
    started = time.monotonic()
    status, log = podman.stream("build", *image_build.options, "--tag", edited, context,
                                timeout=900)
    podman("rmi", "--force", edited, check=False)
    assert status == 0, log[-4000:]
    record("rebuild after a code edit", f"{time.monotonic() - started:.0f} s")

    steps = {step.splitlines()[0]: step
             for step in re.split(r"^STEP \d+/\d+: ", log, flags=re.M) if step.strip()}
    pip_step = next(step for first_line, step in steps.items() if "pip install" in first_line)
    app_step = next(step for first_line, step in steps.items() if first_line.startswith("COPY app/"))
    assert "Using cache" in pip_step, pip_step
    assert "Using cache" not in app_step, app_step
