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
own, and 6006 stays the appliance's only open port. It listens on tensorboard.address (127.0.0.1,
this machine only, unless told otherwise; the image sets 0.0.0.0 for its published port).

Once it listens, the log says where to open it, in one line of the appliance's
(`open http://localhost:6006 (...)`, open_line below) instead of TensorBoard's own `TensorBoard
2.21.0 at http://<host name>:6006/`, whose host name, in a container, is the container's id.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os

from app import compat

log = logging.getLogger(__name__)
REALM = "cifar10-appliance TensorBoard"
# Set by the image (Dockerfile): the host reaches TensorBoard through a published port, which
# only the user knows. Not /.dockerenv: development machines and dev containers have one too.
IN_CONTAINER_VARIABLE = "APPLIANCE_IN_CONTAINER"
URL_VARIABLE = "CIFAR10_TENSORBOARD_URL"  # tensorboard.url, as a container is told it


def main(config) -> int:
    from tensorboard import program

    settings = config.tensorboard
    password = read_password(settings)
    os.makedirs(config.paths.train_dir, exist_ok=True)
    compat.adopt_old_layout(config.paths.train_dir, config.paths.run)  # before it reads a file
    server = program.TensorBoard(server_class=_server(
        password, open_line(settings, bool(password), in_a_container())))
    server.configure(argv=[
        "tensorboard", "--logdir", config.paths.train_dir, "--host", settings.address,
        "--port", str(settings.port),
        "--reload_interval", f"{settings.reload_every_secs:g}",
        "--load_fast", "false"])
    return server.main()


def in_a_container() -> bool:
    return os.environ.get(IN_CONTAINER_VARIABLE) == "1"


def open_line(settings, has_password: bool, in_container: bool) -> str:
    """The log's line that tells the user where to open TensorBoard, and who else may."""
    url = settings.url or f"http://{_host_in_url(settings.address)}:{settings.port}"
    if in_container and not _is_wildcard(settings.address):
        where = (f"TensorBoard on the container's {_host_port(settings.address, settings.port)}, "
                 f"which no published port reaches: tensorboard.address 0.0.0.0 does")
    elif in_container:
        # Which host port the container's port is published on, only the user knows.
        where = f"TensorBoard on the container's port {settings.port}" + (
            "" if settings.url else f", as -p 127.0.0.1:{settings.port}:{settings.port} "
                                    f"publishes it; for another host port set {URL_VARIABLE}")
    elif _is_wildcard(settings.address):
        where = f"TensorBoard on every interface, port {settings.port}"
    elif ipaddress.ip_address(settings.address).is_loopback:
        where = f"TensorBoard on {_host_port(settings.address, settings.port)}, this machine only"
    else:
        where = f"TensorBoard on {_host_port(settings.address, settings.port)}"
    guard = ("behind a password, any user name" if has_password else
             "no password: tensorboard.password sets one")
    return f"open {url} ({where}; {guard})"


def reachable_address(address: str) -> str:
    """Where a client on this machine reaches TensorBoard listening on `address`: loopback for
    a wildcard (every interface), else the address itself; for app/runtime/health.py."""
    if _is_wildcard(address):
        return "::1" if ipaddress.ip_address(address).version == 6 else "127.0.0.1"
    return address


def _is_wildcard(address: str) -> bool:
    return ipaddress.ip_address(address).is_unspecified


def _host_in_url(address: str) -> str:
    """How a browser on this machine names TensorBoard at `address`, in a URL."""
    if _is_wildcard(address) or ipaddress.ip_address(address).is_loopback:
        return "localhost"
    return f"[{address}]" if ":" in address else address


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def read_password(settings) -> str | None:
    """The password, from the config or its file (app.config has checked that the file holds
    one); None when TensorBoard is open."""
    if settings.password_file:
        with open(settings.password_file, encoding="utf-8") as secret:
            return secret.read().strip()
    return settings.password


def _server(password: str | None, announcement: str):
    """TensorBoard's own server class, serving its application wrapped in the password check,
    and saying `announcement` in place of its own serving message once it listens."""
    from tensorboard import program

    class Server(program.WerkzeugServer):
        def print_serving_message(self):
            log.info(announcement)

    def make(wsgi_app, flags):
        return Server(require_password(wsgi_app, password) if password else wsgi_app, flags)
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
