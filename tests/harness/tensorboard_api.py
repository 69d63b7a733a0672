"""TensorBoard as its HTTP API serves it: what the dashboards load, and whether each curve is true.

`TensorBoardAPI(port, password)` asks the real server of a stack or a container (given its
password, by HTTP Basic authentication, when it has one) what a browser's tabs would ask.
`curves(api, run)` reads every kind of data of one run the way its tab does (scalars, histograms,
distributions, images, text, PR curves), each as the steps it shows; `going_back(...)` lists each
curve that repeats a step or runs backward, which after a restart would be the steps written twice
(a resume from the checkpoint before a kill -9 trains them again). `hparams_rows(api)` is the
HParams tab's table: one row per session (run), its hyperparameters and metric values.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from tests.harness.ports import basic_authorization

# The HParams tab's request for its table (as tests/integration/test_tensorboard_extras.py sends).
SESSION_GROUPS_REQUEST = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"],
                          "startIndex": 0, "sliceSize": 100}
# Each kind of data with a step, as its plugin serves it: the route of its tags (by run), and
# the route of one tag's data.
KINDS = ("scalars", "histograms", "distributions", "images", "text", "pr_curves")


class TensorBoardAPI:
    def __init__(self, port: int, password: str | None = None, host: str = "127.0.0.1"):
        self.base_url = f"http://{host}:{port}"
        self.password = password

    def request(self, route: str, query: dict | None = None, body: dict | None = None,
                form: dict | None = None, authorized: bool = True,
                timeout: float = 30) -> tuple[int, bytes]:
        """(HTTP status, body) of GET route?query, or of a POST of `body` as JSON or of `form`
        as a form; with the password unless `authorized` is false."""
        url = self.base_url + route + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url)
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        elif form is not None:
            request.data = urllib.parse.urlencode(form, doseq=True).encode()
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if authorized and self.password:
            request.add_header("Authorization", basic_authorization(self.password))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, route: str, query: dict | None = None, body: dict | None = None):
        status, content = self.request(route, query, body)
        if status != 200:
            raise AssertionError(f"{route} {query or ''} answered HTTP {status}: {content[:300]!r}")
        return json.loads(content)

    def runs(self) -> list[str]:
        """The runs list every dashboard starts from (/data/runs)."""
        return self.json("/data/runs")

    def tags(self, kind: str) -> dict[str, list[str]]:
        """Run -> the tags of this kind of data it has."""
        by_run = self.json(f"/data/plugin/{kind}/tags")
        return {run: sorted(tags) for run, tags in by_run.items()}

    def steps(self, kind: str, run: str, tag: str) -> list[int]:
        """The steps of one tag's data as its tab draws them, in the order it draws them."""
        query = {"run": run, "tag": tag}
        if kind == "scalars":
            return [step for _, step, _ in self.json("/data/plugin/scalars/scalars", query)]
        if kind in ("histograms", "distributions"):
            return [step for _, step, _ in self.json(f"/data/plugin/{kind}/{kind}", query)]
        if kind == "images":
            return [image["step"] for image in self.json("/data/plugin/images/images",
                                                         {**query, "sample": 0})]
        if kind == "text":
            return [entry["step"] for entry in self.json("/data/plugin/text/text", query)]
        if kind == "pr_curves":
            curves = self.json("/data/plugin/pr_curves/pr_curves", query)
            return [entry["step"] for entry in curves[run]]
        raise ValueError(kind)

    def session_groups(self) -> list[dict]:
        return self.json("/data/plugin/hparams/session_groups",
                         body=SESSION_GROUPS_REQUEST)["sessionGroups"]


def curves(api: TensorBoardAPI, run: str) -> dict[tuple[str, str], list[int]]:
    """(kind, tag) -> the steps TensorBoard shows, for every tag of every kind of data of `run`."""
    shown = {}
    for kind in KINDS:
        for tag in api.tags(kind).get(run, []):
            shown[(kind, tag)] = api.steps(kind, run, tag)
    return shown


def going_back(shown: dict[tuple[str, str], list[int]]) -> list[str]:
    """Each curve whose steps do not strictly increase: where it repeats a step or runs back."""
    problems = []
    for (kind, tag), steps in sorted(shown.items()):
        wrong = [(before, after) for before, after in zip(steps, steps[1:]) if after <= before]
        if wrong:
            problems.append(f"{kind} {tag!r}: {len(wrong)} step(s) repeated or going back, "
                            f"first {wrong[0][0]} -> {wrong[0][1]}")
    return problems


def hparams_rows(api: TensorBoardAPI) -> dict[str, dict]:
    """The HParams tab's table: session (run) -> {"hparams": {...}, "metrics": {tag: value},
    "metric_steps": {tag: step}, "groups": how many groups hold it}."""
    rows: dict[str, dict] = {}
    for group in api.session_groups():
        for session in group["sessions"]:
            row = rows.setdefault(session["name"], {"groups": 0})
            row["groups"] += 1
            row["hparams"] = group["hparams"]
            row["metrics"] = {value["name"]["tag"]: value["value"]
                              for value in session["metricValues"]}
            row["metric_steps"] = {value["name"]["tag"]: value.get("trainingStep")
                                   for value in session["metricValues"]}
    return rows


# Every route TensorBoard's tabs (Scalars, Images, Graphs, Distributions, Histograms, PR Curves,
# HParams, Projector) were seen to load, with a request of each as the tab sends it: the page and
# its files, the runs list, each tab's data. tests/browser checks that the tabs load no other;
# tests/stack asks each without the password and with it. In the requests, {run} stands for the
# training run, {eval_run} for its eval run, {blob_key} for an image's and {embedding} for the
# Projector's newest embedding (found through the API first). The font files are one route.
FONT_FILES = "/font-roboto/*"
_EXPERIMENT = "/experiment/defaultExperimentId"
ROUTES_THE_TABS_LOAD: dict[str, dict] = {
    "/": {},
    "/index.js": {},
    "/icon_bundle.svg": {},
    FONT_FILES: {"route": "/font-roboto/oMMgfZMQthOryQo9n22dcuvvDin1pK8aKteLpeZ5c0A.woff2"},
    "/data/environment": {},
    "/data/plugins_listing": {},
    "/data/runs": {},
    f"{_EXPERIMENT}/data/runs": {},
    "/data/plugin/scalars/tags": {},
    "/data/plugin/scalars/scalars_multirun": {"form": {"tag": "total_loss", "runs": ["{run}"]}},
    "/data/plugin/images/tags": {},
    "/data/plugin/images/images": {"query": {"run": "{run}", "tag": "images", "sample": 0}},
    "/data/plugin/images/individualImage": {"query": {"blob_key": "{blob_key}"}},
    "/data/plugin/graphs/info": {},
    "/data/plugin/graphs/graph": {"query": {"run": "{run}", "tag": "train_step",
                                            "conceptual": "false"}},
    "/data/plugin/distributions/tags": {},
    "/data/plugin/distributions/distributions": {"query": {"run": "{run}",
                                                           "tag": "conv1/activations"}},
    "/data/plugin/histograms/tags": {},
    "/data/plugin/histograms/histograms": {"query": {"run": "{run}", "tag": "conv1/activations"}},
    "/data/plugin/pr_curves/tags": {},
    "/data/plugin/pr_curves/pr_curves": {"query": {"run": "{eval_run}", "tag": "pr_curves/cat"}},
    "/data/plugin/hparams/experiment": {"body": {"experimentName": ""}},
    "/data/plugin/hparams/session_groups": {"body": SESSION_GROUPS_REQUEST},
    f"{_EXPERIMENT}/data/plugin/hparams/experiment": {"body": {"experimentName": ""}},
    f"{_EXPERIMENT}/data/plugin/hparams/session_groups": {"body": SESSION_GROUPS_REQUEST},
    "/data/plugin_entry.html": {"query": {"name": "projector"}},
    "/data/plugin/projector/index.js": {},
    "/data/plugin/projector/projector_binary.html": {},
    "/data/plugin/projector/projector_binary.js": {},
    "/data/plugin/projector/runs": {},
    "/data/plugin/projector/info": {"query": {"run": "{eval_run}"}},
    "/data/plugin/projector/tensor": {"query": {"run": "{eval_run}", "name": "{embedding}"}},
    "/data/plugin/projector/metadata": {"query": {"run": "{eval_run}", "name": "{embedding}"}},
    "/data/plugin/projector/sprite_image": {"query": {"run": "{eval_run}", "name": "{embedding}"}},
}


def route_of(path: str) -> str:
    """The entry of ROUTES_THE_TABS_LOAD a requested path belongs to."""
    return FONT_FILES if path.startswith("/font-roboto/") else path


def ask_as_the_tab_does(api: TensorBoardAPI, route: str, run: str,
                        authorized: bool = True) -> tuple[int, bytes]:
    """Sends the request of ROUTES_THE_TABS_LOAD[route] for the training run `run`."""
    how = ROUTES_THE_TABS_LOAD[route]
    names = {"run": run, "eval_run": f"{run}/eval"}
    if "{blob_key}" in json.dumps(how):
        image = api.json("/data/plugin/images/images", {"run": run, "tag": "images",
                                                        "sample": 0})[-1]
        names["blob_key"] = urllib.parse.parse_qs(image["query"])["blob_key"][0]
    if "{embedding}" in json.dumps(how):
        info = api.json("/data/plugin/projector/info", {"run": names["eval_run"]})
        names["embedding"] = info["embeddings"][0]["tensorName"]
    how = _filled(how, names)
    return api.request(how.get("route", route), how.get("query"), how.get("body"),
                       how.get("form"), authorized=authorized)


def _filled(value, names: dict[str, str]):
    """`value` with each {name} in its texts replaced by names[name]."""
    if isinstance(value, str):
        for name, text in names.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, list):
        return [_filled(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, names) for key, item in value.items()}
    return value
