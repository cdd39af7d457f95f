-- The same as the PostgreSQL schema's 00170_worker_max_concurrent.sql: the
-- number of steps a worker runs at once, as it said when registering (NULL:
-- it did not say).

-- +goose Up
ALTER TABLE workers ADD COLUMN max_concurrent INTEGER CHECK (max_concurrent > 0);

-- +goose Down
ALTER TABLE workers DROP COLUMN max_concurrent;
