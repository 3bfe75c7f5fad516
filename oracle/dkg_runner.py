"""Run one member's DKG ceremony over any :class:`~oracle.transport.base.Transport`.

:func:`run_dkg` is the I/O half of :mod:`oracle.dkg_session`: it feeds the session every
verified envelope and the loop's clock, ticks it at :attr:`~DkgSession.wakeup_at`, and
publishes what it asks for (broadcasts on the consensus topic, shares to inboxes)::

    async with MqttTransport(settings, network=net, roster=roster, identity=key) as transport:
        result = await run_dkg(transport, DkgSession(config, key.node_id, secrets.token_bytes))

Behaviour
---------
* **Bounded**: the whole run (connecting included) is bounded by ``time_limit`` (default: every
  attempt's own deadline plus the dispute window and a margin); past it,
  :class:`~oracle.dkg_session.DkgTimeout` names the members the current phase still waits
  for. The session's own per-attempt deadline normally fires first, with the same error.
* **Lingering**: after the outcome, the runner keeps serving the session for ``linger``
  seconds. On success the session answers peers that missed our DONE or share (they would
  time out otherwise); on failure it gives the transport time to deliver our complaint
  (an MQTT transport leaving on an exception does not flush its queue).
* **Cancellation** propagates at once (``CancelledError``), from any await; the session is
  simply dropped, nothing was written anywhere. The caller owns the transport.
* Errors: the session's :class:`~oracle.dkg_session.DkgSessionError` subclasses, and the
  transport's own (``TransportClosed`` if it stops under us, ``FrameTooLarge``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from oracle.dkg_session import Action, Broadcast, DkgResult, DkgSession, DkgTimeout, SendTo
from oracle.errors import TransportClosed
from oracle.transport.base import Transport
from oracle.transport.topics import Channel

__all__ = ["DEFAULT_LINGER", "run_dkg"]

logger = logging.getLogger("xon.dkg.runner")

#: Seconds to keep serving peers after the outcome (a bit more than one resend interval).
DEFAULT_LINGER = 1.5
_MARGIN = 5.0


async def run_dkg(
    transport: Transport,
    session: DkgSession,
    *,
    time_limit: float | None = None,
    linger: float = DEFAULT_LINGER,
    clock: Callable[[], float] | None = None,
) -> DkgResult:
    """Run ``session`` to its end over an entered ``transport``; return our result or raise
    the session's error (after lingering)."""
    config = session.config
    if time_limit is None:
        time_limit = (config.timeout + config.dispute_window) * config.max_attempts + _MARGIN
    now = clock or asyncio.get_running_loop().time
    logger.info(
        "dkg.start me=%s n=%d t=%d network=%s",
        session.me,
        len(config.roster),
        config.threshold,
        config.network,
    )
    try:
        async with asyncio.timeout(time_limit):
            await transport.wait_connected()
            await _execute(transport, session.start(now()))
            while not session.finished:
                await _step(transport, session, now)
    except TimeoutError:
        silent = session.silent_members()
        raise DkgTimeout(
            f"the DKG did not finish within {time_limit:g} s"
            + (f"; waiting for {', '.join(silent)}" if silent else ""),
            silent=silent,
        ) from None
    await _linger(transport, session, now, linger)
    if session.error is not None:
        raise session.error
    result = session.result
    assert result is not None  # finished without an error means completed
    return result


async def _step(transport: Transport, session: DkgSession, now: Callable[[], float]) -> None:
    """Wait for one message or the session's next wake-up, whichever comes first."""
    wait = session.wakeup_at - now()
    if wait <= 0:
        await _execute(transport, session.tick(now()))
        return
    try:
        async with asyncio.timeout(wait if wait != float("inf") else None):
            envelope = await transport.receive()
    except TimeoutError:
        await _execute(transport, session.tick(now()))
    else:
        await _execute(transport, session.receive(envelope, now()))


async def _linger(
    transport: Transport, session: DkgSession, now: Callable[[], float], duration: float
) -> None:
    end = now() + duration
    while (left := end - now()) > 0:
        try:
            async with asyncio.timeout(left):
                envelope = await transport.receive()
            await _execute(transport, session.receive(envelope, now()))
        except (TimeoutError, TransportClosed):
            # The outcome is settled; lingering is a courtesy to slower peers.
            return


async def _execute(transport: Transport, actions: list[Action]) -> None:
    for action in actions:
        if isinstance(action, Broadcast):
            await transport.publish(Channel.CONSENSUS, action.type, action.payload)
        elif isinstance(action, SendTo):
            await transport.publish(Channel.INBOX, action.type, action.payload, to=action.to)
        # Restarted / Completed / Failed: the session logged them and holds the outcome.
