-- Upstream credentials held by the server: an OpenAI key or an Azure api-key that the proxy
-- sends in place of the client's. The key is sealed by budget-server (AES-256-GCM under
-- SECRETS_KEY, bound to the row's id) before it reaches this file: `sealed` is never plaintext.
-- Limiters name theirs in their policy JSON (`credential_id`).
CREATE TABLE credentials (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    organization TEXT,
    project      TEXT,
    sealed       BLOB    NOT NULL,
    hint         TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL, -- unix microseconds
    updated_at   INTEGER NOT NULL,
    rotated_at   INTEGER NOT NULL
);
