"""What a user sees: TensorBoard of a running appliance in a real browser (Debian's headless
chromium, driven through Debian's chromedriver), its Scalars dashboard showing the train and eval
runs with the `total_loss` and `precision @ 1` charts drawn.

The page is read with JavaScript that walks every shadow root (tests/browser/shadow_dom.py).

The screenshot goes to the test's folder; with TENSORBOARD_SCREENSHOT=docs/tensorboard-scalars.png
it is also copied there (that is how the one in docs/ is made).
"""
from __future__ import annotations

import os
import shutil
import urllib.parse

import pytest

from tests.browser.shadow_dom import EVERY_ELEMENT
from tests.harness.environment import REPO_ROOT
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.browser

# TensorBoard names each run after its folder: the training run is the run's folder on the volume
# (<train_dir>/default, paths.run's default), its eval run that folder's eval/.
TRAIN_RUN = "default"
EVAL_RUN = "default/eval"
CHARTS = {"total_loss": TRAIN_RUN, "precision @ 1": EVAL_RUN}

RUN_NAMES = EVERY_ELEMENT + """
for (const element of everyElement(document.documentElement)) {
  if (element.tagName === 'TF-RUNS-SELECTOR') return visibleTexts(element);
}
return [];
"""

# Each scalar chart: its title, and how many data lines it has drawn (SVG paths with points).
SCALAR_CARDS = EVERY_ELEMENT + """
const cards = [];
for (const element of everyElement(document.documentElement)) {
  if (element.tagName !== 'TF-SCALAR-CARD') continue;
  let drawnLines = 0;
  for (const part of everyElement(element)) {
    if (part.tagName === 'path' && part.classList.contains('line')
        && (part.getAttribute('d') || '').includes('L')) drawnLines++;
  }
  cards.push({title: visibleTexts(element)[0], drawnLines: drawnLines});
}
return cards;
"""

# With few points, "Ignore outliers in chart scaling" (on by default) can scale a chart so that
# its line falls outside; a user would untick it, and so do we.
SHOW_OUTLIERS = EVERY_ELEMENT + """
for (const element of everyElement(document.documentElement)) {
  if (element.tagName === 'PAPER-CHECKBOX' && element.textContent.includes('Ignore outliers')) {
    if (element.checked) element.click();
    return !element.checked;
  }
}
return false;
"""


@pytest.fixture
def scalars_page(browser, trained_stack):
    """The Scalars dashboard, filtered to the two charts a user watches, without smoothing."""
    tag_filter = "^(" + "|".join(CHARTS) + ")$"
    browser.get(f"http://127.0.0.1:{trained_stack.port}/#scalars"
                f"&tagFilter={urllib.parse.quote(tag_filter)}&_smoothingWeight=0")
    wait_until(lambda: browser.execute_script(SHOW_OUTLIERS), 60,
               "the 'Ignore outliers' checkbox to be unticked")
    return browser


def test_scalars_dashboard_lists_the_train_and_eval_runs(scalars_page):
    run_names = wait_until(lambda: scalars_page.execute_script(RUN_NAMES), 60, "the runs list")
    assert TRAIN_RUN in run_names and EVAL_RUN in run_names, run_names


def test_scalars_dashboard_draws_total_loss_and_precision(scalars_page, tmp_path):
    def drawn_charts():
        cards = scalars_page.execute_script(SCALAR_CARDS)
        return {card["title"] for card in cards if card["drawnLines"] > 0} >= set(CHARTS) and cards

    cards = wait_until(drawn_charts, 60, f"charts of {', '.join(CHARTS)} with lines drawn")
    # Each tag comes from one run only, so each chart holds exactly that run's line. (The other
    # categories stay listed below the filtered group; they are not what this test is about.)
    lines_per_chart = {card["title"]: card["drawnLines"] for card in cards if card["title"] in CHARTS}
    assert lines_per_chart == {title: 1 for title in CHARTS}

    screenshot = tmp_path / "tensorboard-scalars.png"
    assert scalars_page.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000  # a blank page would be a few kB
    if os.environ.get("TENSORBOARD_SCREENSHOT"):
        shutil.copyfile(screenshot, REPO_ROOT / os.environ["TENSORBOARD_SCREENSHOT"])
