-- Relayer core: offers, verified tracking events, and a durable job queue.

-- An escrow on-chain, linked to the shipment that decides it.
CREATE TABLE offers (
    id              uuid PRIMARY KEY,
    escrow          text NOT NULL UNIQUE,          -- escrow account address (base58)
    tracking_number text NOT NULL,
    carrier         text NOT NULL,
    status          text NOT NULL DEFAULT 'awaiting_shipment'
                    CHECK (status IN ('awaiting_shipment', 'in_transit', 'out_for_delivery',
                                      'delivered', 'returned', 'exception')),
    buyer           text NOT NULL,
    seller          text NOT NULL,
    mint            text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    -- occurred_at of the event that set `status`: older events arriving late change nothing.
    status_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (carrier, tracking_number)
);

-- Every verified webhook, kept for audit even when no offer matches (offer_id NULL).
-- The provider's event id makes redelivery harmless.
CREATE TABLE tracking_events (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL UNIQUE,
    offer_id        uuid REFERENCES offers (id),
    tracking_number text NOT NULL,
    carrier         text NOT NULL,
    status          text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tracking_events_offer ON tracking_events (offer_id);

-- The job queue. A job is claimed under a lease (locked_until); a worker that dies loses its
-- lease and the job becomes claimable again. One job per (offer, action).
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    offer_id     uuid NOT NULL REFERENCES offers (id),
    action       text NOT NULL CHECK (action IN ('approve_release', 'approve_refund')),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL CHECK (max_attempts > 0),
    run_at       timestamptz NOT NULL DEFAULT now(),
    locked_by    text,
    locked_until timestamptz,
    last_error   text,
    result       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (offer_id, action)
);
-- What workers scan: runnable pending jobs, and running jobs whose lease may have expired.
CREATE INDEX jobs_runnable ON jobs (run_at) WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';

-- Every attempt, for the operator API and for post-mortems.
CREATE TABLE job_attempts (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES jobs (id),
    attempt     integer NOT NULL,
    worker      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'dead')),
    detail      text
);
CREATE INDEX job_attempts_job ON job_attempts (job_id);
