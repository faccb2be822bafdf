"""The KYB domain's services: applications, status changes, limits, bank accounts.

``corporates.services`` re-exports the names other apps use, so callers keep
importing from there.
"""
