"""Run by scripts/develop in the background: make a fresh dev instance usable, then say so.

1. wait for the API; 2. create the owner (onboarding user step) or log in if it exists;
3. wait until Home Assistant is RUNNING, and confirm the http settings (2026.10 moves them
from YAML into storage as a trial that reverts itself after 5 minutes unless confirmed);
4. create the local_file camera if missing;
5. make the Assist pipeline "Compact AI" (our speech-to-text and wake word) the preferred one;
6. print the banner line that scripts/check_develop.py (and the developer) wait for.

The other onboarding steps (core_config, analytics, integration) are pre-marked done by
scripts/develop in config/.storage/onboarding: finishing core_config over the API would set up
met, radio_browser, google_translate and shopping_list, which reach the internet.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ha_api import PASSWORD, USERNAME, HAError, HomeAssistant


def main() -> int:
    """Prepare the instance; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--photo", required=True, help="absolute path of the camera's picture")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--ha-pid", type=int, help="give up as soon as this process is gone")
    args = parser.parse_args()

    def alive() -> bool:
        if args.ha_pid is None:
            return True
        try:
            os.kill(args.ha_pid, 0)
        except ProcessLookupError:
            return False
        return True

    started = time.monotonic()
    ha = HomeAssistant(args.url)
    try:
        ha.wait_until_answers(args.timeout, alive)
        if ha.onboarding_pending():
            ha.create_owner()
            print(f"scripts/develop: created the owner user {USERNAME!r}", flush=True)
        else:
            ha.login()
        ha.wait_running(args.timeout)
        if ha.confirm_http_config():
            print("scripts/develop: confirmed the http settings of configuration.yaml", flush=True)
        ha.ensure_local_file_camera(args.photo)
        ha.ensure_assist_pipeline()
    except (HAError, OSError) as err:
        print(
            f"scripts/develop: could not prepare the dev instance: {err}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    print(f"scripts/develop: ready {time.monotonic() - started:.0f} s after start", flush=True)
    print(
        f"Compact AI dev instance: {args.url} (user {USERNAME} / password {PASSWORD})", flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
