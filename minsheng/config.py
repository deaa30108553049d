"""Settings, validated once at start-up from the environment (MINSHENG_*) and never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MINSHENG_", env_file=None, extra="ignore")

    environment: str = Field("development", description="development | test | production")
    database_url: str = "sqlite:///var/minsheng.db"
    data_dir: Path = Path("var")
    secret_key: str = DEFAULT_SECRET
    model_dir: Path | None = None
    auto_dispatch: bool = True
    embedded_worker: bool = True
    worker_interval_seconds: float = 2.0
    session_hours: float = 12.0
    max_attachment_bytes: int = 10 * 1024 * 1024
    pool_size: int = 10
    request_threads: int = Field(8, ge=1, le=200, description="threads serving sync request handlers")
    intake_batch: int = Field(
        32, ge=1, le=500, description="most intakes committed together by the intake writer (1: one by one)"
    )
    shutdown_grace_seconds: int = Field(
        4,
        ge=0,
        le=60,
        description="on SIGTERM, how long requests in flight may take before streams are cut",
    )
    cookie_secure: bool = Field(
        default_factory=lambda d: d.get("environment") == "production",
        description="cookies only over HTTPS; unset, true in production and false otherwise",
    )
    triage_mode: Literal["inline", "deferred"] = Field(
        "inline",
        description="inline: triage inside the intake transaction; deferred: intake stores the ticket and a "
        "triage job, which the worker (embedded or `minsheng worker run`) takes up moments later",
    )
    triage_max_lag_seconds: float = Field(
        30.0,
        ge=0,
        description="deferred triage in the web process waits while intake is busy, at most this long",
    )

    triage_interval_seconds: float = Field(
        0.2, gt=0, le=3600, description="a worker process's seconds between looks for triage jobs (deferred)"
    )
    # One worker pass fires the due timers, then delivers at most this much of the outbox; a longer outbox is
    # left to the next pass, which starts at once and fires the timers come due meanwhile first.
    worker_notify_batch: int = Field(
        200, ge=1, le=10_000, description="most outbox messages one worker pass delivers"
    )
    worker_notify_seconds: float = Field(
        5.0,
        gt=0,
        le=600,
        description="most seconds one worker pass spends delivering the outbox (a slow gateway must not "
        "hold back the timers); the message being sent is finished",
    )
    login_failure_keep_days: int = Field(
        30, ge=1, le=3650, description="days failed logins are kept; the worker deletes older ones"
    )
    # The follow-up desk (回访, docs/METRICS.md "Follow-up"): which closed tickets staff call, by kind, as a share
    # from 0 (none: the rating SMS only) to 1 (all); and the rating a ticket gets when nobody answered.
    followup_sample: dict[str, float] = Field(
        default_factory=lambda: {
            "complaint": 1.0,
            "report": 1.0,
            "help": 1.0,
            "consultation": 0.2,
            "suggestion": 0.5,
            "praise": 0.0,
        },
        description="share of closed tickets of each kind on the follow-up desk (JSON)",
    )
    followup_default_days: float | None = Field(
        7.0, gt=0, le=365, description="days after closing without a rating until the default rating"
    )
    followup_default_rating: str = Field(
        "satisfied", pattern=r"^(satisfied|basically_satisfied)$", description="the default rating"
    )
    # Notifications: the hotline's name in texts, the channels' gateways, delivery retries, the time-limit preset.
    hotline_name: str = "12345"
    rating_url: str = ""
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    sms_sign: str | None = None
    wecom_webhook_url: str | None = None
    dingtalk_webhook_url: str | None = None
    dingtalk_secret: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "minsheng@localhost"
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    send_timeout_seconds: float = 10.0
    retry_max_attempts: int = 8
    retry_base_seconds: float = 30.0
    clock_preset: str = "demo"
    # Open311 GeoReport v2 (issue 16, docs/INTEGRATIONS.md).
    open311_jurisdiction_id: str = Field(
        "",
        max_length=100,
        description="the city's Open311 jurisdiction_id: a request naming another gets 404; empty: any is "
        "accepted (one jurisdiction per server)",
    )
    open311_contact: str = Field(
        "", max_length=300, description="discovery's contact (who runs the interface)"
    )
    open311_key_service: str = Field(
        "", max_length=300, description="discovery's key_service: where an integration asks for an API key"
    )
    open311_base_url: str = Field(
        "",
        max_length=300,
        description="public address of the server (https://12345.example.gov.cn) for discovery and media_url; "
        "empty: the address the request came to",
    )
    open311_publish: Literal["consented", "all"] = Field(
        "consented",
        description="which tickets GET requests shows: consented (those taken in through Open311 and those "
        "whose citizen agreed to publication) or all; never a confidential one",
    )
    open311_key_limit: str = Field(
        default_factory=lambda d: "10000/minute" if d.get("environment") == "test" else "30/minute;2000/day",
        description="POSTs (requests, updates) per Open311 API key, in the limits library's notation",
    )
    open311_read_limit: str = Field(
        default_factory=lambda d: (
            "100000/minute" if d.get("environment") == "test" else "120/minute;5000/hour"
        ),
        description="Open311 GETs per client address, same notation",
    )
    # Abuse limits (issue 14). Counters live in the database, so every API process on one PostgreSQL shares them.
    # Unset, a limit takes its production value, except with environment=test, where it is generous (tests log
    # in and submit many times from one address); a value given explicitly always wins.
    login_max_failures: int = Field(
        default_factory=lambda d: 10_000 if d.get("environment") == "test" else 5,
        ge=1,
        description="wrong passwords for one username within login_failure_window_seconds that lock it",
    )
    login_failure_window_seconds: int = Field(
        900,
        ge=1,
        description="the window (seconds) in which failed logins are counted, per username and address",
    )
    login_lockout_seconds: int = Field(
        900,
        ge=1,
        description="how long a locked username answers 429 (with Retry-After), even to the right password",
    )
    login_address_max_failures: int = Field(
        default_factory=lambda d: 100_000 if d.get("environment") == "test" else 30,
        ge=1,
        description="failed logins from one client address within login_failure_window_seconds after which "
        "that address gets 429 for every login until the window ends",
    )
    public_submit_limit: str = Field(
        default_factory=lambda d: "10000/minute" if d.get("environment") == "test" else "10/minute;100/hour",
        description="citizens' submissions (POST /api/v1/public/tickets) per client address, in the limits "
        "library's notation ('10/minute;100/hour': every part must hold)",
    )
    public_track_limit: str = Field(
        default_factory=lambda d: "10000/minute" if d.get("environment") == "test" else "30/minute;300/hour",
        description="look-ups with a query code (track and rate under /api/v1/public) per client address, "
        "same notation",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="largest request body (JSON, forms) in bytes; larger ones get 413 before they are read",
    )
    multipart_margin_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="a multipart body (an upload) may be max_attachment_bytes plus this much (fields, headers)",
    )

    # Measures (issue 15): the choices cities make differently (docs/METRICS.md, "Choices"). None of them needs a
    # rebuild of the daily facts: they apply when facts are turned into figures. Dicts are JSON in the environment.
    measures_satisfaction_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "satisfied": 1.0,
            "basically_satisfied": 1.0,
            "basically_dissatisfied": 0.0,
            "dissatisfied": 0.0,
        },
        description="满意率: the weight of each of the four ratings (满意+基本满意 by default)",
    )
    measures_dissatisfaction_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "satisfied": 0.0,
            "basically_satisfied": 0.0,
            "basically_dissatisfied": 1.0,
            "dissatisfied": 1.0,
        },
        description="不满意率: the weight of each of the four ratings",
    )
    measures_resolved_ratings: list[str] = Field(
        default_factory=lambda: ["satisfied", "basically_satisfied"],
        description="解决率: the ratings that count a ticket as solved (the follow-up asks no separate question)",
    )
    measures_complaint_includes_dissatisfied: bool = Field(
        False,
        description="投诉率: also count a dissatisfied rating as a complaint (not only a repeat after close)",
    )
    measures_working_time: bool = Field(
        False, description="average times in working time of the calendar instead of natural time"
    )
    measures_composite_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "sign_rate": 0.25,
            "feedback_rate": 0.25,
            "completion_rate": 0.25,
            "satisfaction_rate": 0.25,
        },
        description="the composite score's weight per rate (default: 黔南's four indices, equal weights)",
    )
    measures_min_tickets: int = Field(
        30, ge=0, description="a unit, area … with fewer tickets behind a figure is marked few and not ranked"
    )
    # Partners: 110 and peer hotlines (issue 16, docs/INTEGRATIONS.md "Partners").
    partner_signature_tolerance_seconds: int = Field(
        300, ge=10, le=3600, description="how far a partner message's signed timestamp may be from our clock"
    )
    partner_ack_warn_minutes: int = Field(
        15, ge=1, description="default for a new partner: minutes without acknowledgement before a warning"
    )
    partner_ack_escalate_minutes: int = Field(
        30, ge=2, description="default for a new partner: minutes without acknowledgement before escalation"
    )

    # Channel adapters (issue 16, docs/INTEGRATIONS.md "Channels"). A channel whose secret is unset refuses every
    # inbound message (403): nothing is taken in unsigned.
    channel_sms_secret: str | None = Field(
        None, description="shared secret of the SMS gateway: HMAC-SHA256 over the timestamp and the raw body"
    )
    channel_calls_secret: str | None = Field(
        None, description="shared secret of the telephony system's call-record webhook (same HMAC scheme)"
    )
    channel_signature_max_age_seconds: int = Field(
        300, ge=10, le=86400, description="a signed inbound request older or newer than this is refused"
    )
    wechat_token: str | None = Field(
        None, description="the WeChat official account's server token (公众号 服务器配置 → Token)"
    )
    imap_host: str | None = Field(
        None, description="the hotline's mailbox server (IMAP); unset: no e-mail channel"
    )
    imap_port: int = Field(993, ge=1, le=65535)
    imap_ssl: bool = Field(
        True, description="IMAP over TLS (port 993); false: plain IMAP (a loopback test server)"
    )
    imap_user: str = ""
    imap_password: str = ""
    imap_folder: str = Field("INBOX", max_length=200)
    imap_poll_seconds: float = Field(60.0, ge=5, description="how often the worker reads the mailbox")
    imap_batch: int = Field(50, ge=1, le=1000, description="mails read per poll at most")
    wechat_app_id: str = Field("", max_length=64, description="the official account's AppID (客服消息)")
    wechat_app_secret: str | None = Field(
        None, description="the official account's AppSecret; unset: no WeChat messages from the outbox"
    )
    wechat_api_base: str = Field(
        "https://api.weixin.qq.com/cgi-bin/", description="WeChat's API (or the city's egress proxy to it)"
    )
    wechat_aes_key: str | None = Field(
        None, min_length=43, max_length=43, description="the account's EncodingAESKey (安全模式 / 兼容模式)"
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET:
            raise ValueError("MINSHENG_SECRET_KEY must be set in production")
        return self

    @model_validator(mode="after")
    def _models_in_data_dir(self) -> Settings:
        # `minsheng demo seed` trains into <data_dir>/models: a server on the same data dir loads it unasked.
        if self.model_dir is None and (self.data_dir / "models").is_dir():
            self.model_dir = self.data_dir / "models"
        return self

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"
