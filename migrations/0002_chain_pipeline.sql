-- The chain side: cranks as jobs, every signed transaction recorded before it is sent,
-- and how each offer's escrow settled.

ALTER TABLE jobs DROP CONSTRAINT jobs_action_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_action_check
    CHECK (action IN ('approve_release', 'approve_refund', 'crank_release', 'crank_refund'));

-- A transaction is recorded (committed) before it is sent, so after a crash the job finds it
-- and waits for it instead of signing a second one while the first may still land.
CREATE TABLE chain_txs (
    id                      bigserial PRIMARY KEY,
    job_id                  bigint NOT NULL REFERENCES jobs (id),
    signature               text NOT NULL UNIQUE,
    last_valid_block_height bigint NOT NULL,
    state                   text NOT NULL DEFAULT 'sent'
                            CHECK (state IN ('sent', 'confirmed', 'failed', 'expired')),
    error                   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_txs_job ON chain_txs (job_id);

ALTER TABLE offers ADD COLUMN settlement text CHECK (settlement IN ('released', 'refunded'));
