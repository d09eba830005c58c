"""How long a proposer waits after a commit for the clients that commit answered.

Platforms submit with `?wait=commit`, so each answer a commit sends brings that client's
next tx a moment later. A proposer that proposed the instant its height began would take
only the txs already pending: under steady load the clients split into cohorts that take
turns, each tx waits about two heights, and every height pays its fixed cost (a proposal,
two rounds of votes and their signatures, the fsyncs) for half the txs it could carry.

So after committing a block of n txs, a validator holds its proposal for the next height
until n more txs have arrived (the clients just answered are back), a full block is
pending, or `window_s` has passed, whichever comes first. A lone client pays nothing: its
next tx is the one arrival awaited. Load that does not wait for commits pays at most the
window, once per height. An empty block (a heartbeat) opens no wait, and neither does a
height decided without a commit of this node's own (catch-up).

Pure bookkeeping: the caller passes the clock and the mempool's arrival count.
"""

from __future__ import annotations

from dataclasses import dataclass

# Default window: the time an answered client takes to send its next tx and the node to
# admit and gossip it, on a busy machine, with room to spare.
DEFAULT_WINDOW_MS = 3


@dataclass(frozen=True)
class _Open:
    until: float  # the clock's value when the wait ends regardless
    arrivals: int  # the arrival count that ends it


class CommitGather:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._open: _Open | None = None

    def committed(self, now: float, arrivals: int, answered: int) -> None:
        """A block of `answered` txs was committed when `arrivals` txs had arrived."""
        if self.window_s > 0 and answered > 0:
            self._open = _Open(now + self.window_s, arrivals + answered)
        else:
            self._open = None

    def wait_s(self, now: float, arrivals: int, full: bool) -> float:
        """Seconds the proposal should still wait: 0 means propose now (and ends the wait)."""
        gather = self._open
        if gather is None:
            return 0.0
        if full or arrivals >= gather.arrivals or now >= gather.until:
            self._open = None
            return 0.0
        return gather.until - now
