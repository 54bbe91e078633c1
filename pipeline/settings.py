"""Settings: read from the environment once, frozen, passed in.

Every field names its environment variable. Defaults are safe for the embedded
default (everything on loopback); production sets `KAFKA_BOOTSTRAP_SERVERS`,
`HERALD_JWT_SECRET` (or `HERALD_JWKS_FILE`) and the provider credentials.

No key that verifies a provider's webhook has a default (a default would be public,
so anyone could sign events with it): a receiver whose secret is unset is off
(`pipeline.http.webhooks.receivers_off`). `herald up` and the test stack make the
secrets per run (`pipeline.devstack.secrets`) and hand them to simulator and worker.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.envfields import env_field, values_from_env
from pipeline.exceptions import ConfigError

__all__ = ["PROJECT_ROOT", "Settings"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """All of Herald's configuration. Build it with `Settings.from_env()`."""

    # Where Herald keeps broker data, worker state and fetched jars.
    home: Path = env_field("HERALD_HOME", Path(".herald"))
    # An existing cluster; unset means the local broker on `kafka_port`.
    bootstrap_servers: str = env_field("KAFKA_BOOTSTRAP_SERVERS", "")
    # Local broker: Apache Kafka version, ports, where the jars are cached.
    kafka_version: str = env_field("HERALD_KAFKA_VERSION", "4.4.0")
    kafka_port: int = env_field("HERALD_KAFKA_PORT", 9092)
    kafka_controller_port: int = env_field("HERALD_KAFKA_CONTROLLER_PORT", 9093)
    kafka_dist: Path | None = env_field("HERALD_KAFKA_DIST", None)
    kafka_heap: str = env_field("HERALD_KAFKA_HEAP", "512m")
    # Topic catalog and schemas (the source of truth).
    topics_file: Path = env_field("HERALD_TOPICS_FILE", PROJECT_ROOT / "topics.yaml")
    schemas_dir: Path = env_field("HERALD_SCHEMAS_DIR", PROJECT_ROOT / "schemas")
    templates_dir: Path = env_field(
        "HERALD_TEMPLATES_DIR", PROJECT_ROOT / "pipeline" / "shipped_templates"
    )
    # The tenant's default locale (BCP 47): a message is rendered in the request's locale,
    # else the user's profile's, else this; each also tried by its language (es-MX: es).
    default_locale: str = env_field("HERALD_DEFAULT_LOCALE", "en")
    tenant_locales: str = env_field("HERALD_TENANT_LOCALES", "")  # "acme=es-MX,globex=en"
    # Worker.
    app_id: str = env_field("HERALD_APP_ID", "herald")
    worker_datadir: Path | None = env_field("HERALD_WORKER_DATADIR", None)
    table_store: str = env_field("HERALD_TABLE_STORE", "rocksdb://")
    # One RocksDB memory budget for all the worker's table databases (5 tables x 6
    # partitions): a shared cache (blocks read, memtables charged to it) and a write
    # buffer manager that flushes the largest memtable when all of them pass their budget.
    # Faust's defaults were 64 MiB x 3 write buffers and a 2 GiB cache per database (issue 10).
    rocksdb_memory_mb: int = env_field("HERALD_ROCKSDB_MEMORY_MB", 64)
    rocksdb_write_buffer_mb: int = env_field("HERALD_ROCKSDB_WRITE_BUFFER_MB", 32)
    # glibc's malloc (pipeline.heap): at most this many arenas (0: glibc's default of eight
    # per core), and free pages given back every so many seconds (0: never).
    malloc_arena_max: int = env_field("HERALD_MALLOC_ARENA_MAX", 2)
    malloc_trim_s: float = env_field("HERALD_MALLOC_TRIM_INTERVAL", 30.0)
    processing_guarantee: str = env_field("HERALD_PROCESSING_GUARANTEE", "at_least_once")
    # Scale-out: standby copies of each table partition kept by other workers of the group,
    # so the one that takes a partition over has its table already (0: none).
    table_standby_replicas: int = env_field("HERALD_TABLE_STANDBY_REPLICAS", 1)
    # Where the other workers of the group reach this worker's HTTP (Faust's canonical_url,
    # advertised with the assignment); empty: http://{HERALD_HTTP_HOST}:{the worker's port},
    # the machine's host name when HERALD_HTTP_HOST listens on every address (0.0.0.0).
    advertised_url: str = env_field("HERALD_ADVERTISED_URL", "")
    # How long a worker's door waits for the worker owning a user's preferences to answer
    # the opted-out check; unanswered, it accepts and the pipeline blocks the message.
    peer_check_timeout_s: float = env_field("HERALD_PEER_CHECK_TIMEOUT", 1.0)
    # Read-your-writes: how long a GET of a message absent from the state waits for the
    # projection to fold its status partition up to where the broker's end was at the
    # GET (the door writes PENDING before its 202); past it, 503 `state-behind`, never 404.
    read_catch_up_s: float = env_field("HERALD_READ_CATCH_UP_TIMEOUT", 10.0)
    session_timeout_s: float = env_field("HERALD_SESSION_TIMEOUT", 10.0)
    heartbeat_interval_s: float = env_field("HERALD_HEARTBEAT_INTERVAL", 1.0)
    rebalance_timeout_s: float = env_field("HERALD_REBALANCE_TIMEOUT", 10.0)
    idempotency_ttl_s: int = env_field("HERALD_IDEMPOTENCY_TTL", 7 * 24 * 3600)
    # Resilience: the retry policy's delays are multiplied by this (tests shrink them).
    retry_scale: float = env_field("HERALD_RETRY_SCALE", 1.0)
    breaker_threshold: int = env_field("HERALD_BREAKER_THRESHOLD", 5)
    breaker_probe_s: float = env_field("HERALD_BREAKER_PROBE_INTERVAL", 60.0)
    scheduler_tick_s: float = env_field("HERALD_SCHEDULER_TICK", 0.5)
    # Micro-batching to batch APIs (SendGrid): at most this many per call, waiting at
    # most this long for a batch to fill (a lone message waits no longer than that).
    batch_max: int = env_field("HERALD_BATCH_MAX", 100)
    batch_window_s: float = env_field("HERALD_BATCH_WINDOW", 0.02)
    # Provider calls in flight per send lane (one at a time per recipient key, in order);
    # a send lane also takes up to this many records per batch.
    send_concurrency: int = env_field("HERALD_SEND_CONCURRENCY", 256)
    # How long a stage waits for the broker to acknowledge what a batch produced before
    # it gives the batch up (dead letter) or, failing that, stops the worker.
    ack_timeout_s: float = env_field("HERALD_ACK_TIMEOUT", 120.0)
    # Priorities whose in-doubt sends are sent again after a crash (comma-separated);
    # the others are reported SENT with inDoubt and not sent again. See Guarantees.
    resend_in_doubt: str = env_field("HERALD_RESEND_IN_DOUBT", "high,standard")
    # Provider rate limits, messages per second: "sendgrid=600,twilio=100"; unlisted: none.
    rate_limits: str = env_field(
        "HERALD_RATE_LIMITS",
        "sendgrid=600,smtp=50,twilio=100,vonage=30,whatsapp-cloud=80,twilio-whatsapp=80,fcm=600",
    )
    log_level: str = env_field("HERALD_LOG_LEVEL", "warn")
    # The public HTTP API: `herald ingress` serves it (a worker alone serves it inline).
    http_host: str = env_field("HERALD_HTTP_HOST", "127.0.0.1")
    http_port: int = env_field("HERALD_HTTP_PORT", 8080)
    # The worker's own HTTP port behind an ingress; 0: the worker serves HERALD_HTTP_PORT.
    worker_http_port: int = env_field("HERALD_WORKER_HTTP_PORT", 0)
    # Where an ingress reaches a worker's HTTP (GETs, Prefer: wait, the idempotency check);
    # empty: http://127.0.0.1:{HERALD_WORKER_HTTP_PORT}.
    worker_url: str = env_field("HERALD_WORKER_URL", "")
    # How long an ingress waits for the worker's idempotency check of a client-chosen id
    # before it accepts anyway (ingest then catches a conflicting body).
    worker_check_timeout_s: float = env_field("HERALD_WORKER_CHECK_TIMEOUT", 0.2)
    http_max_body: int = env_field("HERALD_HTTP_MAX_BODY", 256 * 1024)
    # Per-tenant quota on POST /v1/notifications, per worker: requests per second and the
    # burst allowed at once (429 with Retry-After beyond it); a rate of 0 turns it off.
    tenant_rate: float = env_field("HERALD_TENANT_RATE", 200.0)
    tenant_burst: float = env_field("HERALD_TENANT_BURST", 400.0)
    # Per-tenant exceptions: "acme=50:100,beta=5" (rate:burst; burst defaults to 2 x rate).
    tenant_quotas: str = env_field("HERALD_TENANT_QUOTAS", "")
    jwt_secret: str = env_field("HERALD_JWT_SECRET", "")
    jwks_file: Path | None = env_field("HERALD_JWKS_FILE", None)
    jwt_issuer: str = env_field("HERALD_JWT_ISSUER", "")
    jwt_audience: str = env_field("HERALD_JWT_AUDIENCE", "")
    # Provider simulator.
    sim_host: str = env_field("HERALD_SIM_HOST", "127.0.0.1")
    sim_port: int = env_field("HERALD_SIM_PORT", 9300)
    # Providers: SendGrid v3 (email).
    sendgrid_base_url: str = env_field("SENDGRID_BASE_URL", "http://127.0.0.1:9300")
    sendgrid_api_key: str = env_field("SENDGRID_API_KEY", "sim-sendgrid-key")
    email_from: str = env_field("HERALD_EMAIL_FROM", "notifications@herald.test")
    email_from_name: str = env_field("HERALD_EMAIL_FROM_NAME", "Herald")
    provider_timeout_s: float = env_field("HERALD_PROVIDER_TIMEOUT", 30.0)
    # SendGrid event webhook key: base64 DER SubjectPublicKeyInfo (or PEM), ECDSA P-256.
    # No default: unset, the SendGrid webhook receiver is off.
    sendgrid_webhook_public_key: str = env_field("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
    # Providers: SMTP relay (email, secondary). The relay's host.
    smtp_host: str = env_field("SMTP_HOST", "127.0.0.1")
    # The relay's port (the simulator's SMTP sink by default).
    smtp_port: int = env_field("SMTP_PORT", 2525)
    # SMTP AUTH user name; empty means no AUTH.
    smtp_username: str = env_field("SMTP_USERNAME", "")
    # SMTP AUTH password.
    smtp_password: str = env_field("SMTP_PASSWORD", "")
    # Require STARTTLS ("1") or never use it ("0").
    smtp_starttls: bool = env_field("SMTP_STARTTLS", False)
    # Providers: Twilio Programmable Messaging (SMS primary, WhatsApp secondary). API base URL.
    twilio_base_url: str = env_field("TWILIO_BASE_URL", "http://127.0.0.1:9300")
    # Account SID: HTTP Basic user and part of the API path.
    twilio_account_sid: str = env_field("TWILIO_ACCOUNT_SID", "ACsimulator" + "0" * 23)
    # Auth token: HTTP Basic password and the key of X-Twilio-Signature on callbacks.
    # No default: unset, the Twilio webhook receiver is off (and Twilio refuses sends).
    twilio_auth_token: str = env_field("TWILIO_AUTH_TOKEN", "")
    # Sender number for SMS (E.164).
    twilio_from: str = env_field("TWILIO_FROM", "+15005550006")
    # Sender number for WhatsApp through Twilio (E.164; the whatsapp: prefix is added).
    twilio_whatsapp_from: str = env_field("TWILIO_WHATSAPP_FROM", "+14155238886")
    # Providers: Vonage SMS API (SMS secondary). API base URL.
    vonage_base_url: str = env_field("VONAGE_BASE_URL", "http://127.0.0.1:9300")
    # API key (also echoed in delivery receipts).
    vonage_api_key: str = env_field("VONAGE_API_KEY", "simkey01")
    # API secret.
    vonage_api_secret: str = env_field("VONAGE_API_SECRET", "sim-vonage-api-secret")
    # Sender id: a number or an alphanumeric id.
    vonage_from: str = env_field("VONAGE_FROM", "Herald")
    # Key of the HMAC-SHA256 `sig` on delivery receipts (the account's signature secret).
    # No default: unset, the Vonage webhook receiver is off.
    vonage_signature_secret: str = env_field("VONAGE_SIGNATURE_SECRET", "")
    # Providers: WhatsApp Business Cloud API (WhatsApp primary). Graph API base URL.
    whatsapp_base_url: str = env_field("WHATSAPP_BASE_URL", "http://127.0.0.1:9300")
    # Graph API version in the path.
    whatsapp_api_version: str = env_field("WHATSAPP_API_VERSION", "v21.0")
    # The business phone number id messages are sent from.
    whatsapp_phone_number_id: str = env_field("WHATSAPP_PHONE_NUMBER_ID", "100000000000001")
    # System-user access token (Bearer).
    whatsapp_token: str = env_field("WHATSAPP_TOKEN", "sim-whatsapp-token")
    # App secret: the key of X-Hub-Signature-256 on webhooks.
    # No default: unset, the WhatsApp webhook receiver is off.
    whatsapp_app_secret: str = env_field("WHATSAPP_APP_SECRET", "")
    # Verify token of the webhook subscription handshake (hub.verify_token); unset: refused.
    whatsapp_verify_token: str = env_field("WHATSAPP_VERIFY_TOKEN", "")
    # The tenant the business number belongs to: only its messages go as session text
    # while a user's 24-hour window is open (the inbound webhook names no tenant). Unset:
    # no tenant's; every WhatsApp message goes as its approved template when it has one.
    whatsapp_window_tenant: str = env_field("WHATSAPP_WINDOW_TENANT", "")
    # Providers: Firebase Cloud Messaging HTTP v1 (push). API base URL.
    fcm_base_url: str = env_field("FCM_BASE_URL", "http://127.0.0.1:9300")
    # Firebase project id in the path.
    fcm_project_id: str = env_field("FCM_PROJECT_ID", "herald-sim")
    # A ready OAuth2 access token, used when no service-account file is set.
    fcm_access_token: str = env_field("FCM_ACCESS_TOKEN", "sim-fcm-access-token")
    # Service-account JSON; when set, access tokens come from its JWT-bearer flow.
    fcm_service_account_file: Path | None = env_field("FCM_SERVICE_ACCOUNT_FILE", None)
    # OAuth token endpoint overriding the file's token_uri; empty means the file's.
    fcm_token_url: str = env_field("FCM_TOKEN_URL", "")
    # Provider webhooks: a signed timestamp older (or further ahead) than this many
    # seconds is a replay and refused (SendGrid's header, Vonage's `timestamp`).
    webhook_replay_window_s: float = env_field("HERALD_WEBHOOK_REPLAY_WINDOW", 300.0)
    # How long a provider event for a message whose send is not in its state yet waits
    # for it (parked: the status projection can lag the provider) before it is judged
    # for good, once the projection has folded every status written by then...
    provider_event_wait_s: float = env_field("HERALD_PROVIDER_EVENT_WAIT", 5.0)
    # ... and how long it waits in all, however far behind the projection is.
    provider_event_max_wait_s: float = env_field("HERALD_PROVIDER_EVENT_MAX_WAIT", 600.0)
    # The pipeline's public base URL for provider callbacks; empty: the HTTP ingress's own.
    public_base_url: str = env_field("HERALD_PUBLIC_URL", "")
    # Simulator: SMTP sink port.
    sim_smtp_port: int = env_field("HERALD_SIM_SMTP_PORT", 2525)
    # Simulator: where it posts delivery webhooks; empty means http://127.0.0.1:{HERALD_HTTP_PORT}.
    sim_webhook_base_url: str = env_field("HERALD_SIM_WEBHOOK_URL", "")
    # Simulator: ECDSA P-256 key signing SendGrid event webhooks (PEM or base64 DER PKCS8);
    # unset, the simulator posts no SendGrid events.
    sim_sendgrid_webhook_private_key: str = env_field("HERALD_SIM_SENDGRID_WEBHOOK_PRIVATE_KEY", "")
    # Simulator: delay before it posts the delivery webhooks of an accepted message.
    sim_webhook_delay_ms: int = env_field("HERALD_SIM_WEBHOOK_DELAY_MS", 50)
    # Simulator: how many accepted messages `/_sim/messages` keeps (the oldest go first),
    # so a long demo or soak run does not grow the simulator without end.
    sim_message_log: int = env_field("HERALD_SIM_MESSAGE_LOG", 50_000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from `environ` (default `os.environ`), then apply overrides."""
        values = values_from_env(cls, os.environ if environ is None else environ)
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests, `herald up`)."""
        return replace(self, **changes)

    # Derived values: computed, never stored twice.
    @property
    def local_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def bootstrap(self) -> str:
        """Where clients connect: the configured cluster, else the local broker."""
        return self.bootstrap_servers or self.local_bootstrap

    @property
    def uses_local_broker(self) -> bool:
        return not self.bootstrap_servers

    @property
    def kafka_dist_dir(self) -> Path:
        return self.kafka_dist or self.home / f"kafka-{self.kafka_version}"

    @property
    def datadir(self) -> Path:
        return self.worker_datadir or self.home / "worker"

    @property
    def rate_limit_map(self) -> dict[str, float]:
        out = {}
        for item in filter(None, (p.strip() for p in self.rate_limits.split(","))):
            name, _, value = item.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"HERALD_RATE_LIMITS: {item!r} is not provider=rate") from None
        return out

    @property
    def resend_in_doubt_priorities(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.resend_in_doubt.split(",") if p.strip())

    @property
    def sim_base_url(self) -> str:
        return f"http://{self.sim_host}:{self.sim_port}"

    @property
    def api_base_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    @property
    def worker_port(self) -> int:
        """The port the worker's HTTP listens on."""
        return self.worker_http_port or self.http_port

    @property
    def worker_base_url(self) -> str:
        """Where an ingress asks the worker (no trailing slash)."""
        return (self.worker_url or f"http://127.0.0.1:{self.worker_port}").rstrip("/")

    @property
    def advertised_base_url(self) -> str:
        """Where the group's other workers reach this worker's HTTP (no trailing slash)."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = self.http_host
        if host in ("0.0.0.0", "::", ""):  # every address: the name others know it by
            host = socket.gethostname()
        return f"http://{host}:{self.worker_port}"

    @property
    def public_url(self) -> str:
        """Where providers reach the pipeline's `/webhooks/...` (no trailing slash)."""
        return (self.public_base_url or self.api_base_url).rstrip("/")

    @property
    def sim_webhook_url(self) -> str:
        """Where the simulator posts delivery webhooks (no trailing slash)."""
        return (self.sim_webhook_base_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")
