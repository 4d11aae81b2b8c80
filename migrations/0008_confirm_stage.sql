-- The pipeline in stages: a job whose transaction is sent is handed to the confirm stage and
-- waits there, unclaimable by workers, until the transaction lands, fails or expires
-- (relayer/src/pipeline/confirm.rs).
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('pending', 'running', 'confirming', 'succeeded', 'dead'));

-- Jobs of an earlier relayer version whose transaction may still land belong to that stage now.
UPDATE jobs SET state = 'confirming', locked_until = NULL
WHERE state IN ('pending', 'running')
  AND EXISTS (SELECT 1 FROM chain_txs c WHERE c.job_id = jobs.id AND c.state = 'sent');

-- What the confirm stage reads every tick: the transactions in flight, oldest first.
CREATE INDEX chain_txs_in_flight ON chain_txs (id) WHERE state = 'sent';
