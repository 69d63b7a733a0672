"""Every TensorBoard tab an image classifier fills, opened in the browser on a real run: each
shows the content the appliance wrote (the Scalars tab has its own module)."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.browser.shadow_dom import EVERY_ELEMENT
from tests.harness.tensorboard_api import ROUTES_THE_TABS_LOAD, route_of
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.browser

PAGE_TEXTS = EVERY_ELEMENT + "return visibleTexts(document.documentElement);"
LOADED_IMAGES = EVERY_ELEMENT + """
const sources = [];
for (const element of everyElement(document.documentElement)) {
  if (element.tagName === 'IMG' && element.complete && element.naturalWidth > 0) {
    sources.push(element.src);
  }
}
return sources;
"""

# Per tab, texts that only that tab's rendered content holds (tag names, column heads, ...).
TAB_CONTENT = {
    "histograms": {"conv1/activations", "conv1/kernel"},
    "distributions": {"conv1/activations", "conv1/kernel"},
    "graphs": {"Main Graph", "train_step"},
    "hparams": {"precision @ 1 (eval)", "train.batch_size", "train.recipe"},
    "pr_curves": {"pr_curves/airplane", "pr_curves/truck"},
}


def open_tab(browser, port: int, tab: str):
    browser.get("about:blank")  # a fresh page: one dashboard's content in the DOM at a time
    browser.get(f"http://127.0.0.1:{port}/#{tab}")
    return browser


@pytest.mark.parametrize("tab", sorted(TAB_CONTENT))
def test_tab_shows_the_runs_content(browser, trained_stack, tab):
    page = open_tab(browser, trained_stack.port, tab)
    wait_until(lambda: TAB_CONTENT[tab] <= set(page.execute_script(PAGE_TEXTS)), 90,
               f"the {tab} tab to show {sorted(TAB_CONTENT[tab])}")


def test_images_tab_shows_the_input_images_and_the_confusion_matrix(browser, trained_stack):
    page = open_tab(browser, trained_stack.port, "images")
    wait_until(lambda: {"images", "confusion_matrix"} <= set(page.execute_script(PAGE_TEXTS)), 90,
               "the images and confusion_matrix cards")
    drawn = wait_until(lambda: [source for source in page.execute_script(LOADED_IMAGES)
                              if "/data/plugin/images/individualImage" in source], 90,
                       "an image served by TensorBoard and drawn")
    assert len(drawn) >= 2


def routes_requested(browser, port: int) -> set[str]:
    """The routes (ROUTES_THE_TABS_LOAD's entries) of the requests the browser sent to
    TensorBoard since the last call (from Chrome's DevTools log, which reading empties)."""
    routes = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = urllib.parse.urlsplit(message["params"]["request"]["url"])
            if url.port == port:
                routes.add(route_of(url.path))
    return routes


# Per tab, the request that fetches the content it draws (cards are fetched as they are drawn;
# the Projector draws in a frame of its own, whose texts the page's script does not reach).
TAB_DATA = {
    "scalars": "/data/plugin/scalars/scalars_multirun",
    "images": "/data/plugin/images/individualImage",
    "graphs": "/data/plugin/graphs/graph",
    "distributions": "/data/plugin/distributions/distributions",
    "histograms": "/data/plugin/histograms/histograms",
    "pr_curves": "/data/plugin/pr_curves/pr_curves",
    "hparams": "/data/plugin/hparams/session_groups",
    "projector": "/data/plugin/projector/sprite_image",
}


def test_every_route_the_tabs_load_is_one_the_password_test_checks(browser, trained_stack):
    """tests/stack asks each route of ROUTES_THE_TABS_LOAD without the password (401) and with it
    (200); that says something only as long as the list holds every route the tabs load."""
    loaded = set()

    def loaded_so_far() -> set[str]:
        loaded.update(routes_requested(browser, trained_stack.port))
        return loaded

    for tab, data_route in TAB_DATA.items():
        open_tab(browser, trained_stack.port, tab)
        wait_until(lambda: data_route in loaded_so_far(), 90,
                   f"the {tab} tab to fetch its content ({data_route})")
    unchecked = sorted(loaded_so_far() - set(ROUTES_THE_TABS_LOAD))
    assert not unchecked, f"routes the tabs load that the password test does not ask: {unchecked}"
