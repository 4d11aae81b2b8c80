//! The relayer against a chain, on both backends: the embedded SVM (LiteSVM with the compiled
//! program) and a real `solana-test-validator` over JSON-RPC, with OpenBao signing. The same
//! stories and attacks run on each (`support::ledger` hides the difference); one validator serves
//! every scenario in sequence (it costs ~1 core while running), each with its own wallets, mint,
//! escrow, database and relayer. The stories run again on the embedded chain with the key in AWS
//! KMS (ministack) and in GCP Cloud KMS (`support::gcp_kms`), all but OpenBao's own outage.
#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod embedded_only;
mod stories;

use std::sync::Arc;

use support::{gcp_kms::FakeCloudKms, ledger::Ledger, ministack::Ministack};

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

#[tokio::test]
async fn a_delivery_from_each_tracking_provider_ends_in_a_release_on_the_embedded_chain() {
    let ledger = Ledger::embedded().await;
    stories::a_delivery_reported_by_each_provider_ends_in_a_release(&ledger).await;
}

#[tokio::test]
async fn the_stories_signed_by_aws_kms_on_the_embedded_chain() {
    let ms = Ministack::start().await;
    let arn = ms.create_key("ECC_NIST_EDWARDS25519", "SIGN_VERIFY").await;
    let kms = ms.signer(&arn).await.expect("AWS KMS signer");
    let ledger = Ledger::embedded_signed_by(Arc::new(kms)).await;
    stories::with_any_signer(&ledger).await;
}

#[tokio::test]
async fn the_stories_signed_by_gcp_cloud_kms_on_the_embedded_chain() {
    let (fake, key_file, version, _) = FakeCloudKms::with_relayer_key().await;
    let kms = fake
        .connect(&key_file, &version)
        .await
        .expect("Cloud KMS signer");
    let ledger = Ledger::embedded_signed_by(Arc::new(kms)).await;
    stories::with_any_signer(&ledger).await;
}
