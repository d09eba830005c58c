"""The proposer's wait after a commit (node/server/gather.py): what ends it, with the clock
and the mempool's arrival count passed in, as the driver does."""

from __future__ import annotations

import pytest

from almoner.node.server.gather import CommitGather


def test_the_wait_ends_when_the_answered_clients_are_back() -> None:
    gather = CommitGather(0.003)
    gather.committed(now=10.0, arrivals=100, answered=4)
    assert gather.wait_s(10.001, arrivals=101, full=False) == pytest.approx(0.002)
    assert gather.wait_s(10.001, arrivals=103, full=False) > 0  # three of four are back
    assert gather.wait_s(10.001, arrivals=104, full=False) == 0.0
    assert gather.wait_s(10.0011, arrivals=101, full=False) == 0.0  # ended: stays ended


def test_the_wait_ends_at_the_window_or_when_a_block_is_full() -> None:
    timed = CommitGather(0.003)
    timed.committed(now=5.0, arrivals=0, answered=8)
    assert timed.wait_s(5.0029, arrivals=1, full=False) > 0
    assert timed.wait_s(5.003, arrivals=1, full=False) == 0.0
    assert timed.wait_s(5.0, arrivals=1, full=False) == 0.0  # ended, even by an earlier clock
    full = CommitGather(0.003)
    full.committed(now=5.0, arrivals=0, answered=8)
    assert full.wait_s(5.0, arrivals=0, full=True) == 0.0
    assert full.wait_s(5.0, arrivals=0, full=False) == 0.0  # ended: a later call waits no more


def test_a_lone_client_waits_for_nothing_but_its_own_next_tx() -> None:
    gather = CommitGather(0.003)
    gather.committed(now=1.0, arrivals=7, answered=1)
    assert gather.wait_s(1.0005, arrivals=8, full=False) == 0.0


@pytest.mark.parametrize(("window", "answered"), [(0.0, 5), (0.003, 0)])
def test_no_wait_without_a_window_or_after_an_empty_block(window: float, answered: int) -> None:
    gather = CommitGather(window)
    gather.committed(now=1.0, arrivals=0, answered=answered)
    assert gather.wait_s(1.0, arrivals=0, full=False) == 0.0


def test_a_new_commit_replaces_the_wait_before_it() -> None:
    gather = CommitGather(0.003)
    gather.committed(now=1.0, arrivals=0, answered=5)
    gather.committed(now=2.0, arrivals=3, answered=1)
    assert gather.wait_s(2.001, arrivals=3, full=False) > 0
    assert gather.wait_s(2.001, arrivals=4, full=False) == 0.0
