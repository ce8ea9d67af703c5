"""Tables of what staff define. Invariants are checked where data enters (files, API), not here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
)
from sqlalchemy import false as sa_false
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaigns.kinds import (
    AlertKind,
    AlertSeverity,
    AlertStatus,
    CampaignStatus,
    FieldKind,
    OrgKind,
    Orientation,
    ReportFigure,
    Role,
    ScreenKind,
    SiteKind,
    SubmissionStatus,
    WindowPolicy,
    effective_international_audience,
    effective_operating_hours,
    effective_peak_windows,
)
from campaigns.windows import WeekSchedule
from media.models import MediaAsset
from signage.db import Base, UTCDateTime, enum_column
from signage.limits import ID_LENGTH, TERM_LENGTH


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[OrgKind] = mapped_column(enum_column(OrgKind))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    # "/hn/hn-hadong/hn-hadong-phula/": a subtree is every path with this prefix.
    path: Mapped[str] = mapped_column(String(1024), index=True)
    # The unit's own rule: its staff's alerts go out only once its head (or a manager) approved them.
    alerts_need_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    # Days it may go without a regular message (campaigns/message_rhythm.py); NULL: its nearest ancestor's, else
    # the server's SIGNAGE_MESSAGE_INTERVAL_DAYS.
    message_interval_days: Mapped[int | None] = mapped_column(Integer)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id])


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[SiteKind] = mapped_column(enum_column(SiteKind))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    # Week schedules as day-spec mappings; NULL means the site kind's defaults.
    operating_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    peak_windows: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # Retired: no longer in use, its screens with it; kept for the history and proof-of-play that name it.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Travellers from abroad: a creative's language versions play in turn here. NULL means the site kind's default.
    international_audience: Mapped[bool | None] = mapped_column(Boolean)

    organisation: Mapped[Organisation] = relationship()
    screens: Mapped[list[Screen]] = relationship(back_populates="site", order_by="Screen.id")

    def effective_operating_hours(self) -> WeekSchedule:
        return effective_operating_hours(self.kind, self.operating_hours)

    def effective_peak_windows(self) -> WeekSchedule:
        return effective_peak_windows(self.kind, self.peak_windows)

    def effective_international_audience(self) -> bool:
        return effective_international_audience(self.kind, self.international_audience)


screen_group_members = Table(
    "screen_group_members",
    Base.metadata,
    Column("group_id", ForeignKey("screen_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("screen_id", ForeignKey("screens.id", ondelete="CASCADE"), primary_key=True),
)


class Screen(Base):
    """One screen (or loudspeaker) and its player: the screen's id is the player id."""

    __tablename__ = "screens"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[ScreenKind] = mapped_column(enum_column(ScreenKind))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    orientation: Mapped[Orientation | None] = mapped_column(enum_column(Orientation))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Retired: taken out for good (never planned again), kept for the history and proof-of-play that name it.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship(back_populates="screens")
    groups: Mapped[list[ScreenGroup]] = relationship(
        secondary=screen_group_members, back_populates="screens", order_by="ScreenGroup.id"
    )

    @property
    def resolution(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None

    @hybrid_property
    def in_service(self) -> bool:
        """Planned, targeted and counted: enabled and not retired."""
        return self.enabled and self.retired_at is None

    @in_service.inplace.expression
    @classmethod
    def _in_service_condition(cls) -> ColumnElement[bool]:
        return and_(cls.enabled.is_(True), cls.retired_at.is_(None))


class ScreenGroup(Base):
    __tablename__ = "screen_groups"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)

    screens: Mapped[list[Screen]] = relationship(
        secondary=screen_group_members, back_populates="groups", order_by="Screen.id"
    )


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    plays_per_day: Mapped[int] = mapped_column(Integer, default=10)
    window_policy: Mapped[WindowPolicy] = mapped_column(enum_column(WindowPolicy), default=WindowPolicy.peak)
    # Only for window_policy == explicit: a day-spec mapping like the sites' peak windows.
    explicit_windows: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), default=CampaignStatus.draft)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The approval workflow (user names; NULL for campaigns imported from files).
    created_by: Mapped[str | None] = mapped_column(String(64))
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)

    organisation: Mapped[Organisation] = relationship()
    creatives: Mapped[list[CampaignCreative]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="CampaignCreative.position"
    )
    targets: Mapped[list[CampaignTarget]] = relationship(
        cascade="all, delete-orphan", order_by="(CampaignTarget.kind, CampaignTarget.ref)"
    )
    overrides: Mapped[list[FrequencyOverride]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="FrequencyOverride.id"
    )


class CampaignCreative(Base):
    __tablename__ = "campaign_creatives"
    __table_args__ = (ForeignKeyConstraint(["media_sha256", "media_organisation_id"],
                                           ["media_library.sha256", "media_library.organisation_id"]),)

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Rows sharing a slot are versions of one creative (by language, by screen format): one of them plays where
    # the creative is due (scheduler/planner.py). A creative of one version has its position as its slot.
    slot: Mapped[int] = mapped_column(Integer, default=lambda context: context.get_current_parameters()["position"])
    language: Mapped[str | None] = mapped_column(String(8))  # "vi", "en"...; NULL: for any audience
    # The library row used: the file, as the unit that holds it has it (media/models.py).
    media_sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_organisation_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    # How long one play lasts: the media's own length, or the display time chosen for an image.
    duration_ms: Mapped[int] = mapped_column(Integer)

    campaign: Mapped[Campaign] = relationship(back_populates="creatives")
    media: Mapped[MediaAsset] = relationship()


class CampaignTarget(Base):
    """One line of a campaign's targeting: an organisation subtree, a site kind, a site, a screen or a group."""

    __tablename__ = "campaign_targets"
    __table_args__ = (UniqueConstraint("campaign_id", "kind", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # organisation | site_kind | site | screen | group
    ref: Mapped[str] = mapped_column(String(ID_LENGTH))


class FrequencyOverride(Base):
    """A head of unit's raise of a campaign's plays per day on the screens of their organisation or site."""

    __tablename__ = "frequency_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"))
    plays_per_day: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(255))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)

    campaign: Mapped[Campaign] = relationship(back_populates="overrides")


class Alert(Base):
    """A message to the public on a unit's screens: a ticker (info) or a takeover (urgent), from start to expiry.

    `targets` is the campaign file's targeting shape ({"organisations": [...], "sites": [...], ...}), always
    inside the issuing organisation's subtree.
    """

    __tablename__ = "alerts"
    __table_args__ = (ForeignKeyConstraint(["media_sha256", "media_organisation_id"],
                                           ["media_library.sha256", "media_library.organisation_id"]),
                      # The spoken file may be deleted from the library: the alert then no longer reaches speakers.
                      ForeignKeyConstraint(["spoken_sha256", "spoken_organisation_id"],
                                           ["media_library.sha256", "media_library.organisation_id"],
                                           ondelete="SET NULL"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    severity: Mapped[AlertSeverity] = mapped_column(enum_column(AlertSeverity))
    kind: Mapped[AlertKind] = mapped_column(enum_column(AlertKind))
    media_sha256: Mapped[str | None] = mapped_column(String(64))  # with media_organisation_id, the library row
    media_organisation_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[AlertStatus] = mapped_column(enum_column(AlertStatus))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)
    stopped_by: Mapped[str | None] = mapped_column(String(64))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A text alert to loudspeakers: its text read aloud (media/speech.py), the library row as for media_*; NULL when
    # no speaker is targeted or the speech could not be made (the speakers then do not get it).
    spoken_sha256: Mapped[str | None] = mapped_column(String(64))
    spoken_organisation_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))

    organisation: Mapped[Organisation] = relationship()
    media: Mapped[MediaAsset | None] = relationship(foreign_keys=[media_sha256, media_organisation_id])
    spoken: Mapped[MediaAsset | None] = relationship(foreign_keys=[spoken_sha256, spoken_organisation_id])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Where notices (a screen dark in its peak hours, back again) are e-mailed; none: in the app only.
    email: Mapped[str | None] = mapped_column(String(254))
    notice_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())  # once a day

    organisation: Mapped[Organisation] = relationship()


class UserSession(Base):
    """A browser's login: the cookie carries a random token; only its sha256 is stored."""

    __tablename__ = "user_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for scripts and the API; only its sha256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """A failed login, kept for throttling: too many for one user name in a while and logins wait."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEntry(Base):
    """Who changed what, when, and the values before and after (campaigns, overrides, users, sites...)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity_kind: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(255), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


# -- reporting rounds (campaigns/reporting_rounds.py) ------------------------------------------------------------

class ReportSeries(Base):
    """A unit's reports asked in rounds of its subtree (e.g. Ba Vì's iHanoi reports, four rounds): the form's
    fields, and whether the units' heads approve a submission before it counts."""

    __tablename__ = "report_series"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()
    fields: Mapped[list[ReportField]] = relationship(order_by="ReportField.position", cascade="all, delete-orphan")
    rounds: Mapped[list[ReportRound]] = relationship(order_by="ReportRound.deadline", cascade="all, delete-orphan",
                                                     back_populates="series")


class ReportField(Base):
    """One field of a series' form: typed by the unit (`kind`, bounds, required) or a system `figure`."""

    __tablename__ = "report_fields"
    __table_args__ = (UniqueConstraint("series_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(ForeignKey("report_series.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(ID_LENGTH))
    label: Mapped[str] = mapped_column(String(255))
    kind: Mapped[FieldKind] = mapped_column(enum_column(FieldKind))
    figure: Mapped[ReportFigure | None] = mapped_column(enum_column(ReportFigure))
    minimum: Mapped[float | None] = mapped_column(Float)
    maximum: Mapped[float | None] = mapped_column(Float)
    required: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportRound(Base):
    """A round of a series: the period it reports on (local dates, inclusive) and its deadline (an instant)."""

    __tablename__ = "report_rounds"
    __table_args__ = (UniqueConstraint("series_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(ForeignKey("report_series.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    series: Mapped[ReportSeries] = relationship(back_populates="rounds")


class RoundSubmission(Base):
    """A unit's answer to a round: its typed values, the system figures frozen when it submitted, its status."""

    __tablename__ = "round_submissions"
    __table_args__ = (UniqueConstraint("round_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("report_rounds.id", ondelete="CASCADE"))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)  # field key -> typed value
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))  # frozen at submission
    status: Mapped[SubmissionStatus] = mapped_column(enum_column(SubmissionStatus))
    saved_by: Mapped[str] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    return_note: Mapped[str | None] = mapped_column(Text)

    round: Mapped[ReportRound] = relationship()
    organisation: Mapped[Organisation] = relationship()


class RoundReminder(Base):
    """A reminder told to a unit about a round (3 days before, 1 day before, late): once each."""

    __tablename__ = "round_reminders"

    round_id: Mapped[int] = mapped_column(ForeignKey("report_rounds.id", ondelete="CASCADE"), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(TERM_LENGTH), primary_key=True)
    told_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MobileRoundPlan(Base):
    """A unit's plan of mobile loudspeaker rounds (a vehicle with a loudspeaker along the streets): so many rounds a
    day from `first_day` to `last_day`, each to start inside the day's peak windows (campaigns/mobile_rounds.py)."""

    __tablename__ = "mobile_round_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    rounds_per_day: Mapped[int] = mapped_column(Integer)
    first_day: Mapped[date] = mapped_column(Date)  # local dates in `timezone`, inclusive
    last_day: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    # The windows a round must start in, as a day-spec mapping; kept as they were when planned (the unit's ward
    # office's peaks by default), so a later change of the site's hours does not rewrite past days' figures.
    peak_windows: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(1000))  # the route, the vehicle, who drives
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()

    def effective_peak_windows(self) -> WeekSchedule:
        return WeekSchedule.from_spec(self.peak_windows)


class MobileRound(Base):
    """One mobile loudspeaker round as staff recorded it, from the roadside or afterwards."""

    __tablename__ = "mobile_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(1000))
    recorded_by: Mapped[str] = mapped_column(String(64))  # a user name, as alerts' created_by
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()
