"""``watchfolder demo``: the whole flow on the built-in emulator, in a temporary folder, then clean up."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from watchfolder import logs
from watchfolder.config import settings as config
from watchfolder.daemon import wiring
from watchfolder.emulator import Emulator, EmulatorConfig
from watchfolder.media import samples
from watchfolder.tiktok.tokens import Tokens, TokenStore

DEMO_TIMEOUT = 60.0


def write_config(base: Path, api_base_url: str, client_key: str) -> Path:
    path = base / "config.yaml"
    path.write_text(
        f"root: {base / 'tiktok'}\n"
        f"state_dir: {base / 'state'}\n"
        "tiktok:\n"
        f"  client_key: {client_key}\n"
        f"  api_base_url: {api_base_url}\n"
        "watch:\n"
        "  settle_seconds: 1\n"
        "upload:\n"
        "  status_poll_seconds: 0.5\n"
        "accounts:\n"
        "  alice:\n"
        "    mode: inbox\n",
        encoding="utf-8",
    )
    return path


def main(*, keep: bool = False, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    say = lambda text: print(text, file=stream, flush=True)  # noqa: E731
    base = Path(tempfile.mkdtemp(prefix="watchfolder-demo-"))
    emulator = Emulator(EmulatorConfig(processing_seconds=0.5))
    try:
        url = emulator.start()
        say(f"1. TikTok emulator listening on {url}")
        user = emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        (base / "tiktok").mkdir()
        config_path = write_config(base, url, emulator.config.client_key)
        env = {"WATCHFOLDER_CLIENT_SECRET": emulator.config.client_secret}
        settings = config.load(config_path, env=env)
        now = time.time()
        store = TokenStore(settings.state_dir)
        store.check_permissions()
        store.save(Tokens(account="alice", open_id=user.open_id, access_token=user.access_token,
                          access_expires_at=now + 86400, refresh_token=user.refresh_token,
                          refresh_expires_at=now + 86400 * 365, scopes=("user.info.basic", "video.upload"),
                          updated_at=now))
        say(f"2. config written to {config_path}; account 'alice' signed in on the emulator")
        logs.configure("warning", stream=sys.stderr)
        daemon = wiring.build(settings)
        thread = threading.Thread(target=daemon.run, name="demo-daemon", daemon=True)
        thread.start()
        inbox = settings.root / "alice" / "inbox"
        staged = base / "clip.mp4"
        samples.write_mp4(staged, size=2_000_000, duration_seconds=3)
        staged.rename(inbox / "clip.mp4")
        say(f"3. dropped a generated 2 MB MP4 into {inbox}")
        sidecar = settings.root / "alice" / "done" / "clip.mp4.json"
        failed = settings.root / "alice" / "failed" / "clip.mp4.json"
        deadline = time.monotonic() + DEMO_TIMEOUT
        while not (sidecar.exists() or failed.exists()) and time.monotonic() < deadline:
            time.sleep(0.1)
        daemon.stop.set()
        thread.join(timeout=30)
        if not sidecar.exists():
            say("the demo did not reach done/: " + (failed.read_text() if failed.exists() else "timed out"))
            return 1
        say(f"4. it reached {sidecar.parent}; the sidecar says:")
        say(json.dumps(json.loads(sidecar.read_text()), indent=2))
        document = json.loads(sidecar.read_text())
        received = [p for p in emulator.records.publishes if p.sha256 == document["sha256"]]
        say(f"5. the emulator holds {len(received)} upload(s) whose sha256 matches the file's; "
            f"TikTok status: {document['status']}")
        return 0
    finally:
        emulator.stop()
        if keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
