# cifar10-appliance: the CIFAR-10 trainer, evaluator and TensorBoard in one image.
#
#   docker build -t cifar10-appliance .                                            # GPU (CUDA from pip)
#   docker build --build-arg TF_PACKAGE=tensorflow-cpu -t cifar10-appliance .      # CPU only, far smaller
#   docker run --gpus all -p 127.0.0.1:6006:6006 -v "$PWD/cifar10_train:/cifar10_train" cifar10-appliance
#
# Either flavor is the image cifar10-appliance, run by the same commands (without --gpus all for
# the CPU one). The log's `tensorboard | open http://localhost:6006 ...` line assumes the port
# published as above; publishing another, say so: `-p 127.0.0.1:6007:6006 -e
# CIFAR10_TENSORBOARD_URL=http://localhost:6007`. Arguments after the image's name are the
# appliance's, for all three programs: `... cifar10-appliance --set train.batch_size=256`.
#
# Behind a proxy that re-signs TLS, hand its CA bundle to the build as a secret; apt and pip use
# it, and no layer keeps it:
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt .
#
# Layers go from what changes least to what changes most: system packages, then Python packages
# (TensorFlow alone is gigabytes), then the code. Editing app/ rebuilds only the last layers.

# Debian's python3 (3.11) runs TensorFlow; with the and-cuda extra, the CUDA and cuDNN libraries
# come from pip too, so no CUDA base image is needed: only the host's driver, which
# `--gpus all` brings in.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG BASE_IMAGE

LABEL org.opencontainers.image.title="cifar10-appliance" \
      org.opencontainers.image.description="Trains, evaluates and shows (TensorBoard, port 6006) a CIFAR-10 classifier; state lives in /cifar10_train" \
      org.opencontainers.image.version="0.2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# python3-venv: a venv keeps pip's packages apart from Debian's.
# ca-certificates: the CIFAR-10 download is over HTTPS.
# util-linux: setpriv, with which the entrypoint drops from root to the volume owner's uid.
# Versions come from the base image's Debian release; pinning them breaks as the mirror moves on.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=ca_bundle \
    apt_options=(); \
    if [ -s /run/secrets/ca_bundle ]; then apt_options=(-o Acquire::https::CAInfo=/run/secrets/ca_bundle); fi; \
    apt-get "${apt_options[@]}" update \
    && DEBIAN_FRONTEND=noninteractive apt-get "${apt_options[@]}" install -y --no-install-recommends \
        ca-certificates \
        python3 \
        python3-venv \
        util-linux \
    && rm -rf /var/lib/apt/lists/*

# The programs run as the owner of train_dir (or PUID/PGID). A fresh volume copies its owner
# from the folder here, so with nothing mounted they run as `cifar` (uid 1000, the first user on
# most Linux desktops); the entrypoint hands an empty volume that another uid cannot write to
# that uid.
RUN useradd --uid 1000 --user-group --create-home --shell /bin/bash cifar \
    && mkdir -p /cifar10_train /cifar10_data \
    && chown cifar:cifar /cifar10_train /cifar10_data

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The TensorFlow flavor, declared only here so that both flavors share the layers above.
ARG TF_PACKAGE=tensorflow[and-cuda]
# requirements.txt pins the runtime and, through constraints.txt, TensorFlow's version for either
# flavor. They stay in the image as the record of what it was built from.
COPY requirements.txt constraints.txt /opt/cifar10/
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir -r /opt/cifar10/requirements.txt "${TF_PACKAGE}"

WORKDIR /app
# The user's layer of the configuration: empty, for a file of theirs to be mounted over (the
# defaults are app/config/defaults.yaml).
COPY docker/config.yaml /etc/cifar10/config.yaml
COPY entrypoint.sh /app/entrypoint.sh
COPY app/ /app/app/

# TensorBoard listens on every interface of the container, which a published port needs
# (natively it keeps to 127.0.0.1); `-p 127.0.0.1:...` decides who on the host reaches it.
# APPLIANCE_IN_CONTAINER=1: its log's `open ...` line speaks of the published port.
# One supervisord socket for the container, whoever asks: `docker exec ... entrypoint.sh health`
# runs as root, supervisord as the volume's owner (natively each user has one of their own).
ENV CIFAR10_CONFIG=/etc/cifar10/config.yaml \
    CIFAR10_TENSORBOARD_ADDRESS=0.0.0.0 \
    APPLIANCE_IN_CONTAINER=1 \
    APPLIANCE_SUPERVISOR_SOCKET=/tmp/cifar10-appliance-supervisor.sock \
    PYTHONPATH=/app

VOLUME ["/cifar10_train", "/cifar10_data"]
EXPOSE 6006

# Healthy while the programs supervisord runs are up and TensorBoard answers; in a container
# started for one program (`docker run ... cifar10-appliance train`), while that program runs
# (tensorboard: and answers). app/runtime/health.py knows.
# The start period covers the first start's CIFAR-10 download (170 MB) before supervisord runs.
HEALTHCHECK --interval=30s --timeout=15s --start-period=300s --retries=3 \
    CMD ["/app/entrypoint.sh", "health"]

# The entrypoint starts as root to fit the volumes' owner, then drops to that uid.
ENTRYPOINT ["/app/entrypoint.sh"]
