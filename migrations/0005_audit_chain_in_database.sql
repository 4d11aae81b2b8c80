-- The database chains the audit log itself: an append is one INSERT of (kind, offer_id,
-- payload), and this trigger numbers the entry, links it to the head and hashes it, exactly as
-- relayer/src/audit/mod.rs documents and `relayer audit verify` recomputes. Whatever seq, at,
-- prev_hash or hash an INSERT names is overwritten, so no client can insert a wrong link.
--
-- The advisory lock orders appends until the inserting transaction ends: the head it reads is
-- the last committed one (each statement in a volatile function takes a fresh snapshot), a
-- rolled-back transaction takes its entries with it (seq has no gaps), and one transaction's
-- entries are consecutive. Callers append last, after every row lock they need, so a
-- transaction holding this lock waits for nothing else.
CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq  bigint;
    head_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(418581342580);  -- "audit" in ASCII
    SELECT seq, hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := COALESCE(head_seq, 0) + 1;
    NEW.prev_hash := COALESCE(head_hash, decode(repeat('00', 32), 'hex'));
    -- Taken under the lock: `at` never goes back along the chain.
    NEW.at := clock_timestamp();
    -- Canonical JSON of the leaf: keys sorted, no whitespace; payload is already canonical.
    NEW.hash := sha256(convert_to(
        '{"at":"' || to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '","kind":' || to_json(NEW.kind)::text
        || ',"offer_id":' || COALESCE('"' || NEW.offer_id::text || '"', 'null')
        || ',"payload":' || NEW.payload
        || ',"prev_hash":"' || encode(NEW.prev_hash, 'hex')
        || '","seq":' || NEW.seq::text || '}',
        'UTF8'));
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_chain();
