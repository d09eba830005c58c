"""TLS for clients: a node given a certificate serves HTTPS only, and with a client CA it
accepts only clients presenting a certificate from that CA (mTLS)."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme

from almoner.node.devnet.network import NodeProcesses, create_devnet
from tests.attack.live import tighten
from tests.cluster.harness import FAST_PARAMS, Cluster


def test_https_with_client_certificates(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client_cert = ca.issue_cert("platform-1.example")
    server.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "node.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    devnet = create_devnet(tmp_path / "net", nodes=1, base_port=None, params=FAST_PARAMS)
    tighten(
        tmp_path / "net",
        {"tls_cert": str(tmp_path / "node.pem"), "tls_client_ca": str(tmp_path / "ca.pem")},
    )
    url = devnet.urls["validator-0"].replace("http://", "https://")
    trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    mutual = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    mutual.load_cert_chain(str(tmp_path / "client.pem"))
    procs = NodeProcesses(devnet)
    procs.start("validator-0")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", verify=mutual, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        cluster = Cluster(devnet, procs)
        raw = cluster.donation("platform-1", "charity-1", 9)
        with httpx.Client(base_url=url, verify=mutual, timeout=30) as client:
            response = client.post(
                "/v1/txs",
                params={"wait": "commit"},
                content=raw,
                headers={"content-type": "application/msgpack"},
            )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "committed"
        with pytest.raises(httpx.HTTPError):  # no client certificate: handshake refused
            httpx.get(f"{url}/healthz", verify=trusted, timeout=2).raise_for_status()
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served
            httpx.get(f"{devnet.urls['validator-0']}/healthz", timeout=2).raise_for_status()
    finally:
        procs.stop_all()
