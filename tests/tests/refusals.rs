//! Each refusal the policy makes, with the error it names and nothing changed.
use anchor_lang::{error::ErrorCode as AnchorError, prelude::Pubkey};
use escrow::{errors::EscrowError, EscrowStatus, Outcome};
use escrow_tests::{fixtures::*, MintExtension, TOKEN, TOKEN_2022};
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

fn with_args(edit: impl FnOnce(&mut World)) -> (World, litesvm::types::TransactionResult) {
    let mut w = World::new();
    edit(&mut w);
    let result = w.create();
    (w, result)
}

// ---- create: the policy -------------------------------------------------------------------

#[test]
fn zero_amount_is_refused() {
    let (w, r) = with_args(|w| w.args.amount = 0);
    assert_escrow_error(r, EscrowError::ZeroAmount);
    assert!(w.state().is_none());
}

#[test]
fn threshold_above_approver_count_is_refused() {
    let (_, r) = with_args(|w| w.args.threshold = 5);
    assert_escrow_error(r, EscrowError::InvalidThreshold);
}

#[test]
fn zero_threshold_is_refused() {
    let (_, r) = with_args(|w| w.args.threshold = 0);
    assert_escrow_error(r, EscrowError::InvalidThreshold);
}

#[test]
fn duplicate_approvers_are_refused() {
    let (_, r) = with_args(|w| w.args.approvers[3] = w.args.approvers[1]);
    assert_escrow_error(r, EscrowError::DuplicateApprover);
}

#[test]
fn default_key_approver_is_refused() {
    let (_, r) = with_args(|w| w.args.approvers[2] = Pubkey::default());
    assert_escrow_error(r, EscrowError::DefaultApprover);
}

#[test]
fn no_approvers_and_too_many_approvers_are_refused() {
    let (_, r) = with_args(|w| w.args.approvers.clear());
    assert_escrow_error(r, EscrowError::NoApprovers);
    let (_, r) = with_args(|w| w.args.approvers = (0..9).map(|_| Pubkey::new_unique()).collect());
    assert_escrow_error(r, EscrowError::TooManyApprovers);
}

#[test]
fn eight_approvers_with_threshold_eight_are_accepted() {
    let (w, r) = with_args(|w| {
        w.args.approvers = (0..8).map(|_| Pubkey::new_unique()).collect();
        w.args.threshold = 8;
    });
    r.expect("8-of-8 is a valid policy");
    assert_eq!(w.state().unwrap().approvers().len(), 8);
}

#[test]
fn deadline_in_the_past_is_refused() {
    let (_, r) = with_args(|w| w.args.refund_after = w.svm.now());
    assert_escrow_error(r, EscrowError::RefundDeadlineInPast);
}

#[test]
fn timelock_over_thirty_days_is_refused() {
    let (_, r) = with_args(|w| w.args.timelock_secs = escrow::state::MAX_TIMELOCK_SECS + 1);
    assert_escrow_error(r, EscrowError::TimelockTooLong);
}

#[test]
fn seller_equal_to_buyer_or_default_is_refused() {
    let (_, r) = with_args(|w| w.args.seller = w.buyer.pubkey());
    assert_escrow_error(r, EscrowError::InvalidSeller);
    let (_, r) = with_args(|w| w.args.seller = Pubkey::default());
    assert_escrow_error(r, EscrowError::InvalidSeller);
}

// ---- approvals ------------------------------------------------------------------------------

#[test]
fn non_approver_cannot_approve() {
    let mut w = World::new();
    w.fund();
    let outsider = w.svm.wallet();
    let ix = w.deal.approve(&outsider.pubkey(), Outcome::Release);
    assert_escrow_error(w.svm.send(&[ix], &[&outsider]), EscrowError::NotAnApprover);
    assert_eq!(w.state().unwrap().release_approvals, 0);
}

#[test]
fn duplicate_approval_is_refused() {
    let mut w = World::new();
    w.fund();
    w.approve(Who::Relayer, Outcome::Release).unwrap();
    assert_escrow_error(
        w.approve(Who::Relayer, Outcome::Release),
        EscrowError::AlreadyApproved,
    );
    // Twice in one transaction: the second sees the first.
    let ix = w.deal.approve(&w.arbiter.pubkey(), Outcome::Refund);
    let r = w.svm.send(&[ix.clone(), ix], &[&w.arbiter]);
    assert_escrow_error(r, EscrowError::AlreadyApproved);
    let state = w.state().unwrap();
    assert_eq!(state.release_approvals.count_ones(), 1);
    assert_eq!(
        state.refund_approvals, 0,
        "the failed transaction changed nothing"
    );
}

#[test]
fn approving_both_outcomes_is_refused() {
    let mut w = World::new();
    w.fund();
    w.approve(Who::Arbiter, Outcome::Release).unwrap();
    assert_escrow_error(
        w.approve(Who::Arbiter, Outcome::Refund),
        EscrowError::ApprovedOtherOutcome,
    );
    w.revoke(Who::Arbiter, Outcome::Release).unwrap();
    w.approve(Who::Arbiter, Outcome::Refund)
        .expect("after revoking, the other outcome is allowed");
}

#[test]
fn approval_before_deposit_is_refused() {
    let mut w = World::new();
    w.create().unwrap();
    assert_escrow_error(
        w.approve(Who::Relayer, Outcome::Release),
        EscrowError::NotFunded,
    );
}

#[test]
fn a_scheduled_outcome_cannot_be_approved_again_or_revoked() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    assert_escrow_error(
        w.approve(Who::Arbiter, Outcome::Release),
        EscrowError::OutcomeAlreadyScheduled,
    );
    assert_escrow_error(
        w.approve(Who::Arbiter, Outcome::Refund),
        EscrowError::OtherOutcomeScheduled,
    );
    assert_escrow_error(
        w.revoke(Who::Seller, Outcome::Release),
        EscrowError::OutcomeAlreadyScheduled,
    );
}

#[test]
fn revoking_without_an_approval_is_refused() {
    let mut w = World::new();
    w.fund();
    assert_escrow_error(
        w.revoke(Who::Arbiter, Outcome::Release),
        EscrowError::NotApproved,
    );
}

// ---- timelock and payouts -----------------------------------------------------------------------

#[test]
fn release_before_eta_is_refused_and_exactly_at_eta_succeeds() {
    let mut w = World::new();
    w.fund();
    assert_escrow_error(w.release(), EscrowError::ReleaseNotScheduled);
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK) - 1);
    assert_escrow_error(w.release(), EscrowError::TimelockNotElapsed);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
    w.svm.advance(1);
    w.release().expect("release exactly at eta");
    assert_eq!(w.svm.token_balance(&w.seller_token), AMOUNT);
}

#[test]
fn refund_before_eta_is_refused_and_exactly_at_eta_succeeds() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Refund);
    w.svm.advance(i64::from(TIMELOCK) - 1);
    assert_escrow_error(w.refund(Who::Anyone), EscrowError::TimelockNotElapsed);
    w.svm.advance(1);
    w.refund(Who::Anyone).expect("refund exactly at eta");
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
}

#[test]
fn release_after_a_dispute_is_refused() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.dispute(Who::Buyer).expect("buyer disputes in the window");
    w.svm.advance(i64::from(TIMELOCK));
    assert_escrow_error(w.release(), EscrowError::ReleaseNotScheduled);
    let state = w.state().unwrap();
    assert_eq!(
        state.release_approvals, 0,
        "the dispute cleared the release approvals"
    );
    assert_eq!(state.scheduled(), None);
}

#[test]
fn disputes_are_once_per_party_before_eta_and_only_against_the_right_outcome() {
    let mut w = World::new();
    w.fund();
    assert_escrow_error(w.dispute(Who::Buyer), EscrowError::NothingToDispute);
    w.schedule(Outcome::Release);
    assert_escrow_error(w.dispute(Who::Seller), EscrowError::NothingToDispute);
    assert_escrow_error(w.dispute(Who::Arbiter), EscrowError::NotAParty);
    w.dispute(Who::Buyer).unwrap();
    w.schedule(Outcome::Release);
    assert_escrow_error(w.dispute(Who::Buyer), EscrowError::AlreadyDisputed);
    w.svm.advance(i64::from(TIMELOCK));
    let mut v = World::new();
    v.fund();
    v.schedule(Outcome::Refund);
    v.svm.advance(i64::from(TIMELOCK));
    assert_escrow_error(v.dispute(Who::Seller), EscrowError::DisputeWindowClosed);
}

#[test]
fn double_release_is_refused() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    w.release().unwrap();
    assert_anchor_error(w.release(), AnchorError::AccountOwnedByWrongProgram);
    assert_eq!(w.svm.token_balance(&w.seller_token), AMOUNT);
}

#[test]
fn release_after_refund_is_refused() {
    let mut w = World::new();
    w.fund();
    w.refund(Who::Seller)
        .expect("the seller may refund at once");
    assert_anchor_error(w.release(), AnchorError::AccountOwnedByWrongProgram);
    assert_eq!(w.svm.token_balance(&w.buyer_token), BUYER_FUNDS);
    assert_eq!(w.svm.token_balance(&w.seller_token), 0);
}

#[test]
fn refund_needs_a_reason() {
    let mut w = World::new();
    w.fund();
    assert_escrow_error(w.refund(Who::Anyone), EscrowError::RefundNotAllowed);
    assert_escrow_error(w.refund(Who::Buyer), EscrowError::RefundNotAllowed);
    w.svm.advance(REFUND_AFTER);
    w.schedule(Outcome::Release);
    assert_escrow_error(w.refund(Who::Anyone), EscrowError::ReleaseScheduled);
}

#[test]
fn deposit_twice_and_cancel_after_deposit_are_refused() {
    let mut w = World::new();
    w.fund();
    assert_escrow_error(w.deposit(), EscrowError::AlreadyFunded);
    assert_escrow_error(w.cancel(), EscrowError::AlreadyFunded);
    assert_eq!(w.state().unwrap().status(), EscrowStatus::Funded);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
}

// ---- accounts that must match the escrow ---------------------------------------------------------

#[test]
fn wrong_mint_is_refused() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let other_mint = w.svm.create_mint(&TOKEN, 6, &[]);
    let mut deal = w.deal;
    deal.mint = other_mint;
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongMint);
}

#[test]
fn wrong_token_program_is_refused() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let mut deal = w.deal;
    deal.token_program = TOKEN_2022;
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongTokenProgram);
}

#[test]
fn wrong_vault_is_refused() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    // An empty token account the escrow PDA owns, made by an attacker, is not the vault.
    let decoy = w.svm.create_token_account(&w.mint, &w.deal.escrow);
    let mut deal = w.deal;
    deal.vault = decoy;
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongVault);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
}

#[test]
fn substituted_seller_token_account_is_refused() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let thief = Keypair::new();
    let thief_token = w.svm.create_token_account(&w.mint, &thief.pubkey());
    let r = w.svm.send(&[w.deal.release(&thief_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongSellerTokenAccount);
    // The buyer's account is not the seller's either.
    let r = w.svm.send(&[w.deal.release(&w.buyer_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongSellerTokenAccount);
    assert_eq!(w.svm.token_balance(&thief_token), 0);
}

#[test]
fn substituted_buyer_token_account_is_refused() {
    let mut w = World::new();
    w.fund();
    let thief = Keypair::new();
    let thief_token = w.svm.create_token_account(&w.mint, &thief.pubkey());
    let ix = w.deal.refund(&w.seller.pubkey(), &thief_token);
    assert_escrow_error(
        w.svm.send(&[ix], &[&w.seller]),
        EscrowError::WrongBuyerTokenAccount,
    );
    let ix = w.deal.refund(&w.seller.pubkey(), &w.seller_token);
    assert_escrow_error(
        w.svm.send(&[ix], &[&w.seller]),
        EscrowError::WrongBuyerTokenAccount,
    );
}

#[test]
fn rent_cannot_be_redirected() {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let mut deal = w.deal;
    deal.buyer = w.svm.payer.pubkey();
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongBuyer);
}

#[test]
fn mint_and_token_program_must_agree_at_create() {
    // A Token-2022 mint claimed to belong to SPL Token, and an SPL Token mint claimed to belong
    // to Token-2022: both refused, and the transaction reverts with nothing created. (The token
    // program itself refuses to initialise a vault for a mint it does not own;
    // Anchor runs the vault's `init` before the mint's constraint.)
    let mut w = World::with_mint(&TOKEN_2022, &[MintExtension::MintCloseAuthority]);
    w.token_program = TOKEN;
    assert_tx_error(
        w.create(),
        TransactionError::InstructionError(0, InstructionError::IncorrectProgramId),
    );
    assert!(w.state().is_none());

    let mut w = World::new();
    w.token_program = TOKEN_2022;
    assert_tx_error(
        w.create(),
        TransactionError::InstructionError(0, InstructionError::IncorrectProgramId),
    );
    assert!(w.state().is_none());
}

#[test]
fn a_dispute_at_the_deadline_does_not_open_the_deadline_refund() {
    // The release is approved half an hour before the refund deadline, so its eta lies after it.
    let mut w = World::new();
    w.fund();
    w.svm.advance(REFUND_AFTER - 1_800);
    w.schedule(Outcome::Release);
    w.svm.advance(1_800);
    // At the deadline the buyer disputes and asks for the deadline refund in one transaction.
    let buyer = w.buyer.pubkey();
    let ixs = [
        w.deal.dispute(&buyer),
        w.deal.refund(&buyer, &w.buyer_token),
    ];
    let r = w.svm.send(&ixs, &[&w.buyer]);
    assert_escrow_error(r, EscrowError::RefundNotAllowed);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
    // The dispute alone goes through and leaves the approvers a timelock to decide again.
    w.dispute(Who::Buyer).unwrap();
    let state = w.state().unwrap();
    assert_eq!(state.refund_after, w.svm.now() + i64::from(TIMELOCK));
    assert_escrow_error(w.refund(Who::Anyone), EscrowError::RefundNotAllowed);
    // The arbiter sides with the seller: a fresh release, which the deadline no longer beats.
    w.approve(Who::Arbiter, Outcome::Release).unwrap();
    w.approve(Who::Seller, Outcome::Release).unwrap();
    w.svm.advance(i64::from(TIMELOCK));
    assert_escrow_error(w.refund(Who::Anyone), EscrowError::ReleaseScheduled);
    w.release().expect("release after arbitration");
    assert_eq!(w.svm.token_balance(&w.seller_token), AMOUNT);
}
