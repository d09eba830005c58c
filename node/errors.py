"""The error vocabulary of the protocol, shared by the codec, the contract and the API.

Every rejection a client or a verifier can observe carries a stable snake_case code from
docs/spec/03. Keeping the codes and their HTTP statuses in one table means the API, the
CLI and `verify` can never disagree about what a failure is called.
"""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "malformed": 400,
    "non_canonical": 400,
    "invalid_field": 400,
    "bad_signature": 400,
    "wrong_chain": 400,
    "unknown_type": 400,
    "unknown_signer": 403,
    "signer_suspended": 403,
    "role_not_allowed": 403,
    "key_retired": 403,
    "not_found": 404,
    "duplicate_id": 409,
    "duplicate_tx": 409,
    "proposal_closed": 409,
    "key_in_use": 409,
    "too_large": 413,
    "unknown_party": 422,
    "party_suspended": 422,
    "unknown_campaign": 422,
    "unknown_donation": 422,
    "currency_mismatch": 422,
    "insufficient_funds": 422,
    "restricted_funds": 422,
    "refund_exceeds_unspent": 422,
    "unknown_proposal": 422,
    "proposal_expired": 422,
    "invalid_set_change": 422,
    "invalid_upgrade": 422,
    "busy": 503,
    "timeout": 504,
}


class AlmonerError(Exception):
    """Root of every error this project raises on purpose."""


class ProtocolError(AlmonerError):
    """A rejection with a stable protocol error code (docs/spec/03-transactions.md)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown protocol error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    @property
    def http_status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, {self.details!r})"


class CodecError(ProtocolError):
    """Bytes that are not one canonical protocol object (`malformed`, `non_canonical`,
    `too_large`)."""


def invalid_field(field: str, message: str) -> ProtocolError:
    """The `invalid_field` rejection, always naming the field, as the spec requires."""
    return ProtocolError("invalid_field", f"{field}: {message}", {"field": field})


class StoreError(AlmonerError):
    """The on-disk store cannot be used: wrong schema, wrong chain, corruption, lock held."""
