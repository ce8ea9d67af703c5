"""Proof-of-play and compliance reports: the ledger's figures as tables, charts and exported files."""
