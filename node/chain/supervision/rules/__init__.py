"""Every supervision rule, one module each, in the order reports list them."""

from __future__ import annotations

from almoner.node.chain.supervision.rules.audit_opinion import AuditOpinion
from almoner.node.chain.supervision.rules.base import Context, Rule
from almoner.node.chain.supervision.rules.circular_flow import CircularFlow
from almoner.node.chain.supervision.rules.disbursement_without_evidence import (
    DisbursementWithoutEvidence,
)
from almoner.node.chain.supervision.rules.donation_splitting import DonationSplitting
from almoner.node.chain.supervision.rules.idle_restricted_funds import IdleRestrictedFunds
from almoner.node.chain.supervision.rules.overhead_above_limit import OverheadAboveLimit
from almoner.node.chain.supervision.rules.payee_concentration import PayeeConcentration
from almoner.node.chain.supervision.rules.quick_refund import QuickRefund
from almoner.node.chain.supervision.rules.spent_before_confirmation import (
    SpentBeforeConfirmation,
)
from almoner.node.chain.supervision.rules.unconfirmed_donation import UnconfirmedDonation

ALL_RULES: tuple[type[Rule], ...] = (
    UnconfirmedDonation,
    SpentBeforeConfirmation,
    IdleRestrictedFunds,
    OverheadAboveLimit,
    DisbursementWithoutEvidence,
    CircularFlow,
    QuickRefund,
    DonationSplitting,
    PayeeConcentration,
    AuditOpinion,
)

__all__ = ["ALL_RULES", "Context", "Rule"]
