"""The policy table in code and the one users read in docs/tiktok-errors.md never drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchfolder.core.model import Action
from watchfolder.tiktok import codes

DOC = Path(__file__).resolve().parent.parent / "docs" / "tiktok-errors.md"
HEADER = ["code", "where", "action", "scope", "wait", "what the user is told"]


def read_doc_table() -> tuple[dict[str, codes.Policy], dict[str, codes.Policy]]:
    """Parse the single table of docs/tiktok-errors.md into (error codes, fail_reasons)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines
            if line.startswith("|")]
    assert rows[0] == HEADER
    assert set("".join(rows[1])) <= set("- ")  # the separator row
    errors: dict[str, codes.Policy] = {}
    reasons: dict[str, codes.Policy] = {}
    for code, where, action, scope, wait, advice in rows[2:]:
        target = reasons if where == "status fail_reason" else errors
        name = code.strip("`")
        assert name not in target, f"{name} is listed twice"
        target[name] = codes.Policy(action=Action(action), scope=scope,
                                    wait=None if wait == "-" else wait, advice=advice)
    return errors, reasons


def test_the_documented_table_equals_the_policy_table_both_ways() -> None:
    errors, reasons = read_doc_table()

    assert errors == dict(codes.POLICY)
    assert reasons == dict(codes.FAIL_REASONS)


# Every error code of the reference's endpoint tables, master table and OAuth section.
TIKTOK_CODES = [
    "invalid_param", "invalid_params", "invalid_file_upload", "scope_permission_missed",
    "app_version_check_failed", "invalid_publish_id", "token_not_authorized_for_specified_publish_id",
    "publish_not_cancellable", "access_token_invalid", "scope_not_authorized", "spam_risk_too_many_posts",
    "spam_risk_user_banned_from_posting", "spam_risk_too_many_pending_share", "reached_active_user_cap",
    "unaudited_client_can_only_post_to_private_accounts", "url_ownership_unverified",
    "privacy_level_option_mismatch", "rate_limit_exceeded", "internal_error",
    "access_denied", "invalid_client", "invalid_grant", "invalid_request", "invalid_scope",
    "unauthorized_client", "unsupported_grant_type", "unsupported_response_type", "server_error",
    "temporarily_unavailable",
]
TIKTOK_FAIL_REASONS = [
    "file_format_check_failed", "duration_check_failed", "frame_rate_check_failed",
    "picture_size_check_failed", "internal", "video_pull_failed", "photo_pull_failed", "publish_cancelled",
    "auth_removed", "spam_risk_too_many_posts", "spam_risk_user_banned_from_posting", "spam_risk_text",
    "spam_risk",
]


def test_every_documented_tiktok_code_and_fail_reason_has_a_policy() -> None:
    assert sorted(set(TIKTOK_CODES) - set(codes.POLICY)) == []
    assert sorted(set(TIKTOK_FAIL_REASONS) - set(codes.FAIL_REASONS)) == []


DECISIONS = [
    ("rate_limit_exceeded", Action.RETRY, "account", "rate_limit"),
    ("internal_error", Action.RETRY, "item", None),
    ("network_error", Action.RETRY, "item", None),
    ("bad_response", Action.RETRY, "item", None),
    ("range_mismatch", Action.RETRY, "item", None),
    ("access_token_invalid", Action.REFRESH, "account", None),
    ("scope_not_authorized", Action.REAUTH, "account", None),
    ("invalid_params", Action.FAIL, "item", None),
    ("invalid_param", Action.FAIL, "item", None),
    ("spam_risk_too_many_pending_share", Action.WAIT, "account", "pending_share"),
    ("spam_risk_too_many_posts", Action.WAIT, "account", "daily_posts"),
    ("reached_active_user_cap", Action.WAIT, "app", "active_users"),
    ("unaudited_client_can_only_post_to_private_accounts", Action.PAUSE, "account", None),
    ("spam_risk_user_banned_from_posting", Action.PAUSE, "account", None),
    ("url_ownership_unverified", Action.FAIL, "item", None),
    ("privacy_level_option_mismatch", Action.FAIL, "item", None),
    ("app_version_check_failed", Action.FAIL, "item", None),
    ("invalid_publish_id", Action.REINIT, "item", None),
    ("token_not_authorized_for_specified_publish_id", Action.FAIL, "item", None),
    ("publish_not_cancellable", Action.FAIL, "item", None),
    ("upload_url_expired", Action.REINIT, "item", None),
    ("upload_not_found", Action.REINIT, "item", None),
    ("upload_rejected", Action.FAIL, "item", None),
    ("invalid_grant", Action.REAUTH, "account", None),
    ("invalid_client", Action.PAUSE, "app", None),
    ("unauthorized_client", Action.PAUSE, "app", None),
    ("server_error", Action.RETRY, "account", None),
    ("temporarily_unavailable", Action.RETRY, "account", None),
]


@pytest.mark.parametrize(("code", "action", "scope", "wait"), DECISIONS)
def test_error_code_policy_matches_the_agreed_decision(code: str, action: Action, scope: str,
                                                       wait: str | None) -> None:
    policy = codes.for_error(code, 400)

    assert (policy.action, policy.scope, policy.wait) == (action, scope, wait)


FAIL_REASON_DECISIONS = [
    ("internal", Action.RETRY), ("video_pull_failed", Action.RETRY), ("photo_pull_failed", Action.RETRY),
    ("file_format_check_failed", Action.FAIL), ("duration_check_failed", Action.FAIL),
    ("frame_rate_check_failed", Action.FAIL), ("picture_size_check_failed", Action.FAIL),
    ("spam_risk_text", Action.FAIL), ("spam_risk", Action.FAIL), ("spam_risk_too_many_posts", Action.WAIT),
    ("spam_risk_user_banned_from_posting", Action.PAUSE), ("auth_removed", Action.REAUTH),
    ("publish_cancelled", Action.FAIL),
]


@pytest.mark.parametrize(("reason", "action"), FAIL_REASON_DECISIONS)
def test_fail_reason_policy_matches_the_agreed_decision(reason: str, action: Action) -> None:
    assert codes.for_fail_reason(reason).action == action


def test_the_daily_post_cap_waits_on_the_same_window_whether_refused_at_init_or_after_upload() -> None:
    assert codes.for_fail_reason("spam_risk_too_many_posts") == codes.for_error("spam_risk_too_many_posts", 403)


@pytest.mark.parametrize(("status", "action"), [(500, Action.RETRY), (503, Action.RETRY), (429, Action.RETRY),
                                                (400, Action.FAIL), (403, Action.FAIL), (200, Action.FAIL),
                                                (None, Action.FAIL)])
def test_an_unknown_code_is_retried_only_when_the_server_failed_or_throttled(status: int | None,
                                                                            action: Action) -> None:
    policy = codes.for_error("brand_new_code_from_tiktok", status)

    assert policy.action == action
    assert policy.scope == "item"
    assert policy.advice


def test_an_unknown_fail_reason_fails_the_item_with_advice() -> None:
    policy = codes.for_fail_reason("brand_new_reason")

    assert (policy.action, policy.scope) == (Action.FAIL, "item")
    assert policy.advice


def test_every_policy_is_well_formed() -> None:
    """Scopes from the fixed set, a cap name exactly where the account is parked on a window,
    and advice that is one table-safe sentence."""
    for name, policy in [*codes.POLICY.items(), *codes.FAIL_REASONS.items()]:
        assert policy.scope in {"item", "account", "app"}, name
        assert (policy.wait is not None) == (policy.action is Action.WAIT or name == "rate_limit_exceeded"), name
        assert policy.advice.endswith(".") and ". " not in policy.advice, name
        assert "|" not in policy.advice and "\n" not in policy.advice, name
