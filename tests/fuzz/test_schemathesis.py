"""Schemathesis against a live node's /openapi.json: no generated request, in any phase
(coverage, fuzzing, stateful), may get a 5xx. The budget is ALMONER_FUZZ_EXAMPLES / 30
examples per operation (5 in `make test`, 100 in `make test-attack`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.attack.live import assert_commits, assert_healthy_fast, attacked_cluster
from tests.fuzz.conftest import EXAMPLES, RUNS


def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    examples = max(5, EXAMPLES // 30)
    with attacked_cluster(tmp_path, {"rate_limit": "100000/second"}) as cluster:
        assert_commits(cluster)  # a head, a tx and a donation exist to be read
        url = cluster.url("validator-0")
        st = Path(sys.executable).parent / "st"
        result = subprocess.run(
            [
                *(str(st), "run", f"{url}/openapi.json", "--checks", "not_a_server_error"),
                *("--max-examples", str(examples), "--workers", "1", "--seed", "14"),
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.st_hooks"},
            cwd=Path(__file__).resolve().parents[2],
            check=False,
        )
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-4000:]
        counted = re.search(r"(\d+) generated, (\d+) passed", out)
        assert counted is not None, out[-2000:]
        assert counted.group(1) == counted.group(2)
        RUNS["schemathesis requests"] += int(counted.group(1))
        assert_healthy_fast(url)
        assert_commits(cluster)
