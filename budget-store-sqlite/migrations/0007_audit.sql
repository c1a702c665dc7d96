-- The audit trail of admin actions: append-only (nothing updates or deletes a row; purging a
-- limiter keeps its entries). `before` and `after` are JSON of the changed fields, secrets
-- masked by budget-server before they get here.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    at         INTEGER NOT NULL, -- unix microseconds
    actor      TEXT    NOT NULL,
    client     TEXT,
    action     TEXT    NOT NULL,
    limiter_id TEXT,
    target     TEXT,
    before     TEXT,
    after      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_limiter ON audit_log (limiter_id, at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
