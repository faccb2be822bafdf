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
