-- A worker says at registration how many steps it runs at once (its
-- max_concurrent, its slots), so GET /api/workers and the web UI can show
-- it. NULL: a worker that registered without saying (older than this).

-- +goose Up
ALTER TABLE workers ADD COLUMN max_concurrent integer CHECK (max_concurrent > 0);

-- +goose Down
ALTER TABLE workers DROP COLUMN max_concurrent;
