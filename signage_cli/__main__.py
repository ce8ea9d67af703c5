"""`python -m signage_cli`: the `signage` command without its script."""

from signage_cli import main

main()
