-- The audit trail of admin actions: append-only (a trigger refuses UPDATE and DELETE; purging
-- a limiter keeps its entries). `before` and `after` hold the changed fields, secrets masked
-- by budget-server before they get here.
CREATE TABLE audit_log (
    id         uuid        PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text        NOT NULL,
    client     text,
    action     text        NOT NULL,
    limiter_id uuid,
    target     text,
    before     jsonb,
    after      jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_limiter ON audit_log (limiter_id, at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
