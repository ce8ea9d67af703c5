"""The central service: app assembly, storage, the planner, jobs, MQTT distribution, ingest, reports."""
