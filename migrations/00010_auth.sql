-- Users, their groups, OIDC links, refresh tokens and API keys (docs/auth.md),
-- and who created and who cancelled a job.

-- +goose Up
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL UNIQUE CHECK (email = lower(email)),
    name          text,
    -- argon2id PHC string; NULL for users who only sign in through OIDC.
    password_hash text,
    is_admin      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    last_login_at timestamptz
);

CREATE TABLE user_groups (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name text NOT NULL,
    PRIMARY KEY (user_id, group_name)
);
CREATE INDEX user_groups_name_idx ON user_groups (group_name);

-- An OIDC provider's subject, linked to the user it signs in.
CREATE TABLE auth_links (
    provider   text        NOT NULL,
    subject    text        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX auth_links_user_idx ON auth_links (user_id);

-- Refresh tokens, by keyed hash only. A session is a family; rotation sets
-- revoked_at and replaced_by on the spent token.
CREATE TABLE refresh_tokens (
    hash        text        PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family      uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    replaced_by text        NOT NULL DEFAULT ''
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);

-- API keys, by SHA-256 only; prefix names a key within its user's keys.
CREATE TABLE api_keys (
    hash         text        PRIMARY KEY,
    prefix       text        NOT NULL,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    UNIQUE (user_id, prefix)
);

ALTER TABLE jobs ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN cancelled_by text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN cancelled_by;
ALTER TABLE jobs DROP COLUMN created_by;
DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE auth_links;
DROP TABLE user_groups;
DROP TABLE users;
