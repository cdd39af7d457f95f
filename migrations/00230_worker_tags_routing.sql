-- Worker tags route steps, as the upstream Strøm's do since its migration
-- 042: a step may go only to a worker whose tags include every tag the
-- step requires (its action's tags), and a worker marked exclusive takes
-- only steps that require every one of its own tags. The claim, the
-- hand-off's offers and the unmatched-step check all apply it
-- (stroem.TagsMatch).
--
-- job_steps.required_tags holds a step's tags, sorted, each once; steps
-- stored before this migration had none that routed, so they keep none.
-- workers.exclusive says whether the worker is reserved; every worker
-- registered before is not (it re-registers with its file's setting when
-- it restarts). Both columns have a constant default: adding them rewrites
-- no table. The claim's index is unchanged: the tags are tested on the
-- rows the claim reads anyway.

-- +goose Up
ALTER TABLE job_steps ADD COLUMN required_tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE workers ADD COLUMN exclusive boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE workers DROP COLUMN exclusive;
ALTER TABLE job_steps DROP COLUMN required_tags;
