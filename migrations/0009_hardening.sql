-- Operator tokens that must no longer be accepted, by id, checked on every operator request.
-- Kept past `expires_at` harmlessly (an expired token is refused anyway).
CREATE TABLE revoked_tokens (
    jti         text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 128),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL DEFAULT ''
);

-- The public audit log names no operator: an entry carries a commitment to the operator,
-- sha256("openclaw-escrow operator\n" || nonce hex || "\n" || subject), and only this table,
-- readable through the operator API, opens it. The random nonce keeps a guess of the subject
-- from being checked against the public log.
CREATE TABLE operator_commitments (
    commitment  text PRIMARY KEY CHECK (length(commitment) = 64),
    operator    text NOT NULL,
    nonce       bytea NOT NULL CHECK (length(nonce) = 16),
    created_at  timestamptz NOT NULL DEFAULT now()
);
