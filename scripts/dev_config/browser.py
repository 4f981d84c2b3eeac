"""Drive Debian's Chromium with Selenium through Home Assistant's frontend (shadow DOM aware).

The browser may reach 127.0.0.1 only: every other host name fails to resolve
(--host-resolver-rules), so the brands CDN that Home Assistant 2026.2's frontend asks for an
integration's icon is blocked on purpose, and nothing of a test reaches the internet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from check_develop import poll
from page_checks import BRANDS_CDN
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement

__all__ = ["BRANDS_CDN", "click", "find", "find_one", "images", "page_text", "requests"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


# Every element of the page, inside open shadow roots too.
_ALL = """
const all = (root, out) => {
  for (const el of root.querySelectorAll('*')) {
    out.push(el);
    if (el.shadowRoot) all(el.shadowRoot, out);
  }
  return out;
};
const shown = (el) => {
  for (let e = el; e; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
    const style = getComputedStyle(e);
    if (style.display === 'none' || style.visibility === 'hidden') return false;
  }
  const box = el.getBoundingClientRect();
  return box.width > 0 && box.height > 0;
};
"""
_FIND = (
    _ALL
    + """
const [css, text] = arguments;
return all(document, []).filter(el => el.matches(css) && shown(el)
  && (text === null || (el.innerText || el.textContent || '').trim() === text
      || (el.getAttribute('label') || '') === text));
"""
)
# The text the user sees: text nodes of shown elements, shadow roots included.
_TEXT = (
    _ALL
    + """
const parts = [];
const walk = (root) => {
  for (const node of root.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      const t = node.textContent.trim();
      if (t && node.parentElement && shown(node.parentElement)) parts.push(t);
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      if (['SCRIPT', 'STYLE'].includes(node.tagName)) continue;
      for (const attr of ['label', 'placeholder', 'aria-label', 'title']) {
        const v = node.getAttribute && node.getAttribute(attr);
        if (v && shown(node)) parts.push(v);
      }
      if (node.shadowRoot) walk(node.shadowRoot);
      walk(node);
    }
  }
};
walk(document);
return parts.join('\\n');
"""
)
_IMAGES = (
    _ALL
    + """
return all(document, []).filter(el => el.tagName === 'IMG' && shown(el)).map(el => ({
  src: el.currentSrc || el.src, complete: el.complete, width: el.naturalWidth}));
"""
)


def start_browser(language: str = "en-US") -> webdriver.Chrome:
    """Start headless Chromium that can reach 127.0.0.1 only, logging network requests."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--force-device-scale-factor=1",
        f"--lang={language}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=MediaRouter,OptimizationHints,Translate",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait[T](what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    """Return probe()'s first truthy value, polled 4 times a second (CheckFailed on timeout)."""
    value: T = poll(what, probe, timeout, interval=0.25)
    return value


def find(driver: webdriver.Chrome, css: str, text: str | None = None) -> list[WebElement]:
    """Return the shown elements matching ``css`` (and with exactly ``text``), shadow DOM too."""
    return list(driver.execute_script(_FIND, css, text))


def find_one(
    driver: webdriver.Chrome, css: str, text: str | None = None, timeout: float = 30
) -> WebElement:
    """Wait for a shown element matching ``css`` (and ``text``) and return the first."""
    label = f"{css}" + (f" with text {text!r}" if text is not None else "")
    return wait(f"no {label} on {driver.current_url}", lambda: find(driver, css, text), timeout)[0]


def click(driver: webdriver.Chrome, css: str, text: str | None = None, timeout: float = 30) -> None:
    """Click the first shown element matching ``css`` (and ``text``)."""
    element = find_one(driver, css, text, timeout)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    driver.execute_script("arguments[0].click()", element)


def page_text(driver: webdriver.Chrome) -> str:
    """Return the text the user sees (and labels), shadow roots included."""
    return str(driver.execute_script(_TEXT))


def images(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Return the shown images: src, whether loading ended, natural width (0: broken)."""
    return list(driver.execute_script(_IMAGES))


def requests(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Return the network requests since the last call: url and error text (if it failed)."""
    sent: dict[str, dict[str, Any]] = {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = {"url": params["request"]["url"], "error": None}
        elif message["method"] == "Network.loadingFailed" and params["requestId"] in sent:
            sent[params["requestId"]]["error"] = params.get("errorText", "failed")
    return list(sent.values())


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """Save the browser window as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))


def wait_text(driver: webdriver.Chrome, text: str, timeout: float = 30) -> str:
    """Wait until the page shows ``text``; return the page's text."""

    def probe() -> str | None:
        shown = page_text(driver)
        return shown if text in shown else None

    return wait(f"{text!r} not shown on {driver.current_url}", probe, timeout)
