"""One settings object for every process, read from SIGNAGE_* variables and a .env file."""

from __future__ import annotations

import json
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_MESSAGE_INTERVAL_DAYS = 3  # the orders' "tối thiểu 03 ngày 01 tin"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNAGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where the database, media store and keys live.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/signage.db. "
        "PostgreSQL: postgresql+psycopg://user:password@host/dbname",
    )
    timezone: str = Field(DEFAULT_TIMEZONE, description="Default timezone for sites that name none.")
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(1883, ge=1, le=65535)
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    jobs: bool = Field(True, description="Run the planning jobs in the server (off for a web-only process).")
    mqtt: bool = Field(True, description="Connect the server to the broker: plans out, proof-of-play in.")
    max_upload_bytes: int = Field(2 * 1024**3, ge=1, description="The largest media file staff may upload.")
    max_body_bytes: int = Field(1024**2, ge=1024, le=2**31,
                                description="The largest request body other than a media upload or a screenshot "
                                            "(JSON, forms); checked while the body streams in, before parsing.")
    db_pool_size: int = Field(20, ge=1, le=500,
                              description="Database connections each server process keeps for web requests; the "
                                          "web threadpool gets as many threads. Background work has its own pool.")
    db_pool_timeout: float = Field(5.0, gt=0, le=120,
                                   description="Seconds a request waits for a free connection before it is answered "
                                               "503 with Retry-After.")
    http_max_pending: int = Field(128, ge=1, le=100_000,
                                  description="Requests one server process works on at once (answered or waiting "
                                              "for a thread); more are answered 503 with Retry-After at once.")
    media_accel_redirect: str | None = Field(
        None, pattern=r"^/[A-Za-z0-9_./-]*/$", max_length=200,
        description="Behind nginx: the internal location (e.g. /_media/) that serves the media store; players' "
                    "downloads are then answered with X-Accel-Redirect and sent by nginx. Unset: the app streams "
                    "them itself.")
    session_hours: int = Field(12, ge=1, le=24 * 30, description="How long a web login lasts.")
    secure_cookies: bool = Field(False, description="Send session cookies over HTTPS only (on behind TLS).")
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For is believed: addresses or networks, comma separated "
                    "(127.0.0.1 for nginx on this machine). Empty: the client is the socket's peer, whatever the "
                    "request says. Login throttling counts failures per client address.")

    offline_notice_minutes: int = Field(
        15, ge=1, le=24 * 60,
        description="Minutes a screen must be dark inside its peak windows (and operating hours) before its unit's "
                    "managers and staff are told, in the app and by e-mail; told again when it is back.")
    offline_notice_parent: bool = Field(
        False, description="Tell the managers and staff of the screen's unit's parent unit too (e.g. the district "
                           "of a ward).")
    message_interval_days: int = Field(
        DEFAULT_MESSAGE_INTERVAL_DAYS, ge=1, le=30,
        description="Days a unit may go without a regular message, for units (and their ancestors) that set none "
                    "of their own: reminded a day before, late in the cadence report after.")
    smtp_host: str | None = Field(None, max_length=255,
                                  description="The mail server notices are sent through; unset: in-app notices only.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_from: str = Field("signage@localhost", max_length=255, description="The From address of notices.")
    smtp_user: str | None = Field(None, max_length=255, description="Login on the mail server, if it wants one.")
    smtp_password: SecretStr | None = Field(None, description="Password of SMTP_USER.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS before logging in.")
    smtp_timeout: float = Field(10.0, gt=0, le=120, description="Seconds to wait for the mail server.")

    pop_retention_months: int = Field(
        13, ge=1, le=1200,
        description="Whole months of proof-of-play kept besides the current one; older plays are deleted by a "
                    "nightly job in small batches (`signage db prune`). The delivery ledger and the hourly "
                    "roll-up, the audit's summary, are kept.")
    plan_retention_days: int = Field(
        90, ge=1, le=36500,
        description="Days a superseded plan version is kept after a newer one replaced it; a player's newest plan "
                    "and the one its status says it holds are never deleted.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as {DEFAULT_TIMEZONE}") from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _address_list(cls, value: Any) -> Any:
        """"127.0.0.1, 10.0.0.0/8" (or a JSON list) from the environment."""
        if isinstance(value, str):
            return json.loads(value) if value.lstrip().startswith("[") else value.replace(",", " ").split()
        return value

    def trusts_proxy(self, address: str) -> bool:
        """Whether `address` is one of the trusted proxies (False for what is not an IP address)."""
        return _in_networks(address, self.trusted_proxies)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'signage.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"


def _in_networks(address: str, networks: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


@lru_cache
def get_settings() -> Settings:
    return Settings()
