"""Settlement models, kept by sub-domain in packages (ledger/, later netting/, redemption/)."""

from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting

__all__ = ["Account", "AccountKind", "EntryKind", "JournalEntry", "Posting"]
