-- The deal's on-chain terms, so the relayer can hand the buyer a ready-to-sign transaction that
-- creates and funds exactly this escrow (Solana Actions). An offer registered for an escrow made
-- elsewhere has none: all five are set, or none.
ALTER TABLE offers
    ADD COLUMN escrow_id     bigint CHECK (escrow_id >= 0),
    ADD COLUMN approvers     text[] CHECK (cardinality(approvers) BETWEEN 1 AND 8),
    ADD COLUMN threshold     smallint CHECK (threshold BETWEEN 1 AND 8),
    ADD COLUMN timelock_secs integer CHECK (timelock_secs >= 0),
    ADD COLUMN refund_after  bigint,
    ADD CONSTRAINT offers_terms_complete
        CHECK (num_nulls(escrow_id, approvers, threshold, timelock_secs, refund_after) IN (0, 5));
