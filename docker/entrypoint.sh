#!/bin/sh
# watchfolder's container entrypoint.
#
# Started as root (the default), it hands the state volume to PUID:PGID, sets UMASK, and runs the command
# as PUID:PGID through setpriv (util-linux, part of the base image): watchfolder itself never runs as root.
# Started as another user (`docker run --user 1000:100`, compose `user:`), it only sets UMASK.
# The media tree is never chowned: it belongs to the NAS user whose ids PUID and PGID name.
#
# `watchfolder-entrypoint healthcheck` is the image's HEALTHCHECK: healthy when /healthz answers 200; unhealthy
# when it answers 503 or not at all. Where nothing listens (metrics.listen not set), healthy when the daemon
# holds its state lock and every present inbox has a live observer.
set -eu

PUID="${PUID:-1000}"
PGID="${PGID:-1000}"
UMASK="${UMASK:-022}"
STATE="${WATCHFOLDER_STATE:-/state}"

fail() {
    echo "watchfolder-entrypoint: $*" >&2
    exit 2
}

healthcheck() {
    exec python3 - <<'PYTHON'
import os, sys, time, urllib.error, urllib.request

url = os.environ.get("WATCHFOLDER_HEALTHZ", "http://127.0.0.1:9808/healthz")
try:
    with urllib.request.urlopen(url, timeout=float(os.environ.get("WATCHFOLDER_HEALTHZ_TIMEOUT", "10"))):
        sys.exit(0)
except urllib.error.HTTPError as answer:  # 503: the report says what is wrong
    print(answer.read().decode(errors="replace"))
    sys.exit(1)
except urllib.error.URLError as error:
    if not isinstance(error.reason, ConnectionRefusedError):
        print(f"{url}: {error.reason}")
        sys.exit(1)
except TimeoutError:  # the server took the connection but the process does not answer: it hangs
    print(f"{url}: no answer")
    sys.exit(1)
# Nothing listens (metrics.listen is not set): judge by what the daemon writes to its state database.
from watchfolder.config import settings as config
from watchfolder.ops import report
data = report.collect(config.load(None), time.time())
daemon = data.get("daemon") or {}
dead = [o["account"] for o in daemon.get("observers", []) if o["available"] and not o["alive"]]
if not daemon.get("running") or dead:
    print("daemon not running" if not daemon.get("running") else f"inboxes not watched: {', '.join(dead)}")
    sys.exit(1)
PYTHON
}

case "$PUID" in '' | *[!0-9]*) fail "PUID must be a number (id -u of the media's owner), got '$PUID'" ;; esac
case "$PGID" in '' | *[!0-9]*) fail "PGID must be a number (id -g of the media's group), got '$PGID'" ;; esac
case "$UMASK" in [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) fail "UMASK must be octal like 022, got '$UMASK'" ;; esac

if [ "${1:-}" = healthcheck ]; then
    healthcheck
fi

umask "$UMASK"

if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi

[ "$PUID" != 0 ] || fail "PUID=0 would run watchfolder as root; set PUID and PGID to the owner of the media folder"
[ "$PGID" != 0 ] || fail "PGID=0 would run watchfolder in the root group; set PGID to the media folder's group"

# The state volume holds only watchfolder's database and tokens: it is handed to PUID:PGID, entry by entry
# and only where the owner differs, so a restart with the same ids changes nothing.
mkdir -p "$STATE"
find "$STATE" -xdev \( ! -user "$PUID" -o ! -group "$PGID" \) -exec chown -h "$PUID:$PGID" {} +
chmod 700 "$STATE"

export HOME="$STATE"
exec setpriv --reuid="$PUID" --regid="$PGID" --clear-groups --inh-caps=-all -- "$@"
