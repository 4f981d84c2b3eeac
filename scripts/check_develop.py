#!/usr/bin/env python3
"""Check that scripts/develop gives a working Home Assistant with Compact AI in it.

    .venv/bin/python scripts/check_develop.py                 # throwaway instance, then stop it
    .venv/bin/python scripts/check_develop.py --attach        # use the instance already running

By default it runs scripts/develop in the background with a fresh config folder in /tmp (so the
developer's config/ is left alone and the fresh-machine path — onboarding, camera creation —
is what gets checked), waits for its "Compact AI dev instance" line, then over the REST API:
logs in as dev/dev; fetches the camera's picture; unlocks the template lock and sees the
input_boolean follow; sets up Compact AI through its config flow; finds the entry's sensors;
finds the preferred Assist pipeline using Compact AI's speech-to-text and wake word entities.
No log line may speak of `via_device` (a device linked to one not registered yet).
It stops the instance (SIGTERM to its process group) and exits non-zero on the first failure.
With --attach an existing Compact AI entry is removed first (the integration allows one).
Only loopback addresses are contacted. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts" / "dev_config"))

from ha_api import (  # noqa: E402
    PASSWORD,
    STT_ENTITY,
    USERNAME,
    WAKE_WORD_ENTITY,
    HAError,
    HomeAssistant,
)

CAMERA = "camera.front_door"
LOCK = "lock.front_door"
LOCK_SWITCH = "input_boolean.front_door_locked"
BANNER = "Compact AI dev instance: "
BACKENDS = {"onnxruntime", "ncnn"}
# Seconds for scripts/setup on a fresh machine (pip installs), then for Home Assistant to start.
SETUP_TIMEOUT = 1200


class CheckFailed(RuntimeError):
    """One of the checks did not pass."""


def step(message: str) -> None:
    """Print one line of progress."""
    print(f"check_develop: {message}", flush=True)


def poll(what: str, probe: Any, timeout: float = 30, interval: float = 0.5) -> Any:
    """Call probe() until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} (waited {timeout:.0f} s)")
        time.sleep(interval)


class Instance:
    """scripts/develop running in the background in its own process group.

    ``prefix`` runs it through another command, e.g. ``scripts/latest run`` (Home Assistant of
    the Python 3.14 root; its config folder is then a path inside that root).
    """

    def __init__(self, port: int, workdir: Path, prefix: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.config = workdir / "config"
        self.output = workdir / "develop.out"
        env = {
            **os.environ,
            "COMPACT_AI_DEV_CONFIG": str(self.config),
            "COMPACT_AI_DEV_PORT": str(port),
        }
        self.started = time.monotonic()
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [*prefix, str(REPO / "scripts" / "develop")],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        """Return what scripts/develop printed so far."""
        return self.output.read_text(errors="replace")

    def wait_for(self, marker: str, timeout: float) -> float:
        """Wait for a line of scripts/develop's output; return the seconds it took."""
        since = time.monotonic()
        while marker not in self.text():
            if self.proc.poll() is not None:
                raise CheckFailed(
                    f"scripts/develop exited with code {self.proc.returncode} before printing "
                    f"{marker.strip()!r}; its output:\n{self.tail()}"
                )
            if "could not prepare the dev instance" in self.text():
                raise CheckFailed(f"scripts/develop could not prepare the instance:\n{self.tail()}")
            if time.monotonic() - since > timeout:
                raise CheckFailed(f"no {marker.strip()!r} within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.5)
        return time.monotonic() - since

    def tail(self, lines: int = 30) -> str:
        """Return the last lines scripts/develop printed."""
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the process group; scripts/develop then stops Home Assistant gracefully."""
        if self.proc.poll() is not None:
            return
        since = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            step("Home Assistant did not stop within 90 s: killing it")
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=30)
        step(f"stopped scripts/develop in {time.monotonic() - since:.0f} s (exit code {code})")


def check_port_free(ha: HomeAssistant, url: str) -> None:
    """Refuse to start when another instance already answers on the port."""
    if ha.answers():
        raise CheckFailed(f"{url} is already taken: stop that instance or use --attach / --port")


def check_banner(instance: Instance, url: str) -> None:
    """Check that the start banner names the URL and the login."""
    banner = next(line for line in instance.text().splitlines() if BANNER in line)
    expected = f"{BANNER}{url} (user {USERNAME} / password {PASSWORD})"
    if banner.strip() != expected:
        raise CheckFailed(f"banner is {banner!r}, expected {expected!r}")


def check_onboarding(ha: HomeAssistant) -> None:
    """Check onboarding is finished: /api/onboarding is gone (404) once all steps are done."""
    status, raw, _ = ha.request("GET", "/api/onboarding", auth=False)
    if status != 404 and not (status == 200 and all(s["done"] for s in json.loads(raw))):
        raise CheckFailed(f"onboarding is not finished: /api/onboarding answered {status} {raw!r}")
    step("OK onboarding finished")


def check_frontend(ha: HomeAssistant) -> None:
    """Check that the frontend's page and config/www are served."""
    status, body, content_type = ha.request("GET", "/", auth=False)
    if status != 200 or "text/html" not in content_type or b"<html" not in body.lower():
        raise CheckFailed(f"GET / answered {status} {content_type!r}, not the frontend's page")
    status, body, _ = ha.request("GET", "/local/astronaut.png", auth=False)
    if status != 200 or not body.startswith(b"\x89PNG"):
        raise CheckFailed(f"GET /local/astronaut.png (config/www) answered {status}")
    step("OK frontend page and /local/astronaut.png served")


def check_camera(ha: HomeAssistant) -> None:
    """Check that the local_file camera exists and its proxy sends a PNG or JPEG."""
    state = poll(f"{CAMERA} does not exist", lambda: ha.state(CAMERA))
    if state["state"] == "unavailable":
        raise CheckFailed(f"{CAMERA} is unavailable")
    status, body, content_type = ha.request("GET", f"/api/camera_proxy/{CAMERA}")
    if status != 200:
        raise CheckFailed(f"GET /api/camera_proxy/{CAMERA} answered {status}: {body[:200]!r}")
    kinds = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
    magic = kinds.get(content_type.split(";")[0].strip())
    if magic is None or not body.startswith(magic):
        raise CheckFailed(f"{CAMERA} sent {len(body)} bytes of {content_type!r}, not a PNG or JPEG")
    step(f"OK {CAMERA}: {content_type}, {len(body)} bytes")


def check_lock(ha: HomeAssistant) -> None:
    """Check that the template lock follows lock/unlock and flips its input_boolean."""
    poll(f"{LOCK} does not exist", lambda: ha.state(LOCK))

    def state_of(entity_id: str) -> str | None:
        state = ha.state(entity_id)
        return None if state is None else str(state["state"])

    def call_and_wait(service: str, lock_state: str, switch_state: str) -> None:
        ha.json("POST", f"/api/services/lock/{service}", {"entity_id": LOCK})
        poll(
            f"after lock.{service}, {LOCK_SWITCH} is not {switch_state} or {LOCK} not {lock_state}",
            lambda: state_of(LOCK_SWITCH) == switch_state and state_of(LOCK) == lock_state,
            timeout=15,
        )

    call_and_wait("lock", "locked", "on")
    call_and_wait("unlock", "unlocked", "off")
    step(f"OK {LOCK}: lock.unlock turned {LOCK_SWITCH} off")
    call_and_wait("lock", "locked", "on")


def check_compact_ai(ha: HomeAssistant, attach: bool) -> None:
    """Compact AI's config flow creates an entry that loads and makes its sensors."""
    for entry in ha.entries("compact_ai"):
        if not attach:
            raise CheckFailed(f"a fresh instance already has a compact_ai entry: {entry}")
        step(f"removing the existing Compact AI entry {entry['entry_id']} (--attach)")
        ha.json("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")

    form = ha.start_flow("compact_ai")
    if form.get("type") != "form" or form.get("step_id") != "user":
        raise CheckFailed(f"the compact_ai flow did not show the user form: {form}")
    fields = {field["name"] for field in form.get("data_schema", [])}
    if not {"tier", "cameras"} <= fields:
        raise CheckFailed(f"the compact_ai form lacks tier/cameras: {sorted(fields)}")
    result = ha.continue_flow(form["flow_id"], {"tier": "balanced", "cameras": [CAMERA]})
    if result.get("type") == "form" and result.get("step_id") == "scan":
        # What starts a scan: the demo camera's device has no sensor, so none (every 4 s).
        result = ha.continue_flow(form["flow_id"], {})
    if result.get("type") != "create_entry":
        raise CheckFailed(f"submitting the compact_ai form did not create an entry: {result}")
    entry_id = result["result"]["entry_id"]

    def loaded() -> bool:
        entry = next((e for e in ha.entries("compact_ai") if e["entry_id"] == entry_id), None)
        if entry is None:
            raise CheckFailed(f"compact_ai entry {entry_id} is gone")
        if entry["state"] in ("setup_error", "migration_error", "failed_unload"):
            raise CheckFailed(f"compact_ai entry did not load: {entry}")
        return bool(entry["state"] == "loaded")

    poll("the compact_ai entry did not load", loaded, timeout=60)
    step(f"OK compact_ai config flow: steps 'user' and 'scan', entry {entry_id} loaded")

    def sensors() -> dict[str, str]:
        return {
            s["entity_id"]: s["state"]
            for s in ha.states()
            if s["entity_id"].startswith("sensor.compact_ai")
        }

    found = poll("Compact AI made no sensor.compact_ai* entity", sensors, timeout=30)
    step(f"    sensors: {found}")
    backend = found.get("sensor.compact_ai_inference_backend")
    if backend not in BACKENDS:
        raise CheckFailed(
            f"sensor.compact_ai_inference_backend is {backend!r}, "
            f"expected one of {sorted(BACKENDS)}"
        )
    if "balanced" not in found.values():
        raise CheckFailed("no Compact AI sensor shows the chosen tier 'balanced'")
    step(f"OK sensor.compact_ai_inference_backend = {backend}")


def check_assist(ha: HomeAssistant) -> None:
    """Check that the preferred Assist pipeline uses our speech-to-text and wake word."""
    pipelines = ha.ws({"type": "assist_pipeline/pipeline/list"})
    preferred = next(
        (p for p in pipelines["pipelines"] if p["id"] == pipelines["preferred_pipeline"]), None
    )
    if preferred is None:
        raise CheckFailed(f"no preferred Assist pipeline: {pipelines}")
    used = (preferred["stt_engine"], preferred["wake_word_entity"])
    if used != (STT_ENTITY, WAKE_WORD_ENTITY):
        raise CheckFailed(f"the preferred Assist pipeline uses {used}, not Compact AI's")
    for entity_id in used:
        state = poll(f"{entity_id} does not exist", lambda e=entity_id: ha.state(e))
        if state["state"] == "unavailable":
            raise CheckFailed(f"{entity_id} is unavailable")
    step(f"OK Assist pipeline {preferred['name']!r} (preferred): {used[0]}, {used[1]}")


def log_lines(config: Path, marker: str) -> list[str]:
    """Return the lines of the instance's home-assistant.log that contain ``marker``."""
    log = config / "home-assistant.log"
    if not log.exists():
        return []
    return [line for line in log.read_text(errors="replace").splitlines() if marker in line]


def log_errors(config: Path) -> list[str]:
    """Return the ERROR lines of the instance's home-assistant.log."""
    return log_lines(config, " ERROR ")


def main() -> int:
    """Run the checks; return the exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attach", action="store_true", help="check the instance already running")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--timeout", type=float, default=240, help="seconds for HA to come up")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway config folder")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    ha = HomeAssistant(url)

    instance: Instance | None = None
    workdir: Path | None = None
    ok = False
    try:
        if args.attach:
            ha.wait_until_answers(args.timeout)
        else:
            check_port_free(ha, url)
            workdir = Path(tempfile.mkdtemp(prefix="compact-ai-check-"))
            step(
                f"starting scripts/develop (config {workdir / 'config'}, "
                f"output {workdir / 'develop.out'})"
            )
            instance = Instance(args.port, workdir)
            instance.wait_for("scripts/develop: starting Home Assistant", SETUP_TIMEOUT)
            setup_s = time.monotonic() - instance.started
            start_s = instance.wait_for(BANNER, args.timeout)
            step(
                f"setup (scripts/setup and config/) took {setup_s:.0f} s; "
                f"Home Assistant was ready {start_s:.0f} s later"
            )
            check_banner(instance, url)
        ha.login()
        step(f"OK logged in to {url} as {USERNAME}/{PASSWORD}")
        ha.wait_running(args.timeout)
        check_onboarding(ha)
        check_frontend(ha)
        check_camera(ha)
        check_lock(ha)
        check_compact_ai(ha, args.attach)
        check_assist(ha)
        ok = True
    except (CheckFailed, HAError, OSError) as err:
        print(f"check_develop: FAILED: {err}", file=sys.stderr, flush=True)
    finally:
        if instance is not None:
            instance.stop()
            errors = log_errors(instance.config)
            step(f"{len(errors)} ERROR line(s) in {instance.config / 'home-assistant.log'}")
            for line in errors:
                print(f"    {line[:240]}", flush=True)
            compact_errors = [line for line in errors if "compact_ai" in line]
            if compact_errors and ok:
                print("check_develop: FAILED: Compact AI logged errors", file=sys.stderr)
                ok = False
            # A device linked to one that does not exist yet (camera devices come after the
            # service device they are linked to): Home Assistant says so in a log line.
            via = log_lines(instance.config, "via_device")
            step(f"{len(via)} line(s) about via_device in the log")
            if via and ok:
                print(f"check_develop: FAILED: {via[0][:240]}", file=sys.stderr)
                ok = False
        if workdir is not None:
            if ok and not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                step(f"kept {workdir} (develop.out, config/home-assistant.log)")
    step("PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
