-- A batch of verified tracking events stored in one statement: for each event, in order, lock
-- its offer, insert the event (a redelivered id is a duplicate and changes nothing), move the
-- offer's status, queue the job the move implies and wake the workers; then append every audit
-- entry, last, after every offer lock (the order lock of audit_chain() is held until commit).
-- Called outside a transaction block, the call is its own transaction: one round trip and one
-- commit per batch instead of two statements or more per event (relayer/src/ingest.rs).
--
-- The rule that moves a status is OfferStatus::after in relayer/src/domain/offer/status.rs,
-- the model the property tests exercise; a test runs this function on every pair of offer
-- status and event status and compares. An end (delivered, returned) is final; progress in
-- transit follows the carrier's dates; an end applies whatever its date.
--
-- Audit payloads are canonical JSON (keys sorted, no whitespace). The values a sender chose
-- (event id, carrier) and the event's date arrive already JSON-encoded by the relayer, so the
-- encoding of user input has one implementation; the rest are fixed words and uuids.
CREATE FUNCTION ingest_events(
    event_ids        text[],
    carriers         text[],
    tracking_numbers text[],
    statuses         text[],
    occurred_ats     timestamptz[],
    payloads         text[],
    event_ids_json   text[],
    carriers_json    text[],
    occurred_json    text[],
    max_attempts     integer,
    channel          text
) RETURNS TABLE (n integer, outcome text, offer uuid, offer_status text, job_enqueued boolean)
LANGUAGE plpgsql AS $$
DECLARE
    found_offer boolean;
    o           record;
    moved       integer;
    job         text;
    kinds       text[] := '{}';
    offer_ids   uuid[] := '{}';
    entries     text[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(event_ids, 1), 0) LOOP
        n := i;
        offer := NULL;
        offer_status := NULL;
        job_enqueued := false;
        SELECT offers.id, offers.status, offers.status_at INTO o FROM offers
        WHERE offers.carrier = carriers[i] AND offers.tracking_number = tracking_numbers[i]
        FOR UPDATE;
        found_offer := FOUND;
        INSERT INTO tracking_events (event_id, offer_id, tracking_number, carrier, status,
                                     occurred_at, payload)
        VALUES (event_ids[i], o.id, tracking_numbers[i], carriers[i], statuses[i],
                occurred_ats[i], payloads[i]::jsonb)
        ON CONFLICT (event_id) DO NOTHING;
        GET DIAGNOSTICS moved = ROW_COUNT;
        IF moved = 0 THEN
            outcome := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        kinds := array_append(kinds, 'tracking_event');
        offer_ids := array_append(offer_ids, o.id);
        entries := array_append(entries,
            '{"carrier":' || carriers_json[i] || ',"event_id":' || event_ids_json[i]
            || ',"occurred_at":' || occurred_json[i]
            || ',"offer_id":' || coalesce('"' || o.id::text || '"', 'null')
            || ',"status":"' || statuses[i] || '"}');
        IF NOT found_offer THEN
            outcome := 'unknown_tracking';
            RETURN NEXT;
            CONTINUE;
        END IF;
        outcome := 'accepted';
        offer := o.id;
        offer_status := o.status;
        IF o.status NOT IN ('delivered', 'returned')
           AND statuses[i] <> 'unrecognised'
           AND (statuses[i] IN ('delivered', 'returned') OR o.status_at IS NULL
                OR occurred_ats[i] >= o.status_at) THEN
            UPDATE offers SET status = statuses[i], status_at = occurred_ats[i], updated_at = now()
            WHERE offers.id = o.id;
            kinds := array_append(kinds, 'offer_status');
            offer_ids := array_append(offer_ids, o.id);
            entries := array_append(entries, '{"from":"' || o.status || '","offer_id":"' || o.id
                                             || '","to":"' || statuses[i] || '"}');
            offer_status := statuses[i];
            job := CASE statuses[i] WHEN 'delivered' THEN 'approve_release'
                                    WHEN 'returned' THEN 'approve_refund' END;
            IF job IS NOT NULL THEN
                INSERT INTO jobs (offer_id, action, max_attempts)
                VALUES (o.id, job, ingest_events.max_attempts)
                ON CONFLICT (offer_id, action) DO NOTHING;
                GET DIAGNOSTICS moved = ROW_COUNT;
                job_enqueued := moved = 1;
                IF job_enqueued THEN
                    PERFORM pg_notify(channel, '');
                    kinds := array_append(kinds, 'job_enqueued');
                    offer_ids := array_append(offer_ids, o.id);
                    entries := array_append(entries, '{"action":"' || job || '","offer_id":"'
                                                     || o.id || '"}');
                END IF;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    INSERT INTO audit_log (kind, offer_id, payload)
    SELECT e.kind, e.offer_id, e.payload
    FROM unnest(kinds, offer_ids, entries) WITH ORDINALITY AS e (kind, offer_id, payload, k)
    ORDER BY e.k;
END;
$$;
