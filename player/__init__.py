"""The player agent that runs on each screen PC.

It installs without the server's packages and imports nothing from `campaigns`, `media` or
`scheduler`: only the shared kernel in `signage` (settings, clock, wire protocol).
"""
