// The deal page's script (served by the relayer at /deals/assets/deal.js; built by
// scripts/page.sh). The HTML already states the deal; this keeps it current, adds the relayer's
// audit entries to the timeline and checks them, counts down the dispute window, and connects
// a wallet.
import { verifyDeal, type Checkpoint, type Entry } from "./audit";
import { byId, el, renderAudit, renderCountdown, renderState, type DealView } from "./view";
import { startWallet, updateWallet } from "./wallet";

/** How often the page re-reads the deal, and the longest wait after failures. */
const REFRESH_MS = 10_000;
const MAX_BACKOFF_MS = 60_000;

async function getJson<T>(path: string): Promise<T | null> {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

let view: DealView | null = null;
let fetchedAt = 0;
/** The entries last checked: checked again only when they change. */
let checked = "";

function report(text: string, cls: string): void {
  byId("verify").replaceChildren(el("span", { class: cls }, text));
}

/** Checks the deal's record; true when the answer is final (no checkpoint yet is not). */
async function checkRecord(deal: DealView, entries: Entry[]): Promise<boolean> {
  const last = entries.at(-1)?.seq ?? 0;
  const checkpoint = await getJson<Checkpoint | null>(`/v1/audit/checkpoints/covering/${last}`);
  const verdict = await verifyDeal(deal.offer, entries, checkpoint, async (after) =>
    (await getJson<Entry[]>(`/v1/audit/entries?after=${after}&limit=1000`)) ?? [],
  );
  if (!verdict.ok) {
    report(`Check failed: ${verdict.problem}.`, "failed");
    return true;
  }
  const matched = `All ${verdict.entries} of this deal's entries match their hashes and the chain of the log.`;
  if (!verdict.checkpoint) {
    report(`${matched} No signed checkpoint covers them yet; the relayer signs one periodically.`, "verified");
    return false;
  }
  const { signer, tree_size } = verdict.checkpoint;
  const approver = deal.policy?.approvers.find((a) => a.address === signer);
  if (!approver) {
    // A valid signature by a key this deal never named proves nothing about this relayer.
    report(
      `${matched} But the checkpoint is signed by ${signer}, which is not one of this escrow's ` +
        "approvers: check the log with relayer audit verify and the relayer's published key.",
      "failed",
    );
    return true;
  }
  report(`${matched} The log up to entry ${tree_size} is signed by ${signer}, the key this escrow lists as its ${approver.role}.`, "verified");
  return true;
}

async function refresh(): Promise<void> {
  const offer = byId("deal").dataset.offer ?? "";
  const next = await getJson<DealView>(`/api/deals/${encodeURIComponent(offer)}`);
  if (!next) return;
  view = next;
  fetchedAt = Date.now();
  renderState(view);
  updateWallet(view);
  const entries = (await getJson<Entry[]>(`/v1/audit/offers/${encodeURIComponent(offer)}`)) ?? [];
  renderAudit(view, entries);
  const key = `${entries.at(-1)?.seq ?? 0}`;
  if (key === checked) return;
  try {
    if (await checkRecord(view, entries)) checked = key;
  } catch (e) {
    report(`Could not check the record just now (${(e as Error).message}); trying again.`, "warn");
  }
}

function loop(wait: number): void {
  setTimeout(() => {
    refresh()
      .then(() => {
        byId("refresh").textContent = "";
        loop(REFRESH_MS);
      })
      .catch((e: Error) => {
        byId("refresh").textContent = `Could not refresh (${e.message}); retrying.`;
        loop(Math.min(wait * 2, MAX_BACKOFF_MS));
      });
  }, wait);
}

startWallet(() => void refresh());
setInterval(() => view && renderCountdown(view, fetchedAt), 1000);
refresh()
  .then(() => loop(REFRESH_MS))
  .catch(() => loop(REFRESH_MS * 2));
