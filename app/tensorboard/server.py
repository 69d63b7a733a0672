"""`python -m app tensorboard`: TensorBoard over every run of the volume (train_dir), behind a
password when one is set.

TensorBoard has no login of its own, and whoever reaches its port sees everything: the training
images, the weights, the configuration, the results. With `tensorboard.password` (or
`tensorboard.password_file`, for a Docker or Kubernetes secret) every request must carry it by
HTTP Basic authentication, any user name: TensorBoard's whole WSGI application (its pages,
/data/*, every plugin's routes and the projector's files) is wrapped, so that nothing is served
without it. werkzeug, TensorBoard's own HTTP library, reads the header; the password is compared
in constant time.

TensorBoard runs in this process (tensorboard.program, as its own command line does), with its
Python data loader (--load_fast false): the fast loader is a second server with a TCP port of its
own, and 6006 stays the appliance's only open port.
"""
from __future__ import annotations

import hmac
import logging
import os

from app import compat

log = logging.getLogger(__name__)
REALM = "cifar10-appliance TensorBoard"


def main(config) -> int:
    from tensorboard import program

    settings = config.tensorboard
    password = read_password(settings)
    os.makedirs(config.paths.train_dir, exist_ok=True)
    compat.adopt_old_layout(config.paths.train_dir, config.paths.run)  # before it reads a file
    server = program.TensorBoard(server_class=_server(password))
    server.configure(argv=[
        "tensorboard", "--logdir", config.paths.train_dir, "--bind_all",
        "--port", str(settings.port),
        "--reload_interval", f"{settings.reload_every_secs:g}",
        "--load_fast", "false"])
    log.info(f"TensorBoard on port {settings.port}, "
             + ("behind a password (any user name)" if password else
                "open to whoever reaches the port (no tensorboard.password set)"))
    return server.main()


def read_password(settings) -> str | None:
    """The password, from the config or its file (app.config has checked that the file holds
    one); None when TensorBoard is open."""
    if settings.password_file:
        with open(settings.password_file, encoding="utf-8") as secret:
            return secret.read().strip()
    return settings.password


def _server(password: str | None):
    """TensorBoard's own server class, serving its application wrapped in the password check."""
    from tensorboard import program

    def make(wsgi_app, flags):
        return program.WerkzeugServer(
            require_password(wsgi_app, password) if password else wsgi_app, flags)
    return make


def require_password(wsgi_app, password: str):
    """`wsgi_app` behind HTTP Basic authentication with `password` (any user name)."""
    from werkzeug.wrappers import Request, Response

    expected = password.encode("utf-8")

    def guarded(environ, start_response):
        credentials = Request(environ).authorization
        given = (credentials.password or "") if credentials and credentials.type == "basic" else ""
        if hmac.compare_digest(given.encode("utf-8"), expected):
            return wsgi_app(environ, start_response)
        refusal = Response("This TensorBoard needs its password (tensorboard.password).\n",
                           status=401, mimetype="text/plain",
                           headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        return refusal(environ, start_response)
    return guarded
