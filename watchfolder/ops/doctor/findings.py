"""One finding of ``watchfolder check``: a stable name, ok | warn | fail, and a sentence with the fix."""

from __future__ import annotations

import dataclasses
import datetime

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclasses.dataclass(frozen=True)
class Check:
    """One finding: a stable ``name`` for scripts, ``status`` ok | warn | fail, a sentence with the fix."""

    name: str
    status: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}


def utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
