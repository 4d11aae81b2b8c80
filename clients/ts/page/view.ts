// The deal as `GET /api/deals/{offer}` describes it (relayer/src/deal_page.rs), and the page's
// rendering of it. Every value reaches the page as text (textContent), never as markup.
import type { Entry } from "./audit";

export interface DealView {
  offer: string;
  escrow: string;
  buyer: string;
  seller: string;
  shipment: string;
  settlement: string | null;
  state_text: string;
  policy: { approvers: { address: string; role: string }[]; threshold: number } | null;
  escrow_state: { scheduled: string | null; eta: number | null } | null;
  chain_time: number | null;
  events: { kind: string; text: string; signature: string; slot: number }[];
  actions: { kind: string; label: string; href: string; closed: string | null }[];
  chain_problem: string | null;
  cluster: { wallet_chain: string; explorer_tx: string | null };
}

type Child = Node | string;

export function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

export function byId(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/** A transaction: a link to the explorer, or its signature where no explorer can show it. */
export function txLink(view: DealView, signature: string): HTMLElement {
  const template = view.cluster.explorer_tx;
  if (!template) return el("span", { class: "sig", title: "transaction signature" }, signature);
  const href = template.replace("{signature}", encodeURIComponent(signature));
  return el("a", { href, rel: "noopener noreferrer" }, "transaction");
}

export function renderState(view: DealView): void {
  byId("state").textContent = view.state_text;
  byId("shipment").textContent = view.shipment.replaceAll("_", " ");
  // Without the chain's word, the events already shown stay: they happened.
  if (view.chain_problem) return;
  const events = byId("chain-events");
  const items = view.events.map((e) =>
    el("li", { "data-kind": e.kind }, `${e.text} · `, txLink(view, e.signature)),
  );
  events.replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "Nothing on-chain yet.")]));
}

/** The dispute window's end, counted on the chain's clock (the browser's may differ). */
export function renderCountdown(view: DealView, fetchedAt: number): void {
  const node = byId("countdown");
  const eta = view.escrow_state?.eta;
  const scheduled = view.escrow_state?.scheduled;
  if (eta == null || view.chain_time == null || !scheduled) {
    node.textContent = "";
    return;
  }
  const now = view.chain_time + Math.floor((Date.now() - fetchedAt) / 1000);
  const left = eta - now;
  if (left <= 0) {
    node.textContent = `The dispute window has closed: the ${scheduled} can be paid out now.`;
    return;
  }
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  const parts = [h ? `${h} h` : "", h || m ? `${m} min` : "", `${s} s`].filter(Boolean);
  node.textContent = `Dispute window: ${parts.join(" ")} left before the ${scheduled} can be paid out.`;
}

/** An audit entry's payload as fields; none when it is not a JSON object. */
function payloadOf(e: Entry): Record<string, unknown> {
  try {
    return (JSON.parse(e.payload) as Record<string, unknown>) ?? {};
  } catch {
    return {};
  }
}

/** An audit entry in plain words. */
function entryText(e: Entry, p: Record<string, unknown>): string {
  const s = (k: string) => String(p[k] ?? "");
  const action = s("action").replaceAll("_", " ");
  switch (e.kind) {
    case "offer_registered":
      return "The seller registered the offer with the relayer";
    case "tracking_event":
      return `The carrier (${s("carrier")}) reported: ${s("status").replaceAll("_", " ")}`;
    case "offer_status":
      return `Shipment: ${s("from").replaceAll("_", " ")} → ${s("to").replaceAll("_", " ")}`;
    case "job_enqueued":
      return `The relayer queued: ${action}`;
    case "tx_signed":
      return `The relayer signed: ${action}`;
    case "tx_confirmed":
      return "The relayer's transaction landed";
    case "tx_failed":
      return `The relayer's transaction failed: ${s("error")}`;
    case "tx_expired":
      return "The relayer's transaction expired unsent; it will be retried";
    case "offer_settled":
      return `The relayer recorded the settlement: ${s("settlement")}`;
    case "job_retried":
      return `An operator retried: ${action}`;
    default:
      return e.kind.replaceAll("_", " ");
  }
}

export function renderAudit(view: DealView, entries: Entry[]): void {
  const items = entries.map((e) => {
    const payload = payloadOf(e);
    const text = entryText(e, payload);
    const at = new Date(e.at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    const signature = String(payload.signature ?? "");
    const li = el("li", { "data-kind": e.kind, "data-seq": String(e.seq) }, `${at}: ${text}`);
    if (signature) li.append(" · ", txLink(view, signature));
    return li;
  });
  byId("audit-events").replaceChildren(
    ...(items.length ? items : [el("li", { class: "empty" }, "No record yet.")]),
  );
}
