# The two commands a newcomer needs: `make run` (the appliance without Docker) and `make test`.
# Everything else here serves those two.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# The TensorFlow flavor for this machine; the GPU image uses tensorflow[and-cuda] instead.
TF_PACKAGE ?= tensorflow-cpu
# Where `make run` keeps its checkpoints, logs and data (the container uses volumes instead).
RUN_DIR ?= $(CURDIR)

.PHONY: install run test test-fast screenshot defaults

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -r requirements-dev.txt "$(TF_PACKAGE)"
	touch $@

install: $(VENV)/.installed

# The three programs under supervisord, natively (Ctrl-C stops them all), with TensorBoard on
# http://localhost:6006, this machine only. TENSORBOARD_ADDRESS and TENSORBOARD_PORT, the names
# Compose reads, choose others (TENSORBOARD_ADDRESS=0.0.0.0: every interface; give TensorBoard a
# password then); unset, the config's tensorboard.address and tensorboard.port hold.
run: install
	CIFAR10_PATHS_TRAIN_DIR="$${CIFAR10_PATHS_TRAIN_DIR:-$(RUN_DIR)/cifar10_train}" \
	CIFAR10_PATHS_DATA_DIR="$${CIFAR10_PATHS_DATA_DIR:-$(RUN_DIR)/cifar10_data}" \
	$(if $(TENSORBOARD_ADDRESS),CIFAR10_TENSORBOARD_ADDRESS="$(TENSORBOARD_ADDRESS)") \
	$(if $(TENSORBOARD_PORT),CIFAR10_TENSORBOARD_PORT="$(TENSORBOARD_PORT)") \
	PYTHON=$(CURDIR)/$(VENV_PYTHON) ./entrypoint.sh

# Everything: unit, integration, the supervised stack, the container and the browser.
test: install
	$(VENV_PYTHON) -m pytest

# The loop while editing (a few minutes): the unit tests, and one real train and eval through the
# command line that the tests of tests/integration/test_train_eval.py read.
test-fast: install
	$(VENV_PYTHON) -m pytest -m "not slow and not stack and not faults and not container and not browser"

# Renders app/config/defaults.yaml from app/config/schema.py, where every key is written.
defaults: install
	$(VENV_PYTHON) -m app.config.defaults

# Renews docs/tensorboard-scalars.png (the README's picture) from a real run, through the browser test.
screenshot: install
	TENSORBOARD_SCREENSHOT=docs/tensorboard-scalars.png $(VENV_PYTHON) -m pytest tests/browser
