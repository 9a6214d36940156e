"""The schema, declared once; Alembic migrations must produce exactly this (tested)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.store.sealing import SealedJSON
from gateway.store.types import UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

cases = Table(
    "cases", metadata,
    Column("id", String(36), primary_key=True),
    Column("application_no", String(64), nullable=False),
    Column("body", SealedJSON("cases.body"), nullable=False),  # encrypted at rest when on
    Column("body_hash", String(64), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("home_items", JSON, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    # the caller (config ``callers:`` name) that submitted it: a caller reads only its own
    # cases (gateway.security.callers); null for cases stored before callers existed
    Column("submitted_by", String(128), nullable=True),
    UniqueConstraint("application_no"),
)

# A delivery is one message to one partner. ``state`` is pending | in_flight | delivered | dead.
# A pending delivery is due when next_attempt_at <= now; an in_flight one whose lease expired is
# due again (its worker died). ``lease_token`` fences a late worker out of a re-claimed delivery.
deliveries = Table(
    "deliveries", metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("item_nos", JSON, nullable=False),
    Column("region", String(12), nullable=False),
    Column("route_rule", Text, nullable=False),
    Column("mapping", String(128), nullable=False),
    Column("mapping_version", String(32), nullable=True),
    Column("idempotency_key", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("first_attempt_at", UTCDateTime(), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_token", String(36), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    Column("receipt_no", String(128), nullable=True),
    Column("partner_status", String(32), nullable=True),
    Column("last_outcome", String(16), nullable=True),
    Column("last_code", String(64), nullable=True),
    Column("last_message", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    # A replay from the dead-letter queue gives the delivery a fresh retry budget: the policy
    # counts attempts since ``attempts_base``; the attempt history itself is never rewritten.
    Column("attempts_base", Integer, nullable=False, server_default="0"),
    Column("replays", Integer, nullable=False, server_default="0"),
    # What the partner says about the case since (gateway.store.statuses): the result code of a
    # FINISHED case, the partner's time of the current status, and when a callback or a poll
    # last told us anything (polling picks the deliveries nobody heard of for a while).
    Column("result", String(16), nullable=True),
    Column("status_at", UTCDateTime(), nullable=True),
    Column("status_checked_at", UTCDateTime(), nullable=True),
    # ``case``: a case sent to a partner (rendered from the case body); ``status_push``: a status
    # event pushed to the city platform through the same outbox (rendered from ``payload``).
    Column("kind", String(16), nullable=False, server_default="case"),
    Column("payload", SealedJSON("deliveries.payload"), nullable=True),
    UniqueConstraint("idempotency_key"),
    # a partner's due rows in due order (claims, due partners: migration 0010)
    Index("ix_deliveries_due", "state", "partner", "next_attempt_at"),
    Index("ix_deliveries_case", "case_id"),
    Index("ix_deliveries_status_poll", "partner", "state", "status_checked_at"),
    Index("ix_deliveries_receipt", "partner", "receipt_no"),
)

attempts = Table(
    "attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), ForeignKey("deliveries.id", ondelete="CASCADE"),
           nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("worker", String(64), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("partner_code", String(64), nullable=True),
    Column("message", Text, nullable=True),
    Column("mapping_version", String(32), nullable=True),
    Index("ix_attempts_delivery", "delivery_id"),
)

# One circuit breaker per partner, shared by every gateway instance. ``snapshot`` is
# gateway.retry.breaker.BreakerSnapshot.to_dict(); writes are compare-and-set on ``version``.
partner_breakers = Table(
    "partner_breakers", metadata,
    Column("partner", String(64), primary_key=True),
    Column("snapshot", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# What operators did (replay, discard, reload), with who, why and to what: an audit trail.
operator_actions = Table(
    "operator_actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(64), nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_operator_actions_target", "target"),
)

# Every status a partner reported, kept whether or not it moved its delivery (the case's
# timeline). ``event_key`` is the partner's event id, or a hash of what identifies the report
# (gateway.store.statuses.event_key): unique per partner, so a repeated callback is absorbed.
# ``delivery_id`` (and ``case_id``) are null for an event that matched no case; ``flag`` says why
# an event did not move its delivery (unmapped, unknown_case, regression, duplicate).
status_events = Table(
    "status_events", metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id", ondelete="CASCADE"), nullable=True),
    Column("delivery_id", String(36), ForeignKey("deliveries.id", ondelete="CASCADE"),
           nullable=True),
    Column("partner", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("event_key", String(128), nullable=False),
    Column("case_ref", String(200), nullable=True),
    Column("partner_code", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("result", String(16), nullable=True),
    Column("occurred_at", UTCDateTime(), nullable=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("applied", Boolean(), nullable=False),
    Column("flag", String(16), nullable=True),
    Column("elicences", JSON, nullable=False),
    Column("message", Text, nullable=True),
    # what the event says beyond its status (nationalCaseNo, implementationCode, region,
    # department), passed on to the push
    Column("detail", JSON, nullable=True),
    UniqueConstraint("partner", "event_key"),
    Index("ix_status_events_case", "case_id", "received_at"),
    Index("ix_status_events_delivery", "delivery_id"),
)

# -- callers and anti-replay (issue 14; gateway.store.nonces) ----------------------------------
# Every nonce an authenticated caller or partner used, until its timestamp leaves the window:
# shared by all instances, so a replay is refused on any of them. ``scope`` is the caller's or
# partner's name; the primary key is the uniqueness the replay check relies on. Rows are pruned
# once expired (``expires_at`` index), so the table holds one window of traffic.
nonces = Table(
    "nonces", metadata,
    Column("scope", String(128), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_nonces_expires_at", "expires_at"),
)

# -- the audit log (gateway.store.audit): one hash-chained record per message in or out --------
# ``seq`` is the chain's order (1, 2, 3 …, given under the head's lock); ``hash`` is SHA-256 over
# the record's fields and ``prev_hash``. No bodies, no personal data: ids, codes, digests, sizes.
audit_log = Table(
    "audit_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("case_id", String(36), nullable=True),
    Column("delivery_id", String(36), nullable=True),
    Column("partner", String(64), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("partner_code", String(64), nullable=True),
    Column("request_sha256", String(64), nullable=True),
    Column("request_bytes", Integer, nullable=True),
    Column("reply_sha256", String(64), nullable=True),
    Column("reply_bytes", Integer, nullable=True),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The chain's head: one row (id 1), locked by every writer of the log (one total order).
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Keys that sealed values in this database (gateway.store.sealing): a key still in use that the
# keyring lacks is a startup error naming it; ``gateway seal reseal`` retires the older ones.
seal_keys = Table(
    "seal_keys", metadata,
    Column("kid", String(32), primary_key=True),
    Column("first_used_at", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime(), nullable=True),
)

# -- national data back-flow (issue 15; gateway.store.backflow) ------------------------------
# One row per record the gateway holds, by kind and natural key (``rkey`` = kind:key): only a
# higher ``version`` replaces it. ``seq`` is the checkpoint page that last changed it (replay
# ranges). ``body`` is the record as mapped for the city platform.
backflow_records = Table(
    "backflow_records", metadata,
    Column("rkey", String(240), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("natural_key", String(200), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    # holders' names and ID numbers: encrypted at rest when sealing is on (gateway.store.sealing)
    Column("body", SealedJSON("backflow_records.body"), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_backflow_records_source_seq", "source", "seq"),
)

# Where the walk of one source's export stands: written in the transaction that stores the
# page's records, so a crash resumes at the first page not stored. The counters are totals.
backflow_checkpoints = Table(
    "backflow_checkpoints", metadata,
    Column("source", String(32), primary_key=True),
    Column("cursor", Text, nullable=True),
    Column("pages", Integer, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("kept", BigInteger, nullable=False),
    Column("replaced", BigInteger, nullable=False),
    Column("ignored", BigInteger, nullable=False),
    Column("batches", Integer, nullable=False),
    Column("done", Boolean(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Which instance walks a source's export now, until when (migration 0009): the scheduled walk
# of a second instance sees the lease held and skips (gateway.store.backflow_lease).
backflow_leases = Table(
    "backflow_leases", metadata,
    Column("source", String(32), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
)

# -- inbound cases (issue 15; gateway.store.inbound) -----------------------------------------
# A case a partner (Tianjin, Hebei, the national platform) submitted to Beijing: one row per
# partner case number (a resend answers the first receipt), the receipt the gateway issued, the
# case in Beijing's unified format (sealed at rest) and the outbox row that carries it to the
# city platform (``deliveries.kind = 'inbound_case'``, hanging off an anchor case per partner).
inbound_cases = Table(
    "inbound_cases", metadata,
    Column("id", String(36), primary_key=True),
    Column("partner", String(64), nullable=False),
    Column("partner_case_no", String(64), nullable=False),
    Column("receipt_no", String(32), nullable=False),
    Column("application_no", String(64), nullable=False),
    Column("body", SealedJSON("inbound_cases.body"), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("delivery_id", String(36), nullable=True),
    Column("submitted_by", String(128), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    # the case's progress as the city platform reported it (migration 0008)
    Column("status", String(32), nullable=True),
    Column("status_at", UTCDateTime(), nullable=True),
    Column("status_result", String(16), nullable=True),
    UniqueConstraint("partner", "partner_case_no"),
    UniqueConstraint("receipt_no"),
)

# -- inbound case statuses (issue 15; gateway.store.inbound_status) ---------------------------
# What the city platform reports about an inbound case, kept once per event id, moved through
# the one state machine (gateway.status.settle); the case's progress is kept on its row (status,
# status_at, status_result: migration 0008) and each change queued to the submitting partner.
inbound_status_events = Table(
    "inbound_status_events", metadata,
    Column("id", String(36), primary_key=True),
    Column("inbound_id", String(36), ForeignKey("inbound_cases.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("result", String(16), nullable=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("message", Text, nullable=True),
    Column("applied", Boolean(), nullable=False),
    Column("flag", String(16), nullable=True),
    Column("delivery_id", String(36), nullable=True),
    Column("reported_by", String(128), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    UniqueConstraint("inbound_id", "event_id"),
)
