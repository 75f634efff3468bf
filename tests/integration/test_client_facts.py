"""A client's ``SessionFacts`` on loopback, as the listener fills them for ``bgpmux status``
and the API: identity, what the session negotiated, the graceful-restart state after it drops,
and the last error in words with its Unix time."""

from __future__ import annotations

import asyncio
import time

from bgpmux.session.facts import SessionFacts
from bgpmux.transport.listeners import ClientServer
from bgpmux.wire import Notification, encode_message

from .test_listener_limits import CLIENT_AS, established, serving

__all__ = ["serving"]  # the fixture


async def facts_until(server: ClientServer, check: object) -> SessionFacts:
    for _ in range(100):
        [info] = server.sessions()
        if check(info.facts):  # type: ignore[operator]
            return info.facts
        await asyncio.sleep(0.02)
    raise AssertionError(f"facts never matched: {info.facts}")


async def test_client_facts_through_a_session_and_its_ends(
    serving: tuple[ClientServer, int],
) -> None:
    server, port = serving
    speaker = await established(port, graceful=True)
    up = await facts_until(server, lambda f: f.capabilities)
    assert (up.address, up.asn, up.local_address) == ("127.0.0.1", CLIENT_AS, "127.0.0.1")
    assert up.capabilities == ("ipv4-unicast", "4-octet-as", "graceful-restart")
    assert (up.hold_time, up.keepalive) == (90, 30)
    assert up.graceful_restart == "negotiated, restart time 120 s"
    assert up.last_error == "" and up.last_error_at is None

    speaker.close()  # no NOTIFICATION: a graceful restart (RFC 4724 §4.2)
    down = await facts_until(server, lambda f: f.last_error)
    assert down.last_error == "connection lost"
    assert down.last_error_at is not None and abs(down.last_error_at - time.time()) < 60
    assert down.capabilities == () and down.hold_time is None
    assert down.graceful_restart in ("stale for 120 s", "stale for 119 s")

    again = await established(port, graceful=True)
    await facts_until(server, lambda f: f.capabilities)
    again.send(encode_message(Notification(6, 2)))
    gone = await facts_until(server, lambda f: f.last_error.startswith("received"))
    assert gone.last_error == "received Cease/Administrative Shutdown"
    again.close()
