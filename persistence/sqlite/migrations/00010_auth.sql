-- Users, their groups, OIDC links, refresh tokens and API keys, and who
-- created and who cancelled a job: migrations/00010_auth.sql in SQLite's
-- types (see 00001_init.sql for the translations).

-- +goose Up
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE CHECK (email = lower(email)),
    name          TEXT,
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;

CREATE TABLE user_groups (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
) STRICT;
CREATE INDEX user_groups_name_idx ON user_groups (group_name);

CREATE TABLE auth_links (
    provider   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
) STRICT;
CREATE INDEX auth_links_user_idx ON auth_links (user_id);

CREATE TABLE refresh_tokens (
    hash        TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    replaced_by TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);

CREATE TABLE api_keys (
    hash         TEXT    PRIMARY KEY,
    prefix       TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    UNIQUE (user_id, prefix)
) STRICT;

ALTER TABLE jobs ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN cancelled_by;
ALTER TABLE jobs DROP COLUMN created_by;
DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE auth_links;
DROP TABLE user_groups;
DROP TABLE users;
