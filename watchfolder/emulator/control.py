"""The loopback control endpoint under ``/_emulator/``: the Python test API, in JSON, for other processes
(a daemon under test, a benchmark, a shell script with curl)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import Any

from watchfolder.emulator.accounts import User
from watchfolder.emulator.envelope import JSON_TYPE, Response
from watchfolder.emulator.state import EmulatorState

PREFIX = "/_emulator/"


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle(emu: EmulatorState, method: str, path: str, body: bytes, client_host: str) -> Response:
    """Given a request under ``/_emulator/``, do what it asks and return a JSON answer.

    Only loopback clients are served (403 otherwise); a bad argument is 400, an unknown path 404.
    """
    try:
        if not ipaddress.ip_address(client_host.split("%")[0]).is_loopback:
            raise ControlError(403, "the control endpoint answers loopback clients only")
        result = dispatch(emu, method, path[len(PREFIX):].strip("/"), parse(body))
        return reply(200, result)
    except ControlError as error:
        return reply(error.status, {"error": str(error)})
    except (ValueError, KeyError, TypeError) as error:
        return reply(400, {"error": f"{type(error).__name__}: {error}"})


def dispatch(emu: EmulatorState, method: str, action: str, args: dict[str, Any]) -> Any:
    """Run one control action; return what to answer with."""
    if (method, action) == ("GET", "records"):
        return emu.records.as_json()
    if (method, action) in (("GET", ""), ("GET", "health")):
        return {"ok": True, "base_url": emu.base_url, "now": emu.clock.now()}
    if (method, action) == ("GET", "clock"):
        return {"now": emu.clock.now()}
    if (method, action) == ("POST", "clock/advance"):
        return {"now": emu.clock.advance(float(args["seconds"]))}
    if (method, action) == ("POST", "faults"):
        if "fail_reason" in args:
            emu.faults.fail_next_publish(str(args["fail_reason"]), int(args.get("n", 1)))
        else:
            emu.faults.fail_next(str(args["endpoint"]), int(args.get("n", 1)), str(args.get("kind", "5xx")),
                                 error_code=args.get("error_code"), delay=float(args.get("delay", 2.0)),
                                 status=int(args.get("status", 500)))
        return {"pending": emu.faults.pending()}
    if (method, action) in (("DELETE", "faults"), ("POST", "faults/clear")):
        emu.faults.clear()
        return {"pending": {}}
    if (method, action) == ("POST", "users"):
        user = emu.add_user(
            str(args["name"]), scopes=tuple(args.get("scopes", ("user.info.basic", "video.upload", "video.publish"))),
            private_account=bool(args.get("private_account", False)),
            privacy_level_options=args.get("privacy_level_options"),
            max_video_post_duration_sec=int(args.get("max_video_post_duration_sec", 600)),
            access_ttl=args.get("access_ttl"), refresh_ttl=args.get("refresh_ttl"))
        return user_json(user)
    if (method, action) == ("GET", "users"):
        with emu.lock:
            return [user_json(user) for user in emu.accounts.users.values()]
    if (method, action) == ("POST", "tokens/expire"):
        target = args.get("token") or args.get("open_id")
        if not target:
            raise ControlError(400, "give token or open_id")
        return {"expired": emu.expire_access_token(str(target))}
    if (method, action) == ("POST", "tokens/revoke"):
        emu.revoke(str(args["open_id"]))
        return {"revoked": args["open_id"]}
    if (method, action) == ("POST", "uploads/expire"):
        emu.expire_upload_url(str(args["publish_id"]))
        return {"expired": args["publish_id"]}
    raise ControlError(404, f"no control action {method} {PREFIX}{action}")


def user_json(user: User) -> dict[str, Any]:
    data = dataclasses.asdict(user)
    data["scopes"] = list(user.scopes)
    data["privacy_level_options"] = list(user.privacy_level_options)
    return data


def parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise ControlError(400, "the body must be JSON") from None
    if not isinstance(value, dict):
        raise ControlError(400, "the body must be a JSON object")
    return value


def reply(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode("utf-8"), [("Content-Type", JSON_TYPE)])
