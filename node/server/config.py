"""A node's typed configuration: a TOML file in the node's home, overridden by ALMONER_*.

Operators edit `node.toml`; containers set `ALMONER_LISTEN`, `ALMONER_PEERS` (JSON) and
friends. Relative paths in the file are relative to the file, so a home directory can be
moved or mounted elsewhere as a whole.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from almoner.node.errors import AlmonerError
from almoner.node.server.gather import DEFAULT_WINDOW_MS

CONFIG_NAME = "node.toml"


class ConfigError(AlmonerError):
    """The node configuration is missing, unreadable or invalid."""


class NodeConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALMONER_", extra="forbid")

    genesis: Path
    key: Path | None = Field(
        default=None, description="validator key file; none makes an observer node"
    )
    passphrase_env: str | None = None
    data_dir: Path
    listen: str = "127.0.0.1:8000"
    # The validators' TLS channel (docs/p2p.md); port 0 picks a free one, which peers
    # learn from /v1/status. Default: the API's host, a free port.
    p2p_listen: str | None = None
    # Off: validators reach this node only by signed HTTP envelopes on /v1/p2p/messages
    # (the v1 route, kept for peers that cannot open the channel, e.g. behind an HTTP-only
    # proxy); its peers then fall back to it by themselves.
    p2p_channel: bool = True
    # Peers by validator public key (hex) -> base URL; observers list validators here too.
    peers: dict[str, str] = Field(default_factory=dict)
    mempool_max_txs: int = Field(default=50_000, ge=1)
    mempool_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Pending txs one signer may hold (default: a quarter of mempool_max_txs) and the
    # slots reserved above the cap for regulators' and validators' txs (default: 2%).
    mempool_max_per_party: int | None = Field(default=None, ge=1)
    mempool_reserved_txs: int | None = Field(default=None, ge=0)
    # Public API limits (docs/operators.md): per client address, in `limits` notation.
    rate_limit: str = "2000/second;60000/minute"
    # Client addresses free of the per-client rate and connection limits: this machine's
    # own tools, health checks and benches (a reverse proxy here: limit in the proxy).
    trusted_clients: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    max_connections: int = Field(default=4096, ge=1)
    max_connections_per_client: int = Field(default=512, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    idle_timeout_s: float = Field(default=5.0, gt=0)
    request_timeout_s: float = Field(default=60.0, gt=0)
    # HTTPS: a PEM certificate (chain) and key; with tls_client_ca, clients must present
    # a certificate that CA signed (mTLS). tls_peer_ca verifies peers' https:// URLs.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_peer_ca: Path | None = None
    # The node's own supervision view (/v1/supervision/…, the explorer's regulator page):
    # thresholds in the TOML format of `almoner supervise --rules` (docs/supervision.md),
    # and the length of the periods that period rules and scores use.
    supervision_rules: Path | None = None
    supervision_period: Literal["month", "quarter", "year", "all"] = "month"
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    tick_ms: int = Field(default=10, ge=1, le=1000)
    # After a commit, a proposer waits at most this long for the clients that commit
    # answered to send their next txs (node/server/gather.py); 0 proposes at once.
    propose_gather_ms: int = Field(default=DEFAULT_WINDOW_MS, ge=0, le=10_000)
    wait_commit_timeout_ms: int = Field(default=10_000, ge=1)
    log_level: str = "info"
    # Run protocol versions only up to this one (default: all this release supports); a
    # node pinned lower stops before an adopted upgrade's height, for rehearsals
    # (docs/operators.md, "Upgrades").
    max_protocol_version: int | None = Field(default=None, ge=1)

    @field_validator("listen", "p2p_listen")
    @classmethod
    def _listen(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        host, _, port = value.rpartition(":")
        lowest = 0 if info.field_name == "p2p_listen" else 1  # p2p: 0 picks a free port
        if not host or not (port.isascii() and port.isdigit()) or not lowest <= int(port) < 65536:
            raise ValueError(f"{info.field_name} must be HOST:PORT")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"rate_limit {value!r}: {exc}") from None
        return value

    @field_validator("supervision_rules")
    @classmethod
    def _supervision_rules(cls, value: Path | None) -> Path | None:
        from almoner.node.chain.supervision.thresholds import ThresholdError, load

        try:
            load(value)  # refused at start-up, not at the first regulator's request
        except ThresholdError as exc:
            raise ValueError(f"supervision_rules: {exc}") from None
        return value

    @field_validator("peers")
    @classmethod
    def _peers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, url in value.items():
            if (
                len(key) != 64
                or key.lower() != key
                or any(c not in "0123456789abcdef" for c in key)
            ):
                raise ValueError(f"peer key {key!r} must be 64 lowercase hex characters")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"peer URL {url!r} must start with http:// or https://")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def p2p_address(self) -> tuple[str, int]:
        if self.p2p_listen is None:
            return self.host, 0
        host, _, port = self.p2p_listen.rpartition(":")
        return host, int(port)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: it overrides what the file (passed as init values) says.
        return (env_settings, init_settings)


def _resolve(data: dict[str, Any], base: Path) -> dict[str, Any]:
    for key in (
        "genesis",
        "key",
        "data_dir",
        "tls_cert",
        "tls_key",
        "tls_client_ca",
        "tls_peer_ca",
        "supervision_rules",
    ):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str((base / data[key]).resolve())
    return data


def load_config(path: str | Path) -> NodeConfig:
    source = Path(path)
    if source.is_dir():
        source = source / CONFIG_NAME
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no node config at {source}; run `almoner node init` first") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read node config {source}: {exc}") from exc
    try:
        return NodeConfig(**_resolve(data, source.parent))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid node config {source}: {where}: {first['msg']}") from exc


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):  # of str: a JSON array of strings is a TOML array
        return json.dumps([str(item) for item in value])
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(path: str | Path, values: dict[str, Any]) -> Path:
    """Write a flat TOML file (plus the [peers] table); validates by loading it back."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Almoner node configuration. ALMONER_<KEY> environment variables override it."]
    for key, value in values.items():
        if key != "peers" and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")
    lines.append("[peers]  # validator public key = base URL")
    for key, url in (values.get("peers") or {}).items():
        lines.append(f"{json.dumps(key)} = {json.dumps(url)}")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_config(target)
    return target
