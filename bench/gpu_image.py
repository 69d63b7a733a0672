"""The GPU flavor's install, proven without a GPU: build it as the README's GPU command does, on
the real Docker engine, then look inside.

    .venv/bin/python -m bench.gpu_image        (as root; ~2-6 min and ~7 GB of disk while it runs)

In a Docker engine of its own (tests/harness/docker_engine.py: dockerd with everything under one
temporary folder, taken away again at the end, as the container tests do), from a clean copy of
this checkout, on the local Debian base:

  1. `docker compose build` (compose.yaml: TF_PACKAGE=tensorflow[and-cuda]), timed; the image's
     size;
  2. in the image: TensorFlow imports, is a CUDA build, and says which CUDA and cuDNN it was
     built with; the CUDA libraries pip brought are there; XLA's `ptxas` (from
     nvidia-cuda-nvcc-cu12, where TensorFlow looks for it: site-packages/nvidia/cuda_nvcc/bin)
     runs and says its CUDA version;
  3. the appliance's trainer given GPUs it cannot use (NVIDIA_VISIBLE_DEVICES=all, no GPU): exit
     2, with the GPU flavor's message (the likely causes), and TensorFlow's own line about cuInit.

Not in the test suite: the build downloads ~3 GB. The last line printed is one JSON object with
every figure; bench/RESULTS.md has them.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench import machine
from tests.harness.docker_engine import DockerEngine, missing_tools
from tests.harness.image import (BuildFailed, clean_checkout, compose_shell,
                                 import_debian_base_into_docker)

GPU_IMAGE = "cifar10-appliance:latest"   # what compose.yaml tags
BUILD_TIMEOUT_SECS = 3600
INSIDE = r"""
import json, os, subprocess, sys
import tensorflow as tf
build = tf.sysconfig.get_build_info()
site = os.path.dirname(os.path.dirname(tf.__file__))
nvidia = os.path.join(site, "nvidia")
ptxas = os.path.join(nvidia, "cuda_nvcc", "bin", "ptxas")
version = subprocess.run([ptxas, "--version"], capture_output=True, text=True)
print(json.dumps({
    "tensorflow": tf.__version__, "is_cuda_build": build.get("is_cuda_build"),
    "cuda_version": build.get("cuda_version"), "cudnn_version": build.get("cudnn_version"),
    "cuda_compute_capabilities": build.get("cuda_compute_capabilities"),
    "nvidia_packages": sorted(os.listdir(nvidia)) if os.path.isdir(nvidia) else [],
    "ptxas": ptxas if os.access(ptxas, os.X_OK) else None,
    "ptxas_version": version.stdout.strip().splitlines()[-1] if version.returncode == 0 else None,
    "gpus_seen": len(tf.config.list_physical_devices("GPU")),
}))
"""


def main() -> int:
    if missing := missing_tools():
        print(f"missing {', '.join(missing)}: run .ci/install-system-deps.sh as root")
        return 2
    print(machine.headline(machine.describe()), flush=True)
    figures: dict = {"benchmark": "gpu_image", "machine": machine.describe()}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-image-") as work:
        work = Path(work)
        docker = DockerEngine(work / "docker")
        try:
            docker.start()
            import_debian_base_into_docker(docker, work)
            checkout = clean_checkout(work / "cifar10-appliance")
            figures.update(build(docker, checkout))
            figures["inside"] = json.loads(docker(
                "run", "--rm", "--entrypoint", "python", GPU_IMAGE, "-c", INSIDE,
                timeout=300).stdout.strip().splitlines()[-1])
            figures["given_gpus_without_one"] = trainer_given_gpus(docker)
        except BuildFailed as failed:
            print(failed)
            return 1
        finally:
            removed = docker.stop()
            print(f"Docker engine stopped; removed {len(removed)} things it had added to the host")
    inside, given = figures["inside"], figures["given_gpus_without_one"]
    print(f"\nbuilt in {figures['build_secs']:.0f} s, {figures['image_gb']:.2f} GB; TensorFlow "
          f"{inside['tensorflow']}, CUDA build {inside['is_cuda_build']}, CUDA "
          f"{inside['cuda_version']}, cuDNN {inside['cudnn_version']}; ptxas "
          f"{inside['ptxas_version']} at {inside['ptxas']}")
    print(f"trainer with NVIDIA_VISIBLE_DEVICES=all and no GPU: exit {given['exit_code']}\n"
          f"  {given['error']}\n  TensorFlow: {given['cuinit']}")
    passed = (inside["is_cuda_build"] and inside["ptxas_version"] and given["exit_code"] == 2
              and "likely causes" in (given["error"] or ""))
    figures["passed"] = bool(passed)
    print(json.dumps(figures))
    return 0 if passed else 1


def build(docker: DockerEngine, checkout: Path) -> dict:
    print("docker compose build (the GPU flavor) ...", flush=True)
    started = time.monotonic()
    status, log = docker.stream("compose", "--progress", "plain", "build", cwd=checkout,
                                env=compose_shell(), timeout=BUILD_TIMEOUT_SECS)
    seconds = time.monotonic() - started
    if status != 0:
        raise BuildFailed(f"docker compose build exited {status}:\n{log[-6000:]}")
    size = docker.inspect("image", GPU_IMAGE)["Size"]
    return {"build_secs": seconds, "image_gb": size / 1e9}


def trainer_given_gpus(docker: DockerEngine) -> dict:
    result = docker("run", "--rm", "-e", "NVIDIA_VISIBLE_DEVICES=all",
                    "-e", "CIFAR10_DATA_SOURCE=synthetic", GPU_IMAGE, "train",
                    timeout=600, check=False)
    output = result.stdout + result.stderr
    lines = output.splitlines()
    return {"exit_code": result.returncode,
            "error": next((line for line in lines if line.startswith("error: ")), None),
            "cuinit": next((line.strip() for line in lines if "cuInit" in line), None)}


if __name__ == "__main__":
    sys.exit(main())
