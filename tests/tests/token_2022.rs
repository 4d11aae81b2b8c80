//! Token-2022: transfer fees are accounted for, plain mints work, and mints whose extensions
//! could take, freeze or block the vault's funds are refused at create.
use escrow::{errors::EscrowError, Outcome};
use escrow_tests::{fixtures::*, MintExtension, TOKEN_2022};

const FEE_BPS: u16 = 100; // 1%

fn fee(amount: u64) -> u64 {
    (amount * u64::from(FEE_BPS)).div_ceil(10_000)
}

#[test]
fn transfer_fee_mint_records_and_releases_what_the_vault_received() {
    let mut w = World::with_mint(
        &TOKEN_2022,
        &[MintExtension::TransferFee {
            basis_points: FEE_BPS,
            max_fee: u64::MAX,
        }],
    );
    w.fund();
    let received = AMOUNT - fee(AMOUNT);
    assert_eq!(w.state().unwrap().received, received);
    assert_eq!(w.svm.token_balance(&w.deal.vault), received);
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS - AMOUNT);

    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    w.release()
        .expect("release harvests the withheld fee and closes the vault");
    assert_eq!(
        w.svm.token_balance(&w.seller_token),
        received - fee(received)
    );
    assert!(w.svm.is_closed(&w.deal.vault));
    assert!(w.svm.is_closed(&w.deal.escrow));
}

#[test]
fn transfer_fee_refund_returns_what_the_vault_received() {
    let mut w = World::with_mint(
        &TOKEN_2022,
        &[MintExtension::TransferFee {
            basis_points: FEE_BPS,
            max_fee: u64::MAX,
        }],
    );
    w.fund();
    let received = AMOUNT - fee(AMOUNT);
    w.refund(Who::Seller).expect("seller refunds");
    assert_eq!(
        w.svm.token_balance(&w.buyer_token),
        BUYER_FUNDS - AMOUNT + received - fee(received)
    );
    assert!(w.svm.is_closed(&w.deal.vault));
}

#[test]
fn withheld_fees_need_a_writable_mint() {
    let mut w = World::with_mint(
        &TOKEN_2022,
        &[MintExtension::TransferFee {
            basis_points: FEE_BPS,
            max_fee: u64::MAX,
        }],
    );
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let mut ix = w.deal.release(&w.seller_token);
    ix.accounts
        .iter_mut()
        .filter(|m| m.pubkey == w.mint)
        .for_each(|m| m.is_writable = false);
    assert_escrow_error(w.svm.send(&[ix], &[]), EscrowError::MintNotWritable);
    assert!(w.state().is_some());
}

#[test]
fn plain_token_2022_mint_completes_both_outcomes() {
    let mut w = World::with_mint(&TOKEN_2022, &[MintExtension::MintCloseAuthority]);
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    w.release().unwrap();
    assert_eq!(w.svm.token_balance(&w.seller_token), AMOUNT);

    let mut w = World::with_mint(&TOKEN_2022, &[]);
    w.fund();
    w.schedule(Outcome::Refund);
    w.svm.advance(i64::from(TIMELOCK));
    w.refund(Who::Anyone).unwrap();
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
}

#[test]
fn cancel_sweeps_tokens_sent_to_the_vault_before_deposit() {
    let mut w = World::with_mint(
        &TOKEN_2022,
        &[MintExtension::TransferFee {
            basis_points: FEE_BPS,
            max_fee: u64::MAX,
        }],
    );
    w.create().unwrap();
    // Anyone can send tokens to the vault; that must not block the buyer's cancel.
    let donor = w.svm.wallet();
    let donor_token = w
        .svm
        .create_token_account(&w.mint, &solana_signer::Signer::pubkey(&donor));
    w.svm.mint_to(&w.mint, &donor_token, 1_000);
    w.svm
        .transfer(&w.mint, &donor_token, &w.deal.vault, &donor, 1_000);
    w.cancel().expect("cancel sweeps and closes");
    assert!(w.svm.is_closed(&w.deal.vault));
    assert!(w.svm.is_closed(&w.deal.escrow));
    assert_eq!(
        w.svm.token_balance(&w.buyer_token),
        BUYER_FUNDS + 990 - fee(990)
    );
}

fn assert_mint_refused(extension: MintExtension, error: EscrowError) {
    let mut w = World::unfunded(&TOKEN_2022, &[extension]);
    assert_escrow_error(w.create(), error);
    assert!(w.state().is_none(), "{extension:?}: nothing was created");
}

#[test]
fn permanent_delegate_mint_is_refused() {
    assert_mint_refused(
        MintExtension::PermanentDelegate,
        EscrowError::MintHasPermanentDelegate,
    );
}

#[test]
fn transfer_hook_mint_is_refused() {
    assert_mint_refused(
        MintExtension::TransferHook,
        EscrowError::MintHasTransferHook,
    );
}

#[test]
fn non_transferable_mint_is_refused() {
    assert_mint_refused(
        MintExtension::NonTransferable,
        EscrowError::MintNonTransferable,
    );
}

#[test]
fn confidential_transfer_mint_is_refused() {
    assert_mint_refused(
        MintExtension::ConfidentialTransfer,
        EscrowError::MintConfidentialTransfer,
    );
}

#[test]
fn default_frozen_mint_is_refused() {
    assert_mint_refused(MintExtension::DefaultFrozen, EscrowError::MintDefaultFrozen);
}

#[test]
fn pausable_mint_is_refused() {
    assert_mint_refused(MintExtension::Pausable, EscrowError::MintPausable);
}

#[test]
fn a_mint_remade_with_a_permanent_delegate_before_deposit_is_refused() {
    // A close-authority mint with no supply can be closed after `create` and made anew at the
    // same address with a permanent delegate. Here the new mint's bytes are put in place directly.
    let mut w = World::unfunded(&TOKEN_2022, &[MintExtension::MintCloseAuthority]);
    w.create().expect("the mint is acceptable at create");
    let remade = w
        .svm
        .create_mint(&TOKEN_2022, 6, &[MintExtension::PermanentDelegate]);
    let account = w.svm.svm.get_account(&remade).unwrap();
    w.svm.svm.set_account(w.mint, account).unwrap();
    assert_escrow_error(w.deposit(), EscrowError::MintHasPermanentDelegate);
    assert_eq!(
        w.state().unwrap().status(),
        escrow::EscrowStatus::AwaitingDeposit
    );
}
