// Drives the deal page in headless Chromium for relayer/tests/service/deal_page.rs, which starts
// the relayer on the embedded chain and holds the wallets' keys.
//
//   node browser.mjs <plan.json>
//
// The plan: { url, chromium, out, wallet: { name, address, sign_url, chain } | null, steps }.
// A step is one of
//   { "screenshot": "name" }                    saved as <out>/<name>.png
//   { "connect": true }                         connects the test wallet from the page's button
//   { "click": "Fund escrow" }                  clicks the wallet action with that label
//   { "text": "#selector", "has": "words" }     waits until the element's text contains the words
//   { "absent": "words" }                       the page's text must not contain the words
//   { "allow_console": "words" }                from here on, console errors with these words
//                                               are expected (the browser logs an Action's 400)
//
// The test wallet is a Wallet Standard wallet registered in the page before its script runs.
// Like a browser extension, it keeps its key outside the page: signAndSendTransaction hands the
// transaction to the test (plan.wallet.sign_url), which signs it with the party's keypair and
// lands it on the chain. Any console error (but those a step allows), page error or failed
// request fails the run.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const TIMEOUT = 20_000;

/** Runs in the page before any of its scripts: registers the test wallet. */
function registerTestWallet({ name, address, chain }) {
  const account = {
    address,
    publicKey: new Uint8Array(32),
    chains: [chain],
    features: ["solana:signAndSendTransaction"],
  };
  const wallet = {
    version: "1.0.0",
    name,
    icon: "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxIDEiPjxyZWN0IHdpZHRoPSIxIiBoZWlnaHQ9IjEiLz48L3N2Zz4=",
    chains: [chain],
    accounts: [],
    features: {
      "standard:connect": {
        version: "1.0.0",
        connect: async () => {
          wallet.accounts = [account];
          return { accounts: wallet.accounts };
        },
      },
      "standard:events": { version: "1.0.0", on: () => () => {} },
      "solana:signAndSendTransaction": {
        version: "1.0.0",
        supportedTransactionVersions: ["legacy", 0],
        signAndSendTransaction: async (...inputs) =>
          Promise.all(
            inputs.map(async (input) => {
              if (input.account.address !== address) throw new Error("not this wallet's account");
              if (input.chain !== chain) throw new Error(`this wallet is on ${chain}, not ${input.chain}`);
              const signature = await window.testWalletSignAndSend(Array.from(input.transaction));
              return { signature: new Uint8Array(signature) };
            }),
          ),
      },
    },
  };
  const register = ({ register }) => register(wallet);
  window.addEventListener("wallet-standard:app-ready", (event) => register(event.detail));
  window.dispatchEvent(new CustomEvent("wallet-standard:register-wallet", { detail: register }));
}

const browser = await chromium.launch({ executablePath: plan.chromium, args: ["--no-sandbox"] });
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 1400 } });
  page.setDefaultTimeout(TIMEOUT);
  const expected = [];
  const allowed = (text) => expected.some((words) => text.includes(words));
  page.on("console", (m) => {
    if (m.type() === "error" && !allowed(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("dialog", (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  if (plan.wallet) {
    await page.exposeFunction("testWalletSignAndSend", async (bytes) => {
      const response = await fetch(plan.wallet.sign_url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ wallet: plan.wallet.address, transaction: Buffer.from(bytes).toString("base64") }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error);
      return [...Buffer.from(body.signature, "base64")];
    });
    await page.addInitScript(registerTestWallet, {
      name: plan.wallet.name,
      address: plan.wallet.address,
      chain: plan.wallet.chain,
    });
  }
  await page.goto(plan.url);
  for (const step of plan.steps) {
    if (step.screenshot) {
      await page.screenshot({ path: join(plan.out, `${step.screenshot}.png`), fullPage: true });
    } else if (step.connect) {
      await page.getByRole("button", { name: `Connect ${plan.wallet.name}` }).click();
      await page.getByText(`Connected: ${plan.wallet.address}`).waitFor();
    } else if (step.click) {
      const button = page.locator(`#wallet-actions button`, { hasText: step.click });
      await button.click();
    } else if (step.text) {
      await page.waitForFunction(
        ([selector, has]) => document.querySelector(selector)?.textContent?.includes(has),
        [step.text, step.has],
      );
    } else if (step.allow_console) {
      expected.push(step.allow_console);
    } else if (step.absent) {
      const text = await page.locator("body").innerText();
      if (text.includes(step.absent)) throw new Error(`the page shows ${JSON.stringify(step.absent)}`);
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
} catch (e) {
  problems.push(`step failed: ${e.message}`);
  const page = browser.contexts()[0]?.pages()[0];
  await page?.screenshot({ path: join(plan.out, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("ok");
