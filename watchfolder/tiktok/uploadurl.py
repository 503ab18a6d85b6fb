"""Upload URL sanity: when the API is TikTok's, an ``upload_url`` must be https on a TikTok host.

The init's answer decides where every byte of the video goes. A proxy or a tampered answer that
points elsewhere (or downgrades to plain http) is refused before a single byte is sent.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from watchfolder.tiktok import codes

TIKTOK_DOMAINS = ("tiktokapis.com", "tiktok.com")  # open.tiktokapis.com, open-upload.…, upload.us.…


def _on(host: str, domains: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def check(api_base_url: str, upload_url: str, *, domains: tuple[str, ...] = TIKTOK_DOMAINS) -> None:
    """Raise TikTokError ``upload_url_untrusted`` (FAIL) when ``api_base_url`` is on ``domains`` and
    ``upload_url`` is not https on one of them; any URL passes for another API (an emulator)."""
    if not _on(urlsplit(api_base_url).hostname or "", domains):
        return
    parts = urlsplit(upload_url)
    if parts.scheme == "https" and _on(parts.hostname or "", domains):
        return
    where = f"{parts.scheme}://{parts.hostname or '?'}"
    raise codes.refusal("upload_url_untrusted", f"the upload URL TikTok's init returned points to {where}, not "
                        "https on a TikTok host: nothing was sent",
                        advice=f"the init's upload URL pointed to {where}, not https on a TikTok host, so no byte "
                               "was sent; a proxy between this machine and TikTok may be rewriting answers")
