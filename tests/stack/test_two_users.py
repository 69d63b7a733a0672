"""Two users' appliances on one machine (a shared GPU server), natively: each user types `make run`
in a checkout of their own, on a port of their own, and each gets a supervisord of their own,
which their `entrypoint.sh supervisorctl` reaches; Ctrl-C stops each."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.harness.image import clean_checkout
from tests.harness.new_user import NewUser, user_venv
from tests.harness.ports import answers_http, free_ports

pytestmark = [pytest.mark.stack,
              pytest.mark.skipif(os.geteuid() != 0, reason="runs as two other uids (root only)")]

USER_IDS = (1234, 1235)
# A small run that trains on well past the test (the README's quick try, endless).
QUICK_ENDLESS_RUN = {"CIFAR10_DATA_SOURCE": "synthetic",
                     "CIFAR10_DATA_SYNTHETIC_TRAIN_EXAMPLES": "2000",
                     "CIFAR10_DATA_SYNTHETIC_TEST_EXAMPLES": "500",
                     "CIFAR10_EVAL_NUM_EXAMPLES": "500", "CIFAR10_TRAIN_BATCH_SIZE": "32",
                     "CIFAR10_TRAIN_MAX_STEPS": "1000000"}


@pytest.fixture
def two_users():
    # Outside pytest's temporary folders, which only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="cifar10-two-users-"))
    folder.chmod(0o755)
    users = []
    try:
        for uid in USER_IDS:
            checkout = clean_checkout(folder / f"user-{uid}" / "cifar10-appliance")
            user_venv(checkout / ".venv")
            home = folder / f"user-{uid}" / "home"
            home.mkdir()
            users.append(NewUser(home, checkout, uid, uid, engine=None))
            users[-1].exported.update(QUICK_ENDLESS_RUN)
        yield users
    finally:
        for user in users:
            user.stop_all()
            user.clean_tmp()
        shutil.rmtree(folder)


def test_two_users_run_the_appliance_side_by_side_each_with_a_supervisord_of_their_own(two_users):
    ports = free_ports(len(two_users))
    running = [user.start(f"TENSORBOARD_PORT={port} make run",
                          lambda output, port=port: answers_http(port), 300)
               for user, port in zip(two_users, ports)]
    for user in two_users:
        status = user.type("./entrypoint.sh supervisorctl status")
        assert status.exit_code == 0, status.output
        for program in ("train", "eval", "tensorboard"):
            assert re.search(rf"(?m)^appliance:{program} +RUNNING ", status.output), status.output
        pid = user.type("./entrypoint.sh supervisorctl pid")
        assert pid.exit_code == 0, pid.output
        # The supervisord that answered is this user's.
        assert Path(f"/proc/{int(pid.output.split()[-1])}").stat().st_uid == user.uid
        assert Path(f"/tmp/cifar10-appliance-supervisor-{user.uid}.sock").exists()
    for user, started in zip(two_users, running):
        stopped = user.stop(started)
        assert stopped.exit_code is not None, stopped.output[-3000:]
