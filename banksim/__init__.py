"""banksim: a stand-in for the custodian bank, speaking Stripe's wire format.

It runs as its own process (``python -m banksim.server``) with its own state
(SQLite under var/banksim/, or in memory) and never imports the platform's
code: the platform reaches it only over HTTP, so that any Stripe-compatible
server could take its place. Only the standard library is used.
"""
