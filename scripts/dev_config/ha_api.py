"""A tiny Home Assistant REST client for scripts/develop and scripts/check_develop.py.

Standard library only, loopback only. Not copied into config/: it is imported from here.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, cast

# The owner that scripts/develop creates on a fresh config/.
USERNAME = "dev"
PASSWORD = "dev"
PHOTO_NAME = "astronaut.png"
CAMERA_NAME = "Front door"
# The Assist pipeline scripts/develop makes: our speech-to-text and wake word entities.
PIPELINE_NAME = "Compact AI"
STT_ENTITY = "stt.compact_ai_commands"
WAKE_WORD_ENTITY = "wake_word.compact_ai_wake_phrases"


class HAError(RuntimeError):
    """A request that did not answer what was expected."""


def _check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise HAError(
            f"refusing to talk to {host!r}: these scripts only use the loopback interface"
        )


class HomeAssistant:
    """Talk to one Home Assistant instance over its REST API."""

    def __init__(self, base_url: str) -> None:
        _check_loopback(base_url)
        self.base_url = base_url.rstrip("/")
        self.client_id = self.base_url + "/"
        self.token: str | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        form: dict[str, str] | None = None,
        auth: bool = True,
        timeout: float = 30,
    ) -> tuple[int, bytes, str]:
        """Return (status, body, content type); HTTP errors are returned, not raised."""
        headers: dict[str, str] = {}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "")

    def json(
        self, method: str, path: str, body: Any = None, *, expect: int = 200, **kw: Any
    ) -> Any:
        """Send a request and return its JSON answer; raise HAError on another status."""
        status, raw, _ = self.request(method, path, body, **kw)
        if status != expect:
            raise HAError(f"{method} {path} answered {status} (expected {expect}): {raw[:500]!r}")
        return json.loads(raw) if raw else None

    def answers(self) -> bool:
        """Return whether the HTTP server is up (no auth needed).

        /auth/providers answers 200, or 400 `onboarding_required` until the owner exists.
        """
        try:
            status, _, _ = self.request("GET", "/auth/providers", auth=False, timeout=5)
        except OSError:
            return False
        return status in (200, 400)

    def wait_until_answers(self, timeout: float, alive: Any = None) -> None:
        """Poll until the HTTP server answers; `alive()` returning False aborts early."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if alive is not None and not alive():
                raise HAError("Home Assistant exited before its API answered")
            time.sleep(1)
        raise HAError(f"Home Assistant's API did not answer within {timeout:.0f} s")

    # -- auth ------------------------------------------------------------------------------
    def _exchange_code(self, code: str) -> None:
        tokens = self.json(
            "POST",
            "/auth/token",
            form={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            auth=False,
        )
        self.token = tokens["access_token"]

    def onboarding_pending(self) -> bool:
        """Return whether the owner user still has to be created."""
        status, raw, _ = self.request("GET", "/api/onboarding", auth=False)
        if status == 404:  # the onboarding views are only registered while onboarding
            return False
        if status != 200:
            raise HAError(f"GET /api/onboarding answered {status}: {raw[:300]!r}")
        steps = {step["step"]: step["done"] for step in json.loads(raw)}
        return not steps.get("user", True)

    def create_owner(self, username: str = USERNAME, password: str = PASSWORD) -> None:
        """Do onboarding's user step and log in with the auth code it returns."""
        answer = self.json(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": self.client_id,
                "name": username,
                "username": username,
                "password": password,
                "language": "en",
            },
            auth=False,
        )
        self._exchange_code(answer["auth_code"])

    def login(self, username: str = USERNAME, password: str = PASSWORD) -> None:
        """Log in through the login flow, as the frontend does."""
        flow = self.json(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
            auth=False,
        )
        result = self.json(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
            auth=False,
        )
        if result.get("type") != "create_entry":
            raise HAError(f"login as {username!r} failed: {result}")
        self._exchange_code(result["result"])

    # -- websocket API (for what has no REST endpoint) ------------------------------------------
    def ws(self, command: dict[str, Any], timeout: float = 30) -> Any:
        """Send one websocket command and return its result; raise HAError if it failed.

        A minimal RFC 6455 client (text frames, no extensions): one connection per command.
        """
        parts = urllib.parse.urlsplit(self.base_url)
        with socket.create_connection((parts.hostname, parts.port or 80), timeout) as sock:
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                (
                    f"GET /api/websocket HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            reader = sock.makefile("rb")
            status = reader.readline()
            if b" 101 " not in status:
                raise HAError(f"websocket upgrade answered {status!r}")
            while reader.readline() not in (b"\r\n", b""):
                pass

            def send(message: dict[str, Any]) -> None:
                data = json.dumps(message).encode()
                head = bytes([0x81])  # final text frame
                if len(data) < 126:
                    head += bytes([0x80 | len(data)])
                elif len(data) < 1 << 16:
                    head += bytes([0x80 | 126]) + struct.pack(">H", len(data))
                else:
                    head += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
                mask = os.urandom(4)
                sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

            def receive() -> dict[str, Any]:
                payload = b""
                while True:
                    first, second = reader.read(2)
                    length = second & 0x7F
                    if length == 126:
                        length = struct.unpack(">H", reader.read(2))[0]
                    elif length == 127:
                        length = struct.unpack(">Q", reader.read(8))[0]
                    payload += reader.read(length)
                    if first & 0x80:  # the final fragment
                        return cast(dict[str, Any], json.loads(payload))

            if receive().get("type") != "auth_required":
                raise HAError("the websocket API did not ask for authentication")
            send({"type": "auth", "access_token": self.token})
            if (answer := receive()).get("type") != "auth_ok":
                raise HAError(f"websocket authentication failed: {answer}")
            send({"id": 1, **command})
            while (answer := receive()).get("type") != "result":
                pass
        if not answer.get("success"):
            raise HAError(f"websocket {command['type']} failed: {answer.get('error')}")
        return answer.get("result")

    # -- helpers ---------------------------------------------------------------------------
    def wait_running(self, timeout: float) -> None:
        """Wait until Home Assistant has finished starting."""
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.json("GET", "/api/config").get("state", "?")
            if state == "RUNNING":
                return
            time.sleep(1)
        raise HAError(f"Home Assistant is still {state} after {timeout:.0f} s")

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """Return an entity's state object, None if it does not exist."""
        status, raw, _ = self.request("GET", f"/api/states/{entity_id}")
        if status == 404:
            return None
        if status != 200:
            raise HAError(f"GET /api/states/{entity_id} answered {status}: {raw[:300]!r}")
        return cast(dict[str, Any], json.loads(raw))

    def states(self) -> list[dict[str, Any]]:
        """Return all state objects."""
        return cast(list[dict[str, Any]], self.json("GET", "/api/states"))

    def entries(self, domain: str) -> list[dict[str, Any]]:
        """Return the config entries of a domain."""
        entries = self.json("GET", f"/api/config/config_entries/entry?domain={domain}")
        return cast(list[dict[str, Any]], entries)

    def start_flow(self, handler: str) -> dict[str, Any]:
        """Start a config flow, as Settings > Add integration does."""
        flow = self.json(
            "POST",
            "/api/config/config_entries/flow",
            {"handler": handler, "show_advanced_options": False},
        )
        return cast(dict[str, Any], flow)

    def continue_flow(self, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Submit a config flow's form."""
        result = self.json("POST", f"/api/config/config_entries/flow/{flow_id}", data)
        return cast(dict[str, Any], result)

    def ensure_local_file_camera(self, photo: str, name: str = CAMERA_NAME) -> None:
        """Make sure a loaded local_file entry shows `photo`.

        local_file has no YAML platform any more (config entries only), so the camera is made
        through its config flow, as a user would in Settings > Devices & services. The flow
        asks for a name up to Home Assistant 2026.10 and not from 2026.11 (the form says which:
        the name is sent only when the form has that field); an entry is ours when it has our
        title or is the only local_file entry (its title is Home Assistant's choice then).
        """
        entries = self.entries("local_file")
        ours = [e for e in entries if e["title"] == name] or (entries if len(entries) == 1 else [])
        for entry in ours:
            if entry["state"] == "loaded":
                return
            # e.g. setup_error because config/ was wiped: start again from the flow.
            self.json("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
        flow = self.start_flow("local_file")
        if flow.get("type") != "form":
            raise HAError(f"local_file flow did not show a form: {flow}")
        fields = {field.get("name") for field in flow.get("data_schema") or []}
        data = {"name": name, "file_path": photo} if "name" in fields else {"file_path": photo}
        result = self.continue_flow(flow["flow_id"], data)
        if result.get("type") != "create_entry":
            raise HAError(f"local_file flow did not create an entry: {result}")

    def ensure_assist_pipeline(self) -> str:
        """Make sure the preferred Assist pipeline uses our stt and wake word; return its id.

        It may be made before Compact AI is set up: a pipeline names entities by id, and these
        ids exist once the integration is added (Settings > Voice assistants lists it anyway).
        """
        pipelines = self.ws({"type": "assist_pipeline/pipeline/list"})
        ours = [p for p in pipelines["pipelines"] if p["name"] == PIPELINE_NAME]
        if ours:
            pipeline_id = str(ours[0]["id"])
        else:
            created = self.ws(
                {
                    "type": "assist_pipeline/pipeline/create",
                    "name": PIPELINE_NAME,
                    "language": "en",
                    "conversation_engine": "conversation.home_assistant",
                    "conversation_language": "en",
                    "stt_engine": STT_ENTITY,
                    "stt_language": "en",
                    "tts_engine": None,
                    "tts_language": None,
                    "tts_voice": None,
                    "wake_word_entity": WAKE_WORD_ENTITY,
                    "wake_word_id": None,  # any phrase of the command set wakes it
                }
            )
            pipeline_id = str(created["id"])
        if pipelines.get("preferred_pipeline") != pipeline_id:
            self.ws({"type": "assist_pipeline/pipeline/set_preferred", "pipeline_id": pipeline_id})
        return pipeline_id

    def confirm_http_config(self) -> bool:
        """Keep the http settings of configuration.yaml; return whether they needed confirming.

        From Home Assistant 2026.10 on, http settings move from YAML into storage as a trial
        that reverts itself (restarting Home Assistant on port 8123) unless confirmed within
        5 minutes, as the "Confirm new HTTP server configuration" dialog asks. 2026.2 has no
        such trial (and no such command).
        """
        try:
            config = self.ws({"type": "http/config"})
        except HAError as err:
            if "unknown_command" in str(err):
                return False
            raise
        if config.get("pending") is None or config.get("active_config_type") != "pending":
            return False
        self.ws({"type": "http/config/promote"})
        return True
