"""The lengths of what travels on the wire and lands in the database: one number for both.

The wire models (`signage.protocol`) bound each field with these, and the tables that store them
(`scheduler.models`, `campaigns.models`) size their columns with the same: a value the wire lets through always
fits its column. (A campaign id of 64 characters once passed the wire's 255 and failed PostgreSQL's whole ingest
transaction on a column of 63, so the batch was never acked and its good records never committed.)
"""

from __future__ import annotations

ID_LENGTH = 63  # ids staff and files give: organisations, sites, screens (= player ids), campaigns, groups, alerts
PLAY_ID_LENGTH = 64  # a proof-of-play record's id, made by the player
SPOT_ID_LENGTH = 255  # a spot's id (the planner's are 32 characters; an alert's play carries the alert's id)
SHA256_LENGTH = 64  # media and plan versions: sha256 in hex
VERSION_LENGTH = 64  # a plan version as a player reports it, a software version
REASON_LENGTH = 500  # why a play failed, why a plan or command was refused
TERM_LENGTH = 16  # kind, status, state: words of a fixed vocabulary
NOTICE_SUBJECT_LENGTH = 255  # a notice's subject, its e-mail's too
NOTICE_LINK_LENGTH = 255  # the page a notice is about: a path of the web UI

__all__ = ["ID_LENGTH", "PLAY_ID_LENGTH", "REASON_LENGTH", "SHA256_LENGTH", "SPOT_ID_LENGTH", "TERM_LENGTH",
           "VERSION_LENGTH"]
