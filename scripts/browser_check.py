#!/usr/bin/env python3
"""Click through Compact AI in a real browser (Debian's Chromium), as a new user would.

    .venv/bin/python scripts/browser_check.py                # throwaway scripts/develop instance
    .venv/bin/python scripts/browser_check.py --attach       # the instance already running
    scripts/screens                                          # the same, README's screenshots

Against scripts/develop (a real Home Assistant on 127.0.0.1, like scripts/check_develop.py):
logs in on the login page; adds Compact AI from Settings > Add integration (the brand list, the
setup form with its tier table, a camera picked in the entity picker); enrolls Eileen from the
demo camera on Configure > People > Add a person and sees her listed there; turns the door on
in the options; runs the benchmark; switches the profile to Chinese (zh-Hans) and opens every
options page. Every page fails the run if it shows a raw translation key
(component.compact_ai.…), an error alert or toast, a broken image (other than the brands
CDN's, see below), or, in Chinese, an English text of ours. Screenshots go to docs/screens/
(--screens).

The browser reaches 127.0.0.1 only. Home Assistant 2026.2's frontend asks the brands CDN
(brands.home-assistant.io) for every integration icon; those requests fail here on purpose, and
for Compact AI the run checks that the icon was asked from there (where a home-assistant/brands
entry makes it appear); from 2026.3 on the frontend shows custom_components/compact_ai/brand/
from /api/brands/ instead, and such an image must load (docs/brand.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "scripts" / "dev_config"))

from browser import (  # noqa: E402
    BRANDS_CDN,
    click,
    find,
    find_one,
    images,
    page_text,
    requests,
    screenshot,
    start_browser,
    wait,
    wait_text,
)
from browser_forms import Forms, step  # noqa: E402
from check_develop import BANNER, SETUP_TIMEOUT, CheckFailed, Instance  # noqa: E402
from ha_api import CAMERA_NAME, PASSWORD, USERNAME, HAError, HomeAssistant  # noqa: E402
from page_checks import page_problems, strings  # noqa: E402

DOMAIN = "compact_ai"
CAMERA = "camera.front_door"
LOCK = "lock.front_door"
PERSON = "Eileen"
DOOR_EVENT = "event.compact_ai_door_unlock"
COG = "M12,8A4,4 0 0,1 16,12"  # the start of mdiCogOutline: the entry's Configure button
# Each options page and a text that only its form shows (not the menu or the loading dialog).
PAGE_MARKERS = {
    "settings": "options.step.settings.data.triggers",
    "people": "options.step.people.menu_options.add_person",
    "unlock": "options.step.unlock.data.people",
    "voice": "options.step.voice.data_description.phrases",  # the same without a synthesizer
    "benchmark": "每帧 1920×1080 画面耗时（毫秒）",  # the benchmark table's first row
}


class Run(Forms):
    """One browser session through Compact AI; every page it opens is checked."""

    def __init__(self, driver: WebDriver, ha: HomeAssistant, screens: Path) -> None:
        self.driver = driver
        self.ha = ha
        self.url = ha.base_url
        self.screens = screens
        self.language = "en"
        self.checked: list[str] = []

    def go(self, path: str) -> None:
        """Open a page of the frontend."""
        self.driver.get(self.url + path)

    def check_page(self, name: str, *, shot: bool = True) -> None:
        """Fail on what no page of ours may show; save the screenshot ``name``.png."""
        driver = self.driver
        time.sleep(0.5)  # let the last render settle
        alerts = [
            (alert.get_attribute("title") or "") + " " + (alert.text or "")
            for alert in find(driver, "ha-alert[alert-type=error], ha-toast")
        ]
        problems = page_problems(page_text(driver), images(driver), alerts, self.language)
        if shot:
            screenshot(driver, self.screens / f"{name}.png")
        if problems:
            screenshot(driver, self.screens / f"FAILED-{name}.png")
            raise CheckFailed(f"{name}: " + "; ".join(problems))
        self.checked.append(name)
        step(f"OK page {name}" + (f" (docs/screens/{name}.png)" if shot else ""))

    def login(self) -> None:
        """Log in on the login page, as dev/dev (the owner scripts/develop creates)."""
        self.go("/")
        find_one(self.driver, "input[name=username]").send_keys(USERNAME)
        find_one(self.driver, "input[name=password]").send_keys(PASSWORD)
        click(self.driver, "ha-button", "Log in")
        find_one(self.driver, "home-assistant-main")
        step(f"OK logged in as {USERNAME} on the login page")

    def add_integration(self) -> None:
        """Add Compact AI from Settings > Integrations > Add integration, with a camera."""
        driver = self.driver
        self.go("/config/integrations/dashboard")
        add = wait(  # a floating button on 2026.2, a plain one on 2026.10
            "no Add integration button",
            lambda: find(driver, "ha-fab") or find(driver, "ha-button", "Add integration"),
        )[0]
        driver.execute_script("arguments[0].click()", add)
        time.sleep(1.5)
        requests(driver)  # forget what came before
        self.type_keys("Compact")
        wait_text(driver, "Compact AI")
        time.sleep(1)
        self.check_brand("the add-integration list")
        self.check_page("add_integration", shot=False)
        click(driver, "*", "Compact AI")
        wait_text(driver, strings("en")["config.step.user.title"])
        self.pick_entity(0, CAMERA_NAME)
        self.check_page("setup_en")
        click(driver, "ha-button", "Submit")
        wait_text(driver, strings("en")["config.step.scan.title"], timeout=60)
        self.check_page("setup_scan_en")  # what starts a scan (none here: every 4 s)
        click(driver, "ha-button", "Submit")
        wait_text(driver, "Front door faces", timeout=60)  # the "Devices created" dialog
        self.check_brand("the devices-created dialog")
        self.check_page("setup_done", shot=False)
        click(driver, "ha-button", "Skip and finish")
        time.sleep(1)

    def check_brand(self, where: str) -> None:
        """Our icon: asked from the brands CDN (2026.2) or loaded from /api/brands/ (2026.3+)."""
        ours = {i["src"]: i for i in images(self.driver) if f"/{DOMAIN}/" in i["src"]}
        if not ours:
            raise CheckFailed(f"no Compact AI icon in {where}")
        sent = requests(self.driver)
        for image in ours.values():
            if image["src"].startswith(BRANDS_CDN):
                asked = [r for r in sent if r["url"] == image["src"]]
                if not asked or asked[-1]["error"] is None:
                    raise CheckFailed(f"{where}: {image['src']} was not asked and blocked: {asked}")
                step(f"OK {where}: icon asked from the brands CDN (blocked here on purpose)")
            elif image["width"] == 0:
                raise CheckFailed(f"{where}: our icon {image['src']} is broken")
            else:
                step(f"OK {where}: icon {image['src']} shown ({image['width']} px)")

    def enroll(self) -> None:
        """Configure > People > Add a person: Eileen from the demo camera, as a new user would."""
        driver = self.driver
        en = strings("en")
        self.open_options("people")  # nobody yet: the page says how to add someone
        click(driver, "*", en["options.step.people_empty.menu_options.add_person"])
        wait_text(driver, en["options.step.add_person.data_description.camera"])
        self.fill_text(0, PERSON)
        self.pick_entity(0, CAMERA_NAME)
        self.check_page("add_person_en")
        click(driver, "ha-button", "Submit")  # snapshots over a few seconds, then the result
        wait_text(driver, en["options.step.enroll_result.title"], timeout=120)
        self.check_page("enroll_en")
        click(driver, "ha-button", "Submit")  # no other photo: back to the people
        wait_text(driver, en["options.step.people.menu_options.add_faces"], timeout=60)
        wait_text(driver, PERSON)
        self.check_page("people_en")
        self.type_keys(Keys.ESCAPE)
        time.sleep(0.5)

    def open_options(self, page: str) -> None:
        """Open the entry's options (its cog button) and the menu page ``page``."""
        driver = self.driver
        self.go(f"/config/integrations/integration/{DOMAIN}")
        cog = wait(
            "no Configure button",
            lambda: [
                b
                for b in find(driver, "ha-icon-button")
                if (driver.execute_script("return arguments[0].path || ''", b)).startswith(COG)
            ],
        )[0]
        driver.execute_script("arguments[0].click()", cog)
        label = strings(self.language)[f"options.step.init.menu_options.{page}"]
        click(driver, "*", label)

    def turn_on_door(self) -> None:
        """Options > Door unlock: the lock, the camera, Eileen; saved."""
        driver = self.driver
        self.open_options("unlock")
        wait_text(driver, strings("en")["options.step.unlock.data.people"])
        self.turn_on(None)  # "Unlock the door by face", the first switch
        self.pick_entity(0, "Front door")  # the lock
        self.pick_entity(1, CAMERA_NAME)
        self.turn_on(PERSON)
        self.turn_on(None)  # still on after the pickers re-rendered the form
        self.check_page("door_en")
        click(driver, "ha-button", "Submit")
        wait_text(driver, "Options successfully saved", timeout=60)
        self.check_page("door_saved", shot=False)
        # The door event entity exists only while the door is on (lock, camera, people set).
        wait("the door is not on", lambda: self.ha.state(DOOR_EVENT), timeout=60)
        step(f"OK the door is on ({DOOR_EVENT} exists)")

    def benchmark(self) -> None:
        """Run Options > Benchmark and keep the tier."""
        driver = self.driver
        self.open_options("benchmark")
        wait_text(driver, "Time per 1080p frame (ms)", timeout=180)
        self.check_page("benchmark_en")
        click(driver, "ha-button", "Submit")
        time.sleep(2)

    def switch_to_chinese(self) -> None:
        """Set the profile's language to 简体中文 (zh-Hans), as the profile page's picker does.

        The picker fires hass-language-select, which the frontend's root element turns into
        the user's language (saved in the profile). The event is sent from the picker's row
        where one is shown, else from the root element, which handles it the same way (the
        profile page did not render in headless Chromium here on 2026.10).
        """
        driver = self.driver
        self.go("/profile/general")
        rows = find(driver, "ha-pick-language-row") or [find_one(driver, "home-assistant")]
        driver.execute_script(
            "arguments[0].dispatchEvent(new CustomEvent('hass-language-select',"
            " {detail: 'zh-Hans', bubbles: true, composed: true}))",
            rows[0],
        )
        self.language = "zh-Hans"
        wait_text(driver, "设置")  # the sidebar's "Settings"
        step(f"OK profile language switched to zh-Hans (from {rows[0].tag_name})")

    def chinese_options(self) -> None:
        """Open every options page in Chinese (each waited for by a text only it shows)."""
        zh = strings("zh-Hans")
        for page, marker in PAGE_MARKERS.items():
            self.open_options(page)
            wait_text(self.driver, zh.get(marker, marker), timeout=180)
            self.check_page(f"{page}_zh")
            self.type_keys(Keys.ESCAPE)
            time.sleep(0.5)


def reset_entry(ha: HomeAssistant) -> None:
    """--attach: remove an existing entry and person, so the run starts as a new user."""
    for entry in ha.entries(DOMAIN):
        if entry["state"] == "loaded":
            ha.request("POST", f"/api/services/{DOMAIN}/delete_person", {"name": PERSON})
        ha.json("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
        step(f"removed the existing Compact AI entry {entry['entry_id']} (--attach)")


def main() -> int:
    """Run the browser check; return the exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attach", action="store_true", help="use the instance already running")
    parser.add_argument("--port", type=int, default=8124)
    parser.add_argument("--timeout", type=float, default=240, help="seconds for HA to come up")
    parser.add_argument("--screens", type=Path, default=REPO / "docs" / "screens")
    parser.add_argument(
        "--latest",
        action="store_true",
        help="run Home Assistant of scripts/latest (the browser stays outside that root)",
    )
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    ha = HomeAssistant(url)
    started = time.monotonic()
    instance: Instance | None = None
    workdir: Path | None = None
    driver: WebDriver | None = None
    ok = False
    if not args.attach and ha.answers():
        print(f"browser_check: FAILED: {url} is taken: stop it, or --attach / --port", flush=True)
        return 1
    try:
        if not args.attach:
            workdir = Path(tempfile.mkdtemp(prefix="compact-ai-browser-"))
            step(f"starting scripts/develop (config {workdir / 'config'})")
            prefix = (str(REPO / "scripts" / "latest"), "run") if args.latest else ()
            instance = Instance(args.port, workdir, prefix)
            instance.wait_for("scripts/develop: starting Home Assistant", SETUP_TIMEOUT)
            instance.wait_for(BANNER, args.timeout)
        ha.wait_until_answers(args.timeout)
        ha.login()
        ha.wait_running(args.timeout)
        if args.attach:
            reset_entry(ha)
        driver = start_browser()
        run = Run(driver, ha, args.screens)
        run.login()
        run.add_integration()
        run.enroll()
        run.turn_on_door()
        run.benchmark()
        run.switch_to_chinese()
        run.chinese_options()
        ok = True
    except (CheckFailed, HAError, AssertionError, OSError) as err:
        print(f"browser_check: FAILED: {err}", file=sys.stderr, flush=True)
        if driver is not None:
            screenshot(driver, args.screens / "FAILED-last.png")
            print(f"browser_check: screenshot {args.screens / 'FAILED-last.png'}", flush=True)
    finally:
        if driver is not None:
            driver.quit()
        if instance is not None:
            instance.stop()
        if workdir is not None and ok:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir is not None:
            step(f"kept {workdir} (develop.out, config/home-assistant.log)")
    step(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
