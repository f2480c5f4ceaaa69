"""What the one lifespan opens for every transport, and hands to every tool call."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.to_thread

from optical_memory.config import Config
from optical_memory.fading import BackgroundFader
from optical_memory.memory import Memory
from optical_memory.spool import SpoolDrainer

__all__ = ["AppState", "serving"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppState:
    """What the lifespan yields to every tool call."""

    memory: Memory
    fader: BackgroundFader  # demotes pages off the request path, so remember returns once stored


@asynccontextmanager
async def serving(config: Config, memory: Memory | None = None) -> AsyncIterator[AppState]:
    """The lifespan of both transports: the archive open, and the fader and spool drainer running, while serving.

    Opens a `Memory` on `config` (or uses `memory`, which the caller owns and closes: the HTTP
    server shares it with its web page, tests with their assertions), then asks the fader for
    every session at once: pages that aged past a tier while no server ran fade now, off the
    request path. On the way out, which a signal or the end of stdin brings, the fader stops
    after the demotion step in progress (the rest is still due at the next start) and the
    archive is closed, shielded from the cancellation that stopped serving.
    """
    # Opening may wait (bounded) while another process opens or resizes the archive.
    opened = memory if memory is not None else await anyio.to_thread.run_sync(Memory, config)
    log.info("optical-memory archive open at %s", config.archive.path)
    fader = BackgroundFader(opened.fade)
    fader.request(None)
    # Turns capture hooks spooled are remembered now and whenever more wait (a hook's own drainer
    # may have failed to start or been killed); the sessions written to are faded after.
    drainer = SpoolDrainer(opened, on_drained=fader.request).start()
    try:
        yield AppState(opened, fader)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(drainer.close)
            await anyio.to_thread.run_sync(fader.close)
            if memory is None:
                opened.close()
        log.info("optical-memory stopped")
