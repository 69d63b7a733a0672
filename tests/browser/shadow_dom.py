"""TensorBoard's UI is Polymer components inside shadow roots, which selenium's locators do not
enter: the tests read pages with a little JavaScript that walks every shadow root. EVERY_ELEMENT
goes in front of each such script."""

EVERY_ELEMENT = """
function* everyElement(node) {
  yield node;
  if (node.shadowRoot) yield* everyElement(node.shadowRoot);
  for (const child of node.children || []) yield* everyElement(child);
}
function visibleTexts(root) {
  const texts = [];
  for (const element of everyElement(root)) {
    if (['STYLE', 'SCRIPT', 'TEMPLATE'].includes(element.tagName)) continue;
    for (const child of element.childNodes || []) {
      if (child.nodeType === Node.TEXT_NODE && child.textContent.trim()) {
        texts.push(child.textContent.trim());
      }
    }
  }
  return texts;
}
"""
