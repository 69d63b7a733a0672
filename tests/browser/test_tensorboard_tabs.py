"""Every TensorBoard tab an image classifier fills, opened in the browser on a real run: each
shows the content the appliance wrote (the Scalars tab has its own module)."""
from __future__ import annotations

import pytest

from tests.browser.shadow_dom import EVERY_ELEMENT
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
