//! The relayer against a chain, on both backends: the embedded SVM (LiteSVM with the compiled
//! program) and a real `solana-test-validator` over JSON-RPC, with OpenBao signing. The same
//! stories and attacks run on each (`support::ledger` hides the difference); one validator serves
//! every scenario in sequence (it costs ~1 core while running), each with its own wallets, mint,
//! escrow, database and relayer.
#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod embedded_only;
mod stories;

use support::ledger::Ledger;

#[tokio::test]
async fn on_the_embedded_chain() {
    let ledger = Ledger::embedded().await;
    stories::all(&ledger).await;
    attacks::all(&ledger).await;
}

#[tokio::test]
async fn on_a_real_node() {
    let ledger = Ledger::node().await;
    stories::all(&ledger).await;
    attacks::all(&ledger).await;
    stories::serve_refuses_to_execute_without_the_right_relayer_address(&ledger).await;
}
