-- An escrow's address is reused once its deal closes (the buyer may create the same id again),
-- so an offer is bound to one deal: the escrow at its address created in this slot. Set when the
-- relayer first sees that escrow matching the offer; from then on a deal at the address with
-- another creation slot is never approved, cranked or read as this offer's settlement.
-- Cleared only when the bound deal was cancelled before any deposit (no money moved), so that
-- the buyer may open it again.
ALTER TABLE offers ADD COLUMN escrow_created_slot bigint CHECK (escrow_created_slot >= 0);
