"""What the tests and the benchmarks share: how to start the appliance, wait on it, read what it
says, and hurt it. Plain modules, imported as `tests.harness.NAME` by tests and bench alike.

    fixtures.py      the pytest plugin the root conftest names: the trained stack, the Docker
                     engine, the image built once per session, podman with that image loaded,
                     the containers a test starts
    native_stack.py  the three programs under supervisord, natively, as `make run` starts them
    docker_engine.py the real Docker engine of the tests' own: dockerd, the docker CLI, Compose
    podman.py        a podman of the tests' own
    containers.py    the containers a test starts, on either engine
    engine_footprint.py  what an engine leaves on the host (netfilter, links), and taking it away
    debian_base.py   the Debian base image, made with debootstrap (nothing can be pulled)
    image.py         the CPU image of this checkout, built on that base
    container_runs.py  the small runs the container tests start, and the volumes they mount
    environment.py   the environment `python -m app` runs in; run_app, and the settings of a run
    log_lines.py     every line the programs print that a test or benchmark reads
    checkpoints.py   the checkpoints on disk: the state file, and whether each one restores
    waiting.py       wait_until, and GaveUp
    ports.py         free ports, and whether one answers HTTP
    tensorboard_api.py  what TensorBoard's HTTP API serves, and whether each curve is true
    figures.py       figures the container tests report in pytest's summary
    faults/          the appliance under faults: one module per scenario, returning what it saw
"""
