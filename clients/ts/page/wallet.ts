// The wallet button: any Wallet Standard wallet in the browser connects, then signs and sends
// the transactions this deal's Solana Actions build for its account (deposit, approve,
// dispute, refund). The page holds no key and sends nothing itself; when the relayer refuses
// to build a transaction (it would fail on-chain, or the account has no part in the deal), the
// refusal is shown as the Action words it.
import {
  SolanaSignAndSendTransaction,
  type SolanaSignAndSendTransactionFeature,
} from "@solana/wallet-standard-features";
import { getWallets } from "@wallet-standard/app";
import type { Wallet, WalletAccount } from "@wallet-standard/base";
import { StandardConnect, type StandardConnectFeature } from "@wallet-standard/features";

import { encodeBase58 } from "./base58";
import { byId, el, txLink, type DealView } from "./view";

interface Connected {
  wallet: Wallet;
  account: WalletAccount;
}

let connected: Connected | null = null;
let current: DealView | null = null;
/** What the buttons show: they are redrawn only when it changes, keeping keyboard focus. */
let drawn = "";
let onSent: () => void = () => {};

function canSend(wallet: Wallet): boolean {
  return StandardConnect in wallet.features && SolanaSignAndSendTransaction in wallet.features;
}

function roleOf(view: DealView, address: string): string {
  if (address === view.buyer) return "the buyer";
  if (address === view.seller) return "the seller";
  const approver = view.policy?.approvers.find((a) => a.address === address);
  return approver ? `an approver (${approver.role})` : "not a party to this deal";
}

function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function say(text: string, cls = ""): void {
  byId("wallet-status").replaceChildren(el("span", cls ? { class: cls } : {}, text));
}

async function act(action: DealView["actions"][number]): Promise<void> {
  if (!connected || !current) return;
  const { wallet, account } = connected;
  say(`${action.label}: asking the relayer for the transaction…`);
  const response = await fetch(action.href, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ account: account.address }),
  });
  const body = (await response.json().catch(() => ({}))) as { transaction?: string; message?: string };
  if (!response.ok || !body.transaction) {
    say(`${action.label} refused: ${body.message ?? `HTTP ${response.status}`}`, "refused");
    return;
  }
  say(`${action.label}: ${body.message ?? ""} Confirm it in ${wallet.name}.`);
  const feature = wallet.features[SolanaSignAndSendTransaction] as
    SolanaSignAndSendTransactionFeature[typeof SolanaSignAndSendTransaction];
  try {
    const [sent] = await feature.signAndSendTransaction({
      account,
      chain: current.cluster.wallet_chain as `${string}:${string}`,
      transaction: fromBase64(body.transaction),
    });
    const signature = encodeBase58(sent.signature);
    byId("wallet-status").replaceChildren(
      el("span", { class: "verified" }, `${action.label}: sent. `),
      txLink(current, signature),
    );
    onSent();
  } catch (e) {
    say(`${action.label}: the wallet did not send it (${(e as Error).message})`, "refused");
  }
}

function renderActions(): void {
  const box = byId("wallet-actions");
  if (!connected || !current) {
    box.replaceChildren();
    return;
  }
  const view = current;
  const key = JSON.stringify([connected.account.address, view.actions]);
  if (key === drawn) return;
  drawn = key;
  box.replaceChildren(
    el("p", {}, `Connected: ${connected.account.address}, ${roleOf(view, connected.account.address)}.`),
    ...view.actions.map((a) => {
      const button = el("button", { type: "button", "data-action": a.kind }, a.label) as HTMLButtonElement;
      if (a.closed) {
        button.disabled = true;
        button.title = a.closed;
      }
      button.addEventListener("click", () => void act(a));
      return button;
    }),
    el("p", { class: "lede" }, ...view.actions.filter((a) => a.closed).map((a) => `${a.label}: ${a.closed}. `)),
  );
}

async function connect(wallet: Wallet): Promise<void> {
  const feature = wallet.features[StandardConnect] as StandardConnectFeature[typeof StandardConnect];
  try {
    const { accounts } = await feature.connect();
    if (!accounts.length) return say(`${wallet.name} shared no account.`, "refused");
    connected = { wallet, account: accounts[0] };
    byId("wallet-list").replaceChildren();
    say(`Connected to ${wallet.name}.`);
    renderActions();
  } catch (e) {
    say(`${wallet.name} did not connect (${(e as Error).message}).`, "refused");
  }
}

function renderWallets(wallets: readonly Wallet[]): void {
  if (connected) return;
  const usable = wallets.filter(canSend);
  const box = byId("wallet-list");
  if (!usable.length) {
    box.replaceChildren(
      el(
        "p",
        {},
        "No Solana wallet that can send transactions was found in this browser. Install one " +
          "(it must support Wallet Standard), or open this deal's Action in a wallet.",
      ),
    );
    return;
  }
  box.replaceChildren(
    ...usable.map((w) => {
      const button = el("button", { type: "button", class: "secondary" });
      if (w.icon) button.append(el("img", { src: w.icon, alt: "", width: "20", height: "20" }), " ");
      button.append(`Connect ${w.name}`);
      button.addEventListener("click", () => void connect(w));
      return button;
    }),
  );
}

/** Sets up the wallet section; `sent` runs after the wallet sent a transaction. */
export function startWallet(sent: () => void): void {
  onSent = sent;
  byId("wallet").replaceChildren(
    el("div", { id: "wallet-list" }),
    el("div", { id: "wallet-actions" }),
    el("p", { id: "wallet-status", "aria-live": "polite" }),
  );
  const { get, on } = getWallets();
  renderWallets(get());
  on("register", () => renderWallets(get()));
}

/** The deal changed: the buttons follow what is open now. */
export function updateWallet(view: DealView): void {
  current = view;
  renderActions();
}
