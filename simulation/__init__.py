"""`signage simulate`: the real planner, player logic, ingest and ledger on virtual time, with faults injected."""
