"""Fixtures for the emulator's own tests: a running emulator, a creator, a plain ``requests`` client, and a
media server for PULL_FROM_URL. The tests speak HTTP with ``requests`` only, never watchfolder's client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from emulator_support import Api

from tests.emulator_fixture import MediaServer, running_emulator
from watchfolder.emulator import Emulator, User


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """A factory: ``make_emulator(**config)`` starts an emulator with those settings (stopped at teardown)."""
    with ExitStack() as stack:
        yield lambda **config: stack.enter_context(running_emulator(**config))


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """An emulator with the test defaults: a ManualClock, processing that takes no time, http photo URLs."""
    return make_emulator()


@pytest.fixture
def alice(emulator: Emulator) -> User:
    """A creator with a public account and every posting scope."""
    return emulator.add_user("alice")


@pytest.fixture
def api(emulator: Emulator, alice: User) -> Api:
    """A client speaking for alice."""
    return Api(emulator.base_url or "", alice.access_token)


@pytest.fixture
def media() -> Iterator[MediaServer]:
    """A loopback web server for PULL_FROM_URL."""
    server = MediaServer()
    yield server
    server.close()
