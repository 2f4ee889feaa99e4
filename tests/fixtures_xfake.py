"""The X fake (`testing.xfake`) as pytest fixtures: `x_server`, emptied for each test.

Loaded as a pytest plugin by tests/conftest.py; test modules use the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.xfake import XFakeServer, serve


@pytest.fixture(scope="session")
def _x_server_session() -> Iterator[XFakeServer]:
    state, server = serve()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def x_server(_x_server_session: XFakeServer) -> Iterator[XFakeServer]:
    """The session's X fake, emptied for each test."""
    _x_server_session.reset()
    yield _x_server_session
    _x_server_session.reset()
