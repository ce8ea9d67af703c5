"""Shared kernel of the Hà Nội signage system: settings, the clock, errors, the wire protocol and signing, and what
every command module shares (`console`). It imports nothing of the other packages; the `signage` command is
assembled in `signage_cli`.

What lives here is needed by both the server and the player agent, except `signage.db`,
which is the server's storage base and needs the `[server]` extra.
"""

__version__ = "0.1.0"
