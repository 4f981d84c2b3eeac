"""Form controls of Home Assistant's frontend, driven as a user would (browser_check.py).

Text fields, entity pickers, check boxes and switches sit inside shadow roots and re-render
while a form loads; each action here is read back until the form holds what was typed or
clicked.
"""

from __future__ import annotations

import time

from browser import find, page_text, wait
from check_develop import CheckFailed
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

# Focus the first text input inside arguments[0] (through shadow roots); return it, or null.
FOCUS_INPUT = """
const deep = (root) => {
  for (const el of root.querySelectorAll('*')) {
    if (el.matches('input, textarea')) return el;
    if (el.shadowRoot) { const found = deep(el.shadowRoot); if (found) return found; }
  }
  return null;
};
const input = deep(arguments[0].shadowRoot || arguments[0]);
if (input) input.focus();
return input;
"""
# The check box labelled arguments[0] (its element differs between releases), or the page's
# first switch when that is null: clicked if arguments[1], then read.
CONTROL = """
const all = (root, out) => {
  for (const el of root.querySelectorAll('*')) {
    out.push(el);
    if (el.shadowRoot) all(el.shadowRoot, out);
  }
  return out;
};
const shown = (el) => el.getBoundingClientRect().width > 0;
const find = (label) => {
  const every = all(document, []);
  if (label === null) return every.find((el) => el.matches('ha-switch') && shown(el)) || null;
  const boxes = 'ha-checkbox, wa-checkbox, md-checkbox, input[type=checkbox]';
  for (const el of every) {
    if (el.label !== label && (el.textContent || '').trim() !== label) continue;
    for (let up = el, i = 0; up && i < 4; up = up.parentElement || up.getRootNode().host, i++) {
      const box = up.matches(boxes) ? up : up.querySelector(boxes);
      if (box && shown(box)) return box;
    }
  }
  return null;
};
const control = find(arguments[0]);
if (!control) return null;
if (arguments[1]) control.click();
return {tag: control.tagName, checked: !!control.checked};
"""


def step(message: str) -> None:
    """Print one line of progress."""
    print(f"browser_check: {message}", flush=True)


class Forms:
    """Typing, picking and ticking on the page ``driver`` shows."""

    driver: WebDriver

    def type_keys(self, text: str) -> None:
        """Type into whatever has the focus."""
        ActionChains(self.driver).send_keys(text).perform()

    def pick_entity(self, index: int, search: str) -> None:
        """Pick an entity in the form's ``index``-th entity selector: open, search, Enter.

        Enter is pressed once the list shows a match (one more ``search`` on the page), and
        the selector must then hold a value.
        """
        driver = self.driver
        selector = wait("no entity selector", lambda: find(driver, "ha-selector-entity"))[index]
        field = wait("no entity picker", lambda: find(driver, "ha-picker-field"))[index]
        before = page_text(driver).count(search)
        driver.execute_script("arguments[0].click()", field)
        time.sleep(0.5)
        self.type_keys(search)
        wait(
            f"the entity picker lists no {search!r}",
            lambda: page_text(driver).count(search) > before,
        )
        self.type_keys(Keys.ENTER)
        wait(
            f"entity selector {index} took no value for {search!r}",
            lambda: driver.execute_script("return arguments[0].value", selector),
            timeout=10,
        )

    def fill_text(self, index: int, text: str) -> None:
        """Type ``text`` into the form's ``index``-th text field; it must then hold it."""
        driver = self.driver
        selector = wait("no text field", lambda: find(driver, "ha-selector-text"))[index]
        wait("no input in the text field", lambda: driver.execute_script(FOCUS_INPUT, selector))
        self.type_keys(text)
        wait(
            f"text field {index} does not hold {text!r}",
            lambda: driver.execute_script("return arguments[0].value", selector) == text,
            timeout=10,
        )

    def turn_on(self, label: str | None) -> None:
        """Tick ``label``'s check box (None: the page's first switch) until it reads on.

        A click on a form that is still rendering (a loaded machine) can be lost, so each
        click is read back a second later.
        """
        what = label or "the first switch"
        for _ in range(5):
            state = wait(f"no {what}", lambda: self.driver.execute_script(CONTROL, label, False))
            if state["checked"]:
                step(f"on: {what} ({state['tag']})")
                return
            self.driver.execute_script(CONTROL, label, True)
            time.sleep(1)
        raise CheckFailed(f"{what} does not stay on")
