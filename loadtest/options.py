"""What a load test run is asked to do, validated once at the command's boundary."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from signage.protocol import MAX_BATCH


class LoadtestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    players: int = Field(2000, ge=1, le=100_000)
    processes: int = Field(2, ge=1, le=64, description="worker processes the players are spread over")
    ingest_workers: int = Field(0, ge=0, le=16, description="extra `signage ingest` processes beside the server")
    database_url: str | None = Field(None, description="an empty database; default: SQLite in the work directory")
    work_dir: Path | None = Field(None, description="default: a new temporary directory, removed at the end")
    keep: bool = False
    per_site: int = Field(50, ge=1, le=10_000, description="screens per generated site")
    connect_spread_s: float = Field(5.0, ge=0, le=600, description="the players' first connections spread over this")
    sync_timeout_s: float = Field(300, gt=0)
    replan_timeout_s: float = Field(120, gt=0)
    ingest_seconds: float = Field(30, gt=0, le=3600)
    batch: int = Field(50, ge=1, le=MAX_BATCH, description="records per proof-of-play batch")
    window: int = Field(1, ge=1, le=100, description="batches a player keeps awaiting their ack")
    drain_timeout_s: float = Field(120, gt=0)
    storm_timeout_s: float = Field(120, gt=0)
    resend_after_s: float = Field(30, gt=0, description="a batch unacknowledged this long is sent again")
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(8, gt=0)
    status_every_s: float = Field(30, gt=0)
    target_replan_s: float = Field(10, gt=0)
    target_ingest_per_s: float = Field(5000, ge=0)
    target_storm_s: float = Field(30, gt=0)
    json_path: Path | None = None

    @field_serializer("database_url")
    def _without_password(self, url: str | None) -> str | None:
        from signage.db import shown_url  # server-only, and so is the report that shows the options

        return None if url is None else shown_url(url)  # the report (printed, written as JSON) names no password

    @model_validator(mode="after")
    def _consistent(self) -> LoadtestOptions:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self
