-- Upstream credentials held by the server: an OpenAI key or an Azure api-key the proxy sends in
-- place of the client's. `sealed` is the key encrypted by budget-server (AES-256-GCM under
-- SECRETS_KEY, bound to the row's id): the database never holds it in clear. Every replica keeps
-- the table in memory; a change is announced on `budget_limiters` as `credential:<id>` (and
-- the per-second poll reloads the table).
CREATE TABLE credentials (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL UNIQUE,
    kind         text        NOT NULL,
    organization text,
    project      text,
    sealed       bytea       NOT NULL,
    hint         text        NOT NULL,
    fingerprint  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    rotated_at   timestamptz NOT NULL
);
