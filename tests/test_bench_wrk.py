"""The bench reads wrk's report as wrk prints it, whatever units it picks: a figure read
wrong, or a report not read at all, would make the side-by-side table lie or stop."""

from __future__ import annotations

import pytest

from bench.vs_etcd import parse_wrk

TEN_SECONDS = """\
Running 10s test @ http://127.0.0.1:7101/v1/txs?wait=commit
  2 threads and 8 connections
  Latency Distribution
     50%   22.53ms
     75%   25.24ms
     90%   35.56ms
     99%    1.46s
  3296 requests in 10.01s, 3.18MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 0, write 0, timeout 2
Requests/sec:    329.27
"""

ONE_MINUTE = """\
Running 1m test @ http://127.0.0.1:23991/v1/txs?wait=commit
  2 threads and 8 connections
    Req/Sec   161.25     42.84   280.00     82.50%
  Latency Distribution
     50%  812.00us
     99%   65.48ms
  19421 requests in 1.00m, 19.18MB read
Requests/sec:    323.33
"""


def test_a_ten_second_report_with_a_p99_in_seconds_and_failures() -> None:
    requests, failed, duration, p50, p99 = parse_wrk(TEN_SECONDS)
    assert (requests, failed) == (3296, 5)  # 3 non-2xx and 2 timeouts
    assert duration == pytest.approx(10.01)
    assert p50 == pytest.approx(22.53) and p99 == pytest.approx(1460.0)


def test_a_report_of_a_minute_or_more() -> None:
    requests, failed, duration, p50, p99 = parse_wrk(ONE_MINUTE)
    assert (requests, failed) == (19421, 0)
    assert duration == pytest.approx(60.0)
    assert p50 == pytest.approx(0.812) and p99 == pytest.approx(65.48)
