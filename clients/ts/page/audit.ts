// The relayer's audit log checked in the browser, the way `relayer audit verify` checks it
// (relayer/src/audit): every entry's hash recomputed from its fields, every link to the entry
// before it, and the newest signed checkpoint's head and Ed25519 signature.
//
//   hash = sha256(canonical {"at","kind","offer_id","payload","prev_hash","seq"})
//   checkpoint signs "\xffsolana offchain" || "openclaw-escrow audit checkpoint\n<size>\n<head>\n<at>"
import { decodeBase58 } from "./base58";

export interface Entry {
  seq: number;
  at: string;
  kind: string;
  offer_id: string | null;
  payload: string;
  prev_hash: string;
  hash: string;
}

export interface Checkpoint {
  tree_size: number;
  head_hash: string;
  signed_at: string;
  signer: string;
  signature: string;
}

/** A JSON value whose numbers keep their text: a u64 amount does not fit a JS number. */
type Json = null | boolean | string | { num: string } | Json[] | { obj: [string, Json][] };

class Unsupported extends Error {}

function parse(text: string): Json {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const value = (): Json => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: [string, Json][] = [];
      ws();
      if (text[i] === "}") return i++, { obj };
      for (;;) {
        ws();
        const key = value();
        if (typeof key !== "string") throw new SyntaxError("object key");
        ws();
        if (text[i++] !== ":") throw new SyntaxError("expected :");
        obj.push([key, value()]);
        ws();
        const sep = text[i++];
        if (sep === "}") return { obj };
        if (sep !== ",") throw new SyntaxError("expected , or }");
      }
    }
    if (c === "[") {
      i++;
      const items: Json[] = [];
      ws();
      if (text[i] === "]") return i++, items;
      for (;;) {
        items.push(value());
        ws();
        const sep = text[i++];
        if (sep === "]") return items;
        if (sep !== ",") throw new SyntaxError("expected , or ]");
      }
    }
    if (c === '"') {
      const start = i++;
      while (text[i] !== '"') {
        if (i >= text.length) throw new SyntaxError("unterminated string");
        i += text[i] === "\\" ? 2 : 1;
      }
      return JSON.parse(text.slice(start, ++i)) as string;
    }
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) throw new SyntaxError(`unexpected ${JSON.stringify(c)}`);
    i += m[0].length;
    if (m[0] === "true" || m[0] === "false") return m[0] === "true";
    if (m[0] === "null") return null;
    return { num: m[0] };
  };
  const v = value();
  ws();
  if (i !== text.length) throw new SyntaxError("trailing characters");
  return v;
}

const utf8 = new TextEncoder();

function compareBytes(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return x[k] - y[k];
  return x.length - y.length;
}

/** Keys sorted by their bytes, no whitespace: serde_json's text for the same value. */
function canonical(v: Json): string {
  if (v === null || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if ("num" in v) {
    // Integers in i64 or u64 print as written; serde_json rewrites anything else (a fraction,
    // an exponent, -0, a larger integer) as a float, which this page does not reproduce.
    const n = /^-?\d+$/.test(v.num) ? BigInt(v.num) : null;
    const fits = n !== null && n >= -(2n ** 63n) && n < 2n ** 64n && v.num !== "-0";
    if (!fits) throw new Unsupported(`the number ${v.num}`);
    return v.num;
  }
  // A repeated key keeps its last value, as serde_json's map does.
  const fields = new Map<string, Json>(v.obj);
  const keys = [...fields.keys()].sort(compareBytes);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(fields.get(k)!)}`).join(",")}}`;
}

/** RFC 3339 as the relayer hashes it: UTC with exactly six fractional digits. */
function micros(at: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(at);
  if (!m) throw new Unsupported(`the timestamp ${at}`);
  return `${m[1]}.${(m[2] ?? "").padEnd(6, "0").slice(0, 6)}Z`;
}

function hex(bytes: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(s.slice(2 * k, 2 * k + 2), 16);
  return out;
}

export async function entryHash(e: Entry): Promise<string> {
  let payload: Json;
  try {
    payload = parse(e.payload);
  } catch {
    payload = e.payload; // the relayer hashes unparsable text as a string
  }
  const leaf: Json = {
    obj: [
      ["at", micros(e.at)],
      ["kind", e.kind],
      ["offer_id", e.offer_id],
      ["payload", payload],
      ["prev_hash", e.prev_hash],
      ["seq", { num: String(e.seq) }],
    ],
  };
  return hex(await crypto.subtle.digest("SHA-256", utf8.encode(canonical(leaf))));
}

export async function checkpointSigned(c: Checkpoint): Promise<boolean> {
  const text = utf8.encode(
    `openclaw-escrow audit checkpoint\n${c.tree_size}\n${c.head_hash}\n${micros(c.signed_at)}`,
  );
  // Solana's off-chain domain is 0xff then "solana offchain" (0xff is no UTF-8 text byte).
  const domain = utf8.encode("solana offchain");
  const message = new Uint8Array(1 + domain.length + text.length);
  message[0] = 0xff;
  message.set(domain, 1);
  message.set(text, 1 + domain.length);
  const key = await crypto.subtle.importKey(
    "raw",
    decodeBase58(c.signer),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  return crypto.subtle.verify({ name: "Ed25519" }, key, unhex(c.signature), message);
}

export type Verdict =
  | { ok: true; entries: number; checkpoint: Checkpoint | null }
  | { ok: false; problem: string };

/** Pages of the whole log read at most, from the deal's first entry: beyond, the CLI's job. */
const MAX_PAGES = 20;
const PAGE = 1000;

/**
 * Walks the log from the deal's first entry to `checkpoint` (the first to cover the deal's last
 * entry) or, without one, to the deal's last entry: every hash and link recomputed, the deal's
 * own copies compared field by field, none of its entries left out; then the checkpoint's head
 * and signature. `fetchPage(after)` returns the entries with `seq > after`, in order.
 */
export async function verifyDeal(
  offer: string,
  own: Entry[],
  checkpoint: Checkpoint | null,
  fetchPage: (after: number) => Promise<Entry[]>,
): Promise<Verdict> {
  try {
    return await walk(offer, own, checkpoint, fetchPage);
  } catch (e) {
    if (e instanceof Unsupported) {
      return { ok: false, problem: `this page cannot check ${e.message}; run relayer audit verify` };
    }
    throw e;
  }
}

/** An entry's every field, to compare the deal's copy with the log's. */
const fields = (e: Entry) =>
  JSON.stringify([e.seq, e.at, e.kind, e.offer_id, e.payload, e.prev_hash, e.hash]);

async function walk(
  offer: string,
  own: Entry[],
  checkpoint: Checkpoint | null,
  fetchPage: (after: number) => Promise<Entry[]>,
): Promise<Verdict> {
  if (own.length === 0) return { ok: false, problem: "the relayer has no record of this deal" };
  const first = own[0].seq;
  const last = own[own.length - 1].seq;
  const until = Math.max(last, checkpoint?.tree_size ?? 0);
  const mine = new Map(own.map((e) => [e.seq, fields(e)]));
  let prev = own[0].prev_hash;
  let seq = first - 1;
  let head: string | undefined;
  for (let page = 0; seq < until; page++) {
    if (page === MAX_PAGES) {
      return { ok: false, problem: "the log is too long to check here; run relayer audit verify" };
    }
    const batch = await fetchPage(seq);
    if (batch.length === 0) break;
    for (const e of batch.slice(0, PAGE)) {
      if (e.seq !== seq + 1) return { ok: false, problem: `entry ${seq + 1} is missing` };
      if (e.prev_hash !== prev) return { ok: false, problem: `entry ${e.seq} does not link to ${seq}` };
      if ((await entryHash(e)) !== e.hash) {
        return { ok: false, problem: `entry ${e.seq} does not match its hash: it was changed` };
      }
      if (mine.has(e.seq) && mine.get(e.seq) !== fields(e)) {
        return { ok: false, problem: `entry ${e.seq} differs from the deal's copy` };
      }
      if (e.offer_id === offer && !mine.has(e.seq)) {
        return { ok: false, problem: `the relayer's list of this deal's entries leaves out entry ${e.seq}` };
      }
      mine.delete(e.seq);
      if (e.seq === checkpoint?.tree_size) head = e.hash;
      prev = e.hash;
      seq = e.seq;
      if (seq >= until) break;
    }
  }
  if (mine.size > 0) return { ok: false, problem: "some of the deal's entries are not in the log" };
  if (!checkpoint || checkpoint.tree_size < first) {
    return { ok: true, entries: own.length, checkpoint: null };
  }
  if (head !== checkpoint.head_hash) {
    return { ok: false, problem: `the signed checkpoint's head is not entry ${checkpoint.tree_size}` };
  }
  if (!(await checkpointSigned(checkpoint))) {
    return { ok: false, problem: "the checkpoint's signature does not verify" };
  }
  return { ok: true, entries: own.length, checkpoint };
}
