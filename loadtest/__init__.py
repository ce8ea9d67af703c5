"""`signage loadtest`: thousands of simulated players, speaking the real wire contract on asyncio, against the
real Mosquitto and the real server; measures re-planning, proof-of-play ingest and a reconnection storm, and
checks that no record was lost or doubled."""
