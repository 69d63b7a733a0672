"""TensorBoard's password: every route refused without it, and a password file that would leave
TensorBoard open refused before anything starts; the address it listens on, and the log's line
that says where to open it."""
import base64

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from app import config as configuration
from app.config import ConfigError
from app.tensorboard.server import (open_line, reachable_address, read_password,
                                    require_password)

ROUTES = ["/", "/index.html", "/data/runs", "/data/plugin/scalars/scalars?run=.&tag=total_loss",
          "/data/plugin/projector/sprite_image?run=eval&name=x", "/font-roboto/x.woff2"]


def served(environ, start_response):
    return Response(f"content of {environ['PATH_INFO']}")(environ, start_response)


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_needs_the_password_and_any_user_name_will_do(route):
    client = Client(require_password(served, "s3cret"))
    refused = client.get(route)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Basic realm="')
    assert b"content of" not in refused.data
    assert client.get(route, headers=basic("anyone", "wrong")).status_code == 401
    assert client.get(route, headers={"Authorization": "Bearer s3cret"}).status_code == 401
    for user in ("anyone", ""):
        allowed = client.get(route, headers=basic(user, "s3cret"))
        assert allowed.status_code == 200 and allowed.data.startswith(b"content of")


def load(**tensorboard):
    return configuration.load(None, [f"tensorboard.{key}={value}"
                                     for key, value in tensorboard.items()], {})


def test_the_password_comes_from_its_file_and_is_never_shown(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-secret\n")
    settings = load(password_file=secret)
    assert read_password(settings.tensorboard) == "from-a-secret"
    assert read_password(load(password="typed").tensorboard) == "typed"
    assert read_password(load().tensorboard) is None
    assert "typed" not in load(password="typed").to_yaml()


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), ("", "the file is empty"), ("  \n", "the file is empty")],
    ids=["missing", "empty", "blank"])
def test_a_password_file_that_would_leave_tensorboard_open_is_a_config_error(
        tmp_path, content, message):
    secret = tmp_path / "password"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(ConfigError, match=f"tensorboard.password_file: {secret}: {message}"):
        load(password_file=secret)


def test_a_password_and_a_password_file_at_once_is_a_config_error(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("x")
    with pytest.raises(ConfigError, match="set either it or tensorboard.password, not both"):
        configuration.load(None, ["tensorboard.password=y",
                                  f"tensorboard.password_file={secret}"], {})


# tensorboard.address, tensorboard.url, whether it has a password, in a container: the line.
OPEN_LINES = {
    "natively": (
        {}, False, False,
        "open http://localhost:6006 (TensorBoard on 127.0.0.1:6006, this machine only; no "
        "password: tensorboard.password sets one)"),
    "natively on every interface": (
        {"address": "0.0.0.0", "port": 6007}, True, False,
        "open http://localhost:6007 (TensorBoard on every interface, port 6007; behind a "
        "password, any user name)"),
    "natively on one address": (
        {"address": "192.0.2.7"}, False, False,
        "open http://192.0.2.7:6006 (TensorBoard on 192.0.2.7:6006; no password: "
        "tensorboard.password sets one)"),
    "natively behind a URL of the user's": (
        {"url": "https://tb.example.org"}, True, False,
        "open https://tb.example.org (TensorBoard on 127.0.0.1:6006, this machine only; behind a "
        "password, any user name)"),
    "in the container": (
        {"address": "0.0.0.0"}, False, True,
        "open http://localhost:6006 (TensorBoard on the container's port 6006, as -p "
        "127.0.0.1:6006:6006 publishes it; for another host port set CIFAR10_TENSORBOARD_URL; "
        "no password: tensorboard.password sets one)"),
    "in the container, published elsewhere": (
        {"address": "0.0.0.0", "url": "http://localhost:6007"}, True, True,
        "open http://localhost:6007 (TensorBoard on the container's port 6006; behind a "
        "password, any user name)"),
    "in the container on its loopback": (
        {}, False, True,
        "open http://localhost:6006 (TensorBoard on the container's 127.0.0.1:6006, which no "
        "published port reaches: tensorboard.address 0.0.0.0 does; no password: "
        "tensorboard.password sets one)"),
}


@pytest.mark.parametrize("keys, has_password, in_container, line", OPEN_LINES.values(),
                         ids=list(OPEN_LINES))
def test_the_log_says_where_to_open_tensorboard(keys, has_password, in_container, line):
    assert open_line(load(**keys).tensorboard, has_password, in_container) == line


@pytest.mark.parametrize("address, reached_at", [
    ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "::1"),
    ("192.0.2.7", "192.0.2.7")])
def test_a_client_on_this_machine_reaches_every_interface_on_loopback(address, reached_at):
    assert reachable_address(address) == reached_at


def test_tensorboard_listens_on_loopback_unless_told_otherwise():
    assert load().tensorboard.address == "127.0.0.1"
    assert load().tensorboard.url is None
    every = configuration.load(None, environ={"CIFAR10_TENSORBOARD_ADDRESS": "::"})
    assert every.tensorboard.address == "::"  # as written, not the mapping YAML reads in `::`


@pytest.mark.parametrize("key, value, message", [
    ("address", "everywhere", "--set tensorboard.address=everywhere: tensorboard.address: "
                              "expected an IP address (127.0.0.1: this machine only; 0.0.0.0: "
                              "every interface), got 'everywhere'"),
    ("url", "localhost:6007", "--set tensorboard.url=localhost:6007: tensorboard.url: expected a "
                              "URL starting http:// or https://, got 'localhost:6007'"),
], ids=["address", "url"])
def test_a_bad_address_or_url_is_a_config_error_that_names_the_key(key, value, message):
    with pytest.raises(ConfigError) as error:
        load(**{key: value})
    assert str(error.value) == message
