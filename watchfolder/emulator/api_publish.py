"""The Content Posting API endpoints under ``/v2/post/publish/`` (reference §1.1–§1.6, §5).

Each handler takes the emulator's state and a Request and returns a Response, or raises ApiError, which the
server turns into the envelope with the status documented for that code.
"""

from __future__ import annotations

from typing import Any

from watchfolder.emulator import pull, validate
from watchfolder.emulator.accounts import AccessToken, User
from watchfolder.emulator.envelope import ApiError, Response, envelope, error_envelope
from watchfolder.emulator.publishes import FAILED, PUBLISH_COMPLETE, Publish, status_at, status_data
from watchfolder.emulator.request import Request
from watchfolder.emulator.state import EmulatorState

DAY = 86400.0
UPLOAD_SCOPE = "video.upload"
PUBLISH_SCOPE = "video.publish"


def authorize(emu: EmulatorState, req: Request, endpoint: str, scopes: tuple[str, ...] | None) -> AccessToken:
    """Return the request's valid access token after the per-token rate limit of ``endpoint`` counted it.

    Raise 401 ``access_token_invalid`` (missing, unknown, expired, revoked), 401 ``scope_not_authorized``
    (none of ``scopes`` granted; None skips the check) or 429 ``rate_limit_exceeded``.
    """
    header = req.headers.get("Authorization") or ""
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    now = emu.clock.now()
    with emu.lock:
        access = emu.accounts.valid_access(token, now) if token else None
    if access is None:
        raise ApiError(401, "access_token_invalid", "The access token is invalid or not found in the request.")
    if scopes is not None:
        require_scope(access, scopes)
    if not emu.limiter.allow(token, endpoint, now):
        raise ApiError(429, "rate_limit_exceeded", "The API rate limit was exceeded. Please try again later.")
    return access


def require_scope(access: AccessToken, scopes: tuple[str, ...]) -> None:
    """Raise 401 ``scope_not_authorized`` unless the token holds one of ``scopes``."""
    if not set(scopes) & set(access.scopes):
        raise ApiError(401, "scope_not_authorized",
                       "The user did not authorize the scope required for completing this request.")


def creator_info(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/post/publish/creator_info/query/``: the creator's posting options, or a cap (HTTP 200)."""
    access = authorize(emu, req, "creator_info", (PUBLISH_SCOPE,))
    with emu.lock:
        user = emu.accounts.users[access.open_id]
        refusal = direct_refusal(emu, user, emu.clock.now())
    if refusal:
        # Intentional: creator_info says "cannot post now" with HTTP 200 (reference §1.1).
        return error_envelope(emu.config, req.log_id, 200, refusal[0], refusal[1], open_id=user.open_id)
    data = {
        "creator_avatar_url": f"https://p16-sign.tiktokcdn-us.com/emulator/{user.union_id}.jpeg",
        "creator_username": user.name,
        "creator_nickname": user.display_name,
        "privacy_level_options": list(user.privacy_level_options),
        "comment_disabled": user.comment_disabled,
        "duet_disabled": user.duet_disabled,
        "stitch_disabled": user.stitch_disabled,
        "max_video_post_duration_sec": user.max_video_post_duration_sec,
    }
    return envelope(data, req.log_id, open_id=user.open_id)


def video_init(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/post/publish/video/init/``: start a Direct Post video."""
    config = emu.config
    access = authorize(emu, req, "video_init", (PUBLISH_SCOPE,))
    body = validate.json_object(req.body, config)
    validate.check_known(body, ("post_info", "source_info"), "the request", config)
    post_info = validate.member(body, "post_info", config)
    source_info = validate.member(body, "source_info", config)
    validate.check_known(post_info, validate.VIDEO_POST_INFO, "post_info", config)
    check_video_post_info(post_info, config)
    source = validate.video_source(source_info, config)
    with emu.lock:
        user = emu.accounts.users[access.open_id]
        check_direct(emu, user, post_info, emu.clock.now())
    publish = new_publish(
        emu, open_id=user.open_id, kind="video", mode="direct", source=source.source, post_info=post_info,
        privacy_level=post_info.get("privacy_level"), declared_size=source.video_size,
        chunk_size=source.chunk_size, total_chunk_count=source.total_chunk_count, video_url=source.video_url)
    return envelope(init_data(emu, req, publish), req.log_id, open_id=user.open_id,
                    publish_id=publish.publish_id)


def inbox_init(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/post/publish/inbox/video/init/``: upload a video as a draft to the creator's inbox.

    A ``post_info`` is not documented here; it is recorded and otherwise ignored (``inbox_post_info``).
    """
    config = emu.config
    access = authorize(emu, req, "inbox_init", (UPLOAD_SCOPE,))
    body = validate.json_object(req.body, config)
    validate.check_known(body, ("post_info", "source_info"), "the request", config)
    if "post_info" in body and config.inbox_post_info == "reject":
        raise validate.bad(config, "post_info is not a field of inbox video init")
    post_info = validate.member(body, "post_info", config, required=False)
    source = validate.video_source(validate.member(body, "source_info", config), config)
    with emu.lock:
        user = emu.accounts.users[access.open_id]
        check_inbox(emu, user, emu.clock.now())
    publish = new_publish(
        emu, open_id=user.open_id, kind="video", mode="inbox", source=source.source, post_info=post_info,
        declared_size=source.video_size, chunk_size=source.chunk_size,
        total_chunk_count=source.total_chunk_count, video_url=source.video_url)
    return envelope(init_data(emu, req, publish), req.log_id, open_id=user.open_id,
                    publish_id=publish.publish_id)


def content_init(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/post/publish/content/init/``: a photo post, DIRECT_POST or MEDIA_UPLOAD (inbox)."""
    config = emu.config
    access = authorize(emu, req, "content_init", None)
    body = validate.json_object(req.body, config)
    validate.check_known(body, ("media_type", "post_mode", "post_info", "source_info", "is_aigc"),
                         "the request", config)
    if body.get("media_type") != "PHOTO":
        raise validate.bad(config, "media_type must be PHOTO")
    post_mode = body.get("post_mode")
    if post_mode not in ("DIRECT_POST", "MEDIA_UPLOAD"):
        raise validate.bad(config, "post_mode must be DIRECT_POST or MEDIA_UPLOAD")
    direct = post_mode == "DIRECT_POST"
    require_scope(access, (PUBLISH_SCOPE,) if direct else (UPLOAD_SCOPE,))
    validate.check_types(body, config, bools=("is_aigc",))
    post_info = validate.member(body, "post_info", config)
    validate.check_known(post_info, validate.PHOTO_POST_INFO, "post_info", config)
    validate.check_types(post_info, config, strings=("title", "description", "privacy_level"),
                         bools=("disable_comment", "auto_add_music", "brand_content_toggle",
                                "brand_organic_toggle", "is_aigc"))
    validate.check_text(post_info, "title", validate.MAX_PHOTO_TITLE, config)
    validate.check_text(post_info, "description", validate.MAX_PHOTO_DESCRIPTION, config)
    if direct:
        validate.check_brand(post_info, config)
    urls, cover = validate.photo_source(validate.member(body, "source_info", config), config)
    with emu.lock:
        user = emu.accounts.users[access.open_id]
        if direct:
            check_direct(emu, user, post_info, emu.clock.now())
        else:
            check_inbox(emu, user, emu.clock.now())
    recorded = dict(post_info, is_aigc=body["is_aigc"]) if "is_aigc" in body else post_info
    publish = new_publish(
        emu, open_id=user.open_id, kind="photo", mode="direct" if direct else "inbox", source="PULL_FROM_URL",
        post_info=recorded, privacy_level=post_info.get("privacy_level") if direct else None,
        photo_urls=urls, photo_cover_index=cover, photo_sha256s=[None] * len(urls))
    return envelope({"publish_id": publish.publish_id}, req.log_id, open_id=user.open_id,
                    publish_id=publish.publish_id)


def status_fetch(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/post/publish/status/fetch/``: where a publish task stands."""
    access = authorize(emu, req, "status", (UPLOAD_SCOPE, PUBLISH_SCOPE))
    with emu.lock:
        publish = owned_publish(emu, req, access)
        data = status_data(publish, emu.clock.now(), emu.config)
    return envelope(data, req.log_id, open_id=access.open_id, publish_id=publish.publish_id)


def cancel(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/post/publish/cancel/``: stop a PULL_FROM_URL download that has not finished.

    Raise 400 ``publish_not_cancellable`` once the bytes are in, the task is final, or it is a
    FILE_UPLOAD task (unless ``cancel_file_upload``).
    """
    access = authorize(emu, req, "cancel", (UPLOAD_SCOPE, PUBLISH_SCOPE))
    with emu.lock:
        publish = owned_publish(emu, req, access)
        now = emu.clock.now()
        file_upload = publish.source == "FILE_UPLOAD"
        if (file_upload and not emu.config.cancel_file_upload) or publish.transfer_done_at is not None \
                or status_at(publish, now, emu.config)[0] == FAILED:
            raise ApiError(400, "publish_not_cancellable", "The publish task can no longer be cancelled")
        publish.fail_now("publish_cancelled", now)
    return envelope(None, req.log_id, open_id=access.open_id, publish_id=publish.publish_id)


# Helpers shared by the handlers above. The callers hold the emulator's lock.

def new_publish(emu: EmulatorState, **fields: Any) -> Publish:
    """Register a publish task (see ``EmulatorState.new_publish``) and start its download if it is a
    PULL_FROM_URL task. The caller does not hold the lock."""
    publish = emu.new_publish(**fields)
    if publish.source == "PULL_FROM_URL":
        pull.start(emu, publish)
    return publish


def check_video_post_info(post_info: dict[str, Any], config: Any) -> None:
    validate.check_types(post_info, config, strings=("title", "privacy_level"),
                         bools=("disable_duet", "disable_stitch", "disable_comment", "brand_content_toggle",
                                "brand_organic_toggle", "is_aigc"),
                         ints=("video_cover_timestamp_ms",))
    validate.check_text(post_info, "title", validate.MAX_VIDEO_TITLE, config)
    validate.check_brand(post_info, config)


def init_data(emu: EmulatorState, req: Request, publish: Publish) -> dict[str, Any]:
    """Return an init's ``data``: the publish_id, and for FILE_UPLOAD the opaque upload_url."""
    data: dict[str, Any] = {"publish_id": publish.publish_id}
    if publish.source == "FILE_UPLOAD":
        base = emu.config.upload_base_url or f"http://{req.headers.get('Host') or req.server_host}"
        data["upload_url"] = (f"{base.rstrip('/')}/video/?upload_id={publish.upload_id}"
                              f"&upload_token={publish.upload_token}")
    return data


def owned_publish(emu: EmulatorState, req: Request, access: AccessToken) -> Publish:
    """Return the task named by the body's ``publish_id`` if the token's user owns it.

    Raise 400 ``invalid_publish_id`` or ``token_not_authorized_for_specified_publish_id``.
    """
    body = validate.json_object(req.body, emu.config)
    wanted = body.get("publish_id")
    publish = emu.publishes.get(wanted) if isinstance(wanted, str) else None
    if publish is None:
        raise ApiError(400, "invalid_publish_id", "The publish_id does not exist")
    if publish.open_id != access.open_id:
        raise ApiError(400, "token_not_authorized_for_specified_publish_id",
                       "The access token is not authorized for the specified publish_id")
    return publish


def direct_refusal(emu: EmulatorState, user: User, now: float) -> tuple[str, str] | None:
    """Return (code, message) if ``user`` may not Direct Post now (ban, active-user cap, daily cap)."""
    config = emu.config
    if user.banned:
        return "spam_risk_user_banned_from_posting", "The user is banned from posting"
    cap = config.active_user_cap
    if config.unaudited:
        cap = min(cap, config.unaudited_user_cap) if cap else config.unaudited_user_cap
    recent = [p for p in emu.publishes.values() if p.mode == "direct" and p.created_at > now - DAY]
    active = {p.open_id for p in recent}
    if cap and user.open_id not in active and len(active) >= cap:
        return "reached_active_user_cap", "The app reached its daily quota of active publishing users"
    mine = sum(1 for p in recent if p.open_id == user.open_id)
    if config.direct_post_daily_cap and mine >= config.direct_post_daily_cap:
        return "spam_risk_too_many_posts", "The user reached the daily cap of API posts"
    return None


def check_direct(emu: EmulatorState, user: User, post_info: dict[str, Any], now: float) -> None:
    """Raise the 403 a Direct Post init gets for a cap, an unaudited app, or a privacy level not offered."""
    refusal = direct_refusal(emu, user, now)
    if refusal:
        raise ApiError(403, *refusal)
    privacy = post_info.get("privacy_level")
    if emu.config.unaudited:
        if not user.private_account:
            raise ApiError(403, "unaudited_client_can_only_post_to_private_accounts",
                           "Unaudited clients can only post to private accounts")
        if privacy is not None and privacy != "SELF_ONLY":
            raise ApiError(403, emu.config.unaudited_privacy_error,
                           "Unaudited clients can only post with privacy_level SELF_ONLY")
    if privacy not in user.privacy_level_options:
        raise ApiError(403, "privacy_level_option_mismatch",
                       "privacy_level is missing or not one of the creator's privacy_level_options")


def check_inbox(emu: EmulatorState, user: User, now: float) -> None:
    """Raise the 403 an inbox (draft) init gets: a banned user, or the pending-share cap.

    Pending shares are the user's inbox inits of the last 24 h that did not end FAILED; with
    ``pending_share_mode="held"``, the drafts not FAILED and not yet posted, whatever their age.
    """
    if user.banned:
        raise ApiError(403, "spam_risk_user_banned_from_posting", "The user is banned from posting")
    cap = emu.config.pending_share_cap
    if not cap:
        return
    held = emu.config.pending_share_mode == "held"
    pending = 0
    for publish in emu.publishes.values():
        if publish.open_id != user.open_id or publish.mode != "inbox":
            continue
        status = status_at(publish, now, emu.config)[0]
        if held:
            pending += status not in (FAILED, PUBLISH_COMPLETE)
        else:
            pending += publish.created_at > now - DAY and status != FAILED
    if pending >= cap:
        raise ApiError(403, "spam_risk_too_many_pending_share",
                       "The user has too many pending shares in the last 24 hours")
