-- Named admin accounts (team accounts) beside the bootstrap admin of budget-server's
-- environment. `password_hash` is an argon2id PHC string, never a password. `token_version`
-- goes up when the password changes or the account is disabled (older tokens stop working).
-- User names are unique ignoring ASCII case (they are ASCII only).
CREATE TABLE accounts (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    token_version INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL, -- unix microseconds
    updated_at    INTEGER NOT NULL
);
