"""Settlement models, kept by sub-domain in packages (ledger/, later netting/, redemption/)."""

from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from settlement.netting.models import NettingBatch, NettingPair, NettingPosition
from settlement.obligations.models import Obligation

__all__ = [
    "Account",
    "AccountKind",
    "EntryKind",
    "JournalEntry",
    "NettingBatch",
    "NettingPair",
    "NettingPosition",
    "Obligation",
    "Posting",
]

# Mint and redeem (issue 4): deposits, suspense, reserve alerts, redemptions.
from settlement.deposits.models import (  # noqa: E402
    DepositReference,
    InboundWire,
    ReserveAlert,
    SuspenseItem,
)
from settlement.redemptions.models import PayoutDestination, Redemption  # noqa: E402

__all__ += ["DepositReference", "InboundWire", "PayoutDestination", "Redemption", "ReserveAlert", "SuspenseItem"]
