-- Named admin accounts (team accounts) beside the bootstrap admin of budget-server's
-- environment. `password_hash` is an argon2id PHC string, never a password. `token_version`
-- goes up when the password changes or the account is disabled (older tokens stop working).
-- User names are ASCII and unique ignoring case. Every replica reads the table per admin
-- request, so a change holds on all of them at once.
CREATE TABLE accounts (
    id            uuid        PRIMARY KEY,
    username      text        NOT NULL,
    role          text        NOT NULL,
    password_hash text        NOT NULL,
    disabled      boolean     NOT NULL DEFAULT false,
    token_version bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX accounts_username ON accounts (lower(username));
