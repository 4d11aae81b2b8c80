-- A hash-chained, append-only record of every state change the relayer makes, and checkpoints
-- of it signed by the relayer's KMS key. See relayer/src/audit/mod.rs for the hash and
-- checkpoint formats and `relayer audit verify` for the checks anyone can run.

CREATE TABLE audit_log (
    seq        bigint PRIMARY KEY CHECK (seq >= 1),   -- 1, 2, 3, ... without gaps
    at         timestamptz NOT NULL,
    kind       text NOT NULL,
    offer_id   uuid,
    payload    text NOT NULL,                          -- canonical JSON, exactly as hashed
    prev_hash  bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash       bytea NOT NULL UNIQUE CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_offer ON audit_log (offer_id, seq) WHERE offer_id IS NOT NULL;

CREATE TABLE audit_checkpoints (
    tree_size  bigint PRIMARY KEY CHECK (tree_size >= 1),
    head_hash  bytea NOT NULL CHECK (length(head_hash) = 32),
    signed_at  timestamptz NOT NULL,
    signer     text NOT NULL,                          -- base58 ed25519 public key
    signature  bytea NOT NULL CHECK (length(signature) = 64)
);

-- No role can change or remove rows while these triggers stand. The table's owner or a
-- superuser can drop or disable them: run the relayer as a role that owns nothing (SECURITY.md),
-- and rely on the hash chain and the signed checkpoints to expose what such a role did.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
