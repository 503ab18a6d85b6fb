"""The one policy table: every error code (TikTok's and our own) and fail_reason → what the daemon does.

Nothing else in the program decides how to react to a refusal: whoever raises names the code and gets
the action from here (``refusal``). ``docs/tiktok-errors.md`` shows the same table to users, and a test
keeps the two equal in both directions.

``scope`` says who is affected: ``item`` (this file only), ``account`` (every file of this
TikTok account) or ``app`` (every account, because the app itself is capped or misconfigured).
``wait`` names the cap or limit that parks the account, for ``status`` and metrics; it is set for
WAIT and for the rate-limit RETRY, None otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from watchfolder.core.errors import TikTokError
from watchfolder.core.model import Action

ITEM = "item"
ACCOUNT = "account"
APP = "app"


@dataclass(frozen=True)
class Policy:
    """What to do about one code: the action, who it affects, which cap to wait for (if any), and
    one sentence telling the user what they can change."""

    action: Action
    scope: str
    wait: str | None
    advice: str


def _p(action: Action, scope: str, advice: str, wait: str | None = None) -> Policy:
    return Policy(action=action, scope=scope, wait=wait, advice=advice)


_RETRY_LATER = "Nothing to change: TikTok or the network failed for a moment, and the upload is retried."
_BAD_PARAMS = "TikTok refused the post settings; fix the value named in the message in the post's yaml."

POLICY: Mapping[str, Policy] = MappingProxyType({
    # Transient: the same step again after a backoff.
    "rate_limit_exceeded": _p(
        Action.RETRY, ACCOUNT,
        "Nothing to change: the account sent too many requests in a minute, and it resumes shortly;"
        " lower tiktok.init_per_minute if this repeats.",
        wait="rate_limit"),
    "internal_error": _p(Action.RETRY, ITEM, _RETRY_LATER),
    "network_error": _p(
        Action.RETRY, ITEM,
        "TikTok could not be reached; check this machine's internet connection (the upload is retried)."),
    "bad_response": _p(
        Action.RETRY, ITEM,
        "TikTok's answer could not be read, often a proxy in the way; check tiktok.api_base_url (it is"
        " retried)."),
    "range_mismatch": _p(
        Action.RETRY, ITEM, "Nothing to change: the upload lost its place and continues from where TikTok"
        " says it stopped."),
    "server_error": _p(Action.RETRY, ACCOUNT, "Nothing to change: TikTok's sign-in service failed for a"
                       " moment, and it is retried."),
    "temporarily_unavailable": _p(Action.RETRY, ACCOUNT, "Nothing to change: TikTok's sign-in service is"
                                  " busy, and it is retried."),
    # The access token was refused: refresh it once and repeat the call.
    "access_token_invalid": _p(
        Action.REFRESH, ACCOUNT,
        "Nothing to change unless it repeats; then sign in again with `watchfolder auth login ACCOUNT`."),
    # The upload task is gone: start again with a new init.
    "invalid_publish_id": _p(Action.REINIT, ITEM, "Nothing to change: TikTok forgot this upload, so it"
                             " starts again."),
    "upload_url_expired": _p(Action.REINIT, ITEM, "Nothing to change: the one-hour upload window ran out,"
                             " so the upload starts again; a slow link may need a smaller file."),
    "upload_not_found": _p(Action.REINIT, ITEM, "Nothing to change: TikTok no longer knows this upload, so"
                           " it starts again."),
    # Caps: park the account (or the whole app) until the window frees up; nothing failed.
    "spam_risk_too_many_pending_share": _p(
        Action.WAIT, ACCOUNT,
        "Open TikTok and post or delete the drafts waiting in the inbox; at most 5 may wait in 24 hours.",
        wait="pending_share"),
    "spam_risk_too_many_posts": _p(
        Action.WAIT, ACCOUNT,
        "The account reached TikTok's daily limit of posts through apps; the rest wait for the next day.",
        wait="daily_posts"),
    "reached_active_user_cap": _p(
        Action.WAIT, APP,
        "The app reached TikTok's daily limit of posting accounts; uploads resume the next day.",
        wait="active_users"),
    # Account-wide refusals: pause the account and keep its files in inbox/.
    "unaudited_client_can_only_post_to_private_accounts": _p(
        Action.PAUSE, ACCOUNT,
        "Make the TikTok account private (or use mode: inbox) until the app passes TikTok's audit."),
    "spam_risk_user_banned_from_posting": _p(
        Action.PAUSE, ACCOUNT,
        "TikTok has banned this account from posting; settle it in the TikTok app, then resume."),
    "scope_not_authorized": _p(
        Action.REAUTH, ACCOUNT,
        "Sign in again with `watchfolder auth login ACCOUNT` and allow posting (video.upload or"
        " video.publish)."),
    "scope_permission_missed": _p(
        Action.REAUTH, ACCOUNT,
        "Sign in again with `watchfolder auth login ACCOUNT` and allow every permission asked for."),
    # OAuth errors, as they reach the client on refresh or sign-in.
    "invalid_grant": _p(
        Action.REAUTH, ACCOUNT,
        "The sign-in expired or was revoked; sign in again with `watchfolder auth login ACCOUNT`."),
    "access_denied": _p(
        Action.REAUTH, ACCOUNT, "The sign-in was declined; run `watchfolder auth login ACCOUNT` and approve"
        " it."),
    "invalid_request": _p(
        Action.REAUTH, ACCOUNT,
        "Sign in again with `watchfolder auth login ACCOUNT`; if it repeats, check tiktok.redirect_uri."),
    "invalid_scope": _p(
        Action.REAUTH, ACCOUNT,
        "Enable the Content Posting API scopes for the app in TikTok's developer portal, then sign in"
        " again."),
    "invalid_client": _p(
        Action.PAUSE, APP, "Check tiktok.client_key and the client secret against TikTok's developer"
        " portal."),
    "unauthorized_client": _p(
        Action.PAUSE, APP, "Check that the app is approved for Login Kit and this sign-in method in TikTok's"
        " developer portal."),
    "unsupported_grant_type": _p(
        Action.PAUSE, APP, "Check that tiktok.api_base_url points at TikTok's API (open.tiktokapis.com)."),
    "unsupported_response_type": _p(
        Action.PAUSE, APP, "Check that tiktok.api_base_url points at TikTok's API (open.tiktokapis.com)."),
    # Permanent for this item.
    "invalid_params": _p(Action.FAIL, ITEM, _BAD_PARAMS),
    "invalid_param": _p(Action.FAIL, ITEM, _BAD_PARAMS),
    "invalid_file_upload": _p(
        Action.FAIL, ITEM, "TikTok refused the file; re-export it as MP4 (H.264) and drop it in again."),
    "upload_rejected": _p(
        Action.FAIL, ITEM, "TikTok refused the uploaded bytes; check the file is complete and drop it in"
        " again."),
    "upload_url_untrusted": _p(
        Action.FAIL, ITEM, "The init's upload URL was not https on a TikTok host, so no byte was sent; check for a"
        " proxy rewriting TikTok's answers, then retry the item."),
    "url_ownership_unverified": _p(
        Action.FAIL, ITEM,
        "Verify media_host.url_prefix as a URL property in TikTok's developer portal, then retry the item."),
    "privacy_level_option_mismatch": _p(
        Action.FAIL, ITEM,
        "Pick a privacy_level this account offers (private accounts cannot use PUBLIC_TO_EVERYONE)."),
    "app_version_check_failed": _p(
        Action.FAIL, ITEM, "Update the TikTok app on the phone to version 31.8 or later, then retry the"
        " item."),
    "token_not_authorized_for_specified_publish_id": _p(
        Action.FAIL, ITEM, "This upload belongs to another TikTok account; check which account's folder"
        " holds the file."),
    "publish_not_cancellable": _p(
        Action.FAIL, ITEM, "Nothing to change: TikTok had already finished with this upload."),
    # Our own codes: failures that never reached TikTok's error envelope.
    "file_changed": _p(
        Action.REINIT, ITEM, "Nothing to change: the file changed while it was being sent, so it starts again"
        " as new content once it stops changing."),
    "unexpected_error": _p(
        Action.RETRY, ITEM, "A bug in watchfolder broke this step and it is retried; if it repeats, report the"
        " message."),
    "staging_failed": _p(
        Action.RETRY, ITEM, "The media host's folder refused the file (full or unreadable); it is retried."),
    "media_host_missing": _p(
        Action.FAIL, ITEM, "Photo posts and pull_from_url need media_host.url_prefix with serve or publish_dir"
        " in the config."),
    "init_answer_lost": _p(
        Action.FAIL, ITEM, "Check the TikTok profile for this Direct Post; if it is not there, put the file back"
        " with `watchfolder retry`."),
    "gave_up": _p(
        Action.FAIL, ITEM, "The upload had to start again upload.max_attempts times; check the connection, then"
        " put the file back with `watchfolder retry`."),
    "duplicate": _p(
        Action.FAIL, ITEM, "The same content was already taken in for this account; set dedupe: false to post"
        " it again."),
    "file_gone": _p(
        Action.FAIL, ITEM, "The file was taken out while it was being sent; drop it in again to send it."),
    # Our own codes for media refused before any API call (at intake, or when it is about to go).
    "unsupported_media": _p(
        Action.FAIL, ITEM, "Not a video or image TikTok takes (MP4, MOV, WebM, JPEG, WebP); convert it and"
        " drop it in again."),
    "too_large": _p(
        Action.FAIL, ITEM, "Larger than TikTok accepts (4 GB for a video, 20 MB for a photo); make it smaller"
        " and drop it in again."),
    "empty_file": _p(Action.FAIL, ITEM, "The file is empty; drop in the complete file."),
    "truncated_video": _p(
        Action.FAIL, ITEM, "The video is incomplete or damaged; export it again and drop it in again."),
    "bad_post_settings": _p(
        Action.FAIL, ITEM, "Fix the post settings file as the message says, then drop the media in again."),
    "conversion_unavailable": _p(
        Action.FAIL, ITEM, "Converting this image needs Pillow; install it as the message says, or resize the"
        " image yourself."),
    "image_too_large_resolution": _p(
        Action.FAIL, ITEM, "Beyond TikTok's 1080p limit for photos; resize it, or turn on photos.convert."),
    "too_many_photos": _p(
        Action.FAIL, ITEM, "More images than TikTok allows in one post; split the folder and drop the parts in"
        " again."),
    "empty_photo_set": _p(
        Action.FAIL, ITEM, "The photo folder holds no images; put images in it and drop it in again."),
    "settings_without_media": _p(
        Action.FAIL, ITEM, "A post settings file arrived without its media; drop the media in under the same"
        " name."),
})

_MEDIA_REFUSED = "TikTok refused the media after upload; "

FAIL_REASONS: Mapping[str, Policy] = MappingProxyType({
    "internal": _p(Action.RETRY, ITEM, _RETRY_LATER),
    "video_pull_failed": _p(
        Action.RETRY, ITEM, "TikTok could not download the video; check media_host is reachable over"
        " HTTPS from the internet."),
    "photo_pull_failed": _p(
        Action.RETRY, ITEM, "TikTok could not download the photos; check media_host is reachable over"
        " HTTPS from the internet."),
    "file_format_check_failed": _p(
        Action.FAIL, ITEM, _MEDIA_REFUSED + "re-export it as MP4 (H.264) or, for photos, JPEG or WebP."),
    "duration_check_failed": _p(
        Action.FAIL, ITEM, _MEDIA_REFUSED + "trim the video to the length this account may post."),
    "frame_rate_check_failed": _p(
        Action.FAIL, ITEM, _MEDIA_REFUSED + "re-export the video at 23 to 60 frames per second."),
    "picture_size_check_failed": _p(
        Action.FAIL, ITEM, _MEDIA_REFUSED + "resize it: videos 360 to 4096 pixels a side, photos at most"
        " 1080p."),
    "spam_risk_text": _p(Action.FAIL, ITEM, "TikTok judged the caption risky; reword the title or"
                         " description and drop the file in again."),
    "spam_risk": _p(Action.FAIL, ITEM, "TikTok judged the post risky; post this one from the TikTok app."),
    "spam_risk_too_many_posts": _p(
        Action.WAIT, ACCOUNT,
        "The account reached TikTok's daily limit of posts through apps; the rest wait for the next day.",
        wait="daily_posts"),
    "spam_risk_user_banned_from_posting": _p(
        Action.PAUSE, ACCOUNT,
        "TikTok has banned this account from posting; settle it in the TikTok app, then resume."),
    "auth_removed": _p(
        Action.REAUTH, ACCOUNT,
        "The app's access was removed in TikTok; sign in again with `watchfolder auth login ACCOUNT`."),
    "publish_cancelled": _p(Action.FAIL, ITEM, "The upload was cancelled; drop the file in again to send"
                            " it."),
})

_UNKNOWN_TRANSIENT = "TikTok failed with an unexpected server error; it is retried."
_UNKNOWN_PERMANENT = "TikTok refused this with a code watchfolder does not know; see the message and log_id."


def for_error(code: str, http_status: int | None) -> Policy:
    """Given an ``error.code`` (ours or TikTok's) and the HTTP status it came with, return its
    policy. An unknown code is retried when the status says the server failed (5xx) or throttled
    (429), and fails the item otherwise."""
    known = POLICY.get(code)
    if known is not None:
        return known
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return _p(Action.RETRY, ITEM, _UNKNOWN_TRANSIENT)
    return _p(Action.FAIL, ITEM, _UNKNOWN_PERMANENT)


def refusal(code: str, message: str, *, advice: str = "", http_status: int | None = None,
            log_id: str = "") -> TikTokError:
    """The error to raise for ``code``, with the action the table gives it (and its advice unless a more
    precise sentence is given): the one way code outside this table names a refusal."""
    policy = for_error(code, http_status)
    return TikTokError(code, message, action=policy.action, advice=advice or policy.advice, http_status=http_status,
                       log_id=log_id)


def for_fail_reason(reason: str) -> Policy:
    """Given a status/fetch ``fail_reason``, return its policy; an unknown reason fails the item."""
    known = FAIL_REASONS.get(reason)
    if known is not None:
        return known
    return _p(Action.FAIL, ITEM, "TikTok gave up on this post for a reason watchfolder does not know;"
              " see the message.")
