"""TensorBoard's password: every route refused without it, and a password file that would leave
TensorBoard open refused before anything starts."""
import base64

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from app import config as configuration
from app.config import ConfigError
from app.tensorboard.server import read_password, require_password

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
