"""Shared kernel of the Hà Nội signage system: settings, the clock, the wire protocol and the CLI.

What lives here is needed by both the server and the player agent, except `signage.db`,
which is the server's storage base and needs the `[server]` extra.
"""

__version__ = "0.1.0"
