"""Plain-``requests`` helpers for the emulator's tests (kept apart from conftest so tests can import them)."""

from __future__ import annotations

import json
from typing import Any

import requests

PATHS = {
    "creator_info": "/v2/post/publish/creator_info/query/",
    "video_init": "/v2/post/publish/video/init/",
    "inbox_init": "/v2/post/publish/inbox/video/init/",
    "content_init": "/v2/post/publish/content/init/",
    "status": "/v2/post/publish/status/fetch/",
    "cancel": "/v2/post/publish/cancel/",
    "token": "/v2/oauth/token/",
    "revoke": "/v2/oauth/revoke/",
    "user_info": "/v2/user/info/",
    "authorize": "/v2/auth/authorize/",
}


class Api:
    """A thin ``requests`` wrapper: one creator's Bearer token and the emulator's base URL."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        self.session = requests.Session()

    def post(self, endpoint: str, body: Any = None, **kwargs: Any) -> requests.Response:
        """POST JSON to a named endpoint (see PATHS) with the Bearer token."""
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        data = b"" if body is None else json.dumps(body).encode()
        return self.session.post(self.base_url + PATHS[endpoint], data=data, headers=headers, timeout=10,
                                 **kwargs)

    def inbox_file(self, size: int, chunk: int | None = None, count: int | None = None) -> requests.Response:
        chunk = size if chunk is None else chunk
        count = max(1, size // chunk) if count is None else count
        return self.post("inbox_init", {"source_info": {
            "source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}})

    def direct_file(self, size: int, privacy: str | None = "SELF_ONLY", **post_info: Any) -> requests.Response:
        if privacy is not None:
            post_info["privacy_level"] = privacy
        return self.post("video_init", {"post_info": post_info, "source_info": {
            "source": "FILE_UPLOAD", "video_size": size, "chunk_size": size, "total_chunk_count": 1}})

    def status(self, publish_id: str) -> dict[str, Any]:
        answer = self.post("status", {"publish_id": publish_id})
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]


def error_of(answer: requests.Response) -> tuple[int, str]:
    """Return (HTTP status, error.code) of an enveloped answer."""
    return answer.status_code, answer.json()["error"]["code"]


def put_chunks(upload_url: str, data: bytes, chunk: int, content_type: str = "video/mp4") -> list[int]:
    """PUT ``data`` in TikTok's chunk plan and return the HTTP status of each PUT."""
    size = len(data)
    count = max(1, size // chunk)
    statuses = []
    with requests.Session() as session:
        for index in range(count):
            first = index * chunk
            last = size - 1 if index == count - 1 else first + chunk - 1
            answer = session.put(upload_url, data=data[first:last + 1], timeout=30, headers={
                "Content-Type": content_type, "Content-Range": f"bytes {first}-{last}/{size}"})
            statuses.append(answer.status_code)
    return statuses
