// The deal page's script (served by the relayer at /deals/assets/deal.js; built by
// scripts/page.sh). The HTML already states the deal; this keeps it current, adds the relayer's
// audit entries to the timeline and checks them, counts down the dispute window, and connects
// a wallet.
import { verifyDeal, type Checkpoint, type Entry } from "./audit";
import { byId, el, renderAudit, renderCountdown, renderState, type DealView } from "./view";
import { startWallet, updateWallet } from "./wallet";

/** How often the page re-reads the deal. */
const REFRESH_MS = 4000;

async function getJson<T>(path: string): Promise<T | null> {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

let view: DealView | null = null;
let fetchedAt = 0;
/** The entries and checkpoint last checked: checked again only when either moves. */
let checked = "";

async function checkRecord(deal: DealView, entries: Entry[], checkpoint: Checkpoint | null): Promise<void> {
  const verdict = await verifyDeal(entries, checkpoint, async (after) =>
    (await getJson<Entry[]>(`/v1/audit/entries?after=${after}&limit=1000`)) ?? [],
  );
  const node = byId("verify");
  if (!verdict.ok) {
    node.replaceChildren(el("span", { class: "failed" }, `Check failed: ${verdict.problem}.`));
    return;
  }
  const parts = [`All ${verdict.entries} of this deal's entries match their hashes and the chain of the log.`];
  if (verdict.signed && verdict.checkpoint) {
    const signer = verdict.checkpoint.signer;
    const approver = deal.policy?.approvers.find((a) => a.address === signer);
    parts.push(
      `The log up to entry ${verdict.checkpoint.tree_size} is signed by ${signer}` +
        (approver ? `, the key this escrow lists as its ${approver.role}.` : ", which is not one of this escrow's approvers."),
    );
    if (verdict.unsigned) parts.push(`${verdict.unsigned} newer entries are not yet under a signed checkpoint.`);
  } else {
    parts.push("No signed checkpoint covers them yet; the relayer signs one periodically.");
  }
  node.replaceChildren(el("span", { class: "verified" }, parts.join(" ")));
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
  const checkpoint = await getJson<Checkpoint>("/v1/audit/checkpoints/latest");
  const key = `${entries.at(-1)?.seq ?? 0}/${checkpoint?.tree_size ?? 0}`;
  if (key !== checked) {
    checked = key;
    await checkRecord(view, entries, checkpoint);
  }
}

function loop(): void {
  refresh()
    .catch((e: Error) => {
      byId("state").textContent = `Could not refresh (${e.message}); retrying.`;
    })
    .finally(() => setTimeout(loop, REFRESH_MS));
}

startWallet(() => void refresh());
setInterval(() => view && renderCountdown(view, fetchedAt), 1000);
loop();
