//! The Sealevel attack classes that apply to this program: each test tries the attack and
//! sees it fail, leaving the money where it was.
use anchor_lang::{
    error::ErrorCode as AnchorError,
    prelude::Pubkey,
    solana_program::{instruction::AccountMeta, system_instruction},
};
use escrow::{client, errors::EscrowError, CreateArgs, Outcome};
use escrow_tests::fixtures::*;
use solana_account::Account;
use solana_signer::Signer;

fn ready_to_release() -> World {
    let mut w = World::new();
    w.fund();
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    w
}

#[test]
fn signer_authorization() {
    let mut w = World::new();
    w.fund();
    // The relayer's key is named as approver but the relayer did not sign.
    let mut ix = w.deal.approve(&w.relayer.pubkey(), Outcome::Release);
    ix.accounts[0].is_signer = false;
    assert_anchor_error(w.svm.send(&[ix], &[]), AnchorError::AccountNotSigner);
    // A refund "by the seller" that the seller did not sign.
    let mut ix = w.deal.refund(&w.seller.pubkey(), &w.buyer_token);
    ix.accounts[0].is_signer = false;
    assert_anchor_error(w.svm.send(&[ix], &[]), AnchorError::AccountNotSigner);
    assert_eq!(w.state().unwrap().release_approvals, 0);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
}

#[test]
fn account_data_matching() {
    let mut w = World::new();
    w.create().unwrap();
    // An attacker signs as "buyer" of someone else's escrow, depositing from their own account.
    let attacker = w.svm.wallet();
    let attacker_token = w.svm.create_token_account(&w.mint, &attacker.pubkey());
    w.svm.mint_to(&w.mint, &attacker_token, AMOUNT);
    let mut deal = w.deal;
    deal.buyer = attacker.pubkey();
    let r = w.svm.send(&[deal.deposit(&attacker_token)], &[&attacker]);
    assert_escrow_error(r, EscrowError::WrongBuyer);
    assert_eq!(w.svm.token_balance(&w.deal.vault), 0);
}

#[test]
fn owner_checks() {
    let mut w = ready_to_release();
    // A byte-for-byte copy of the escrow, owned by another program, scheduled for release.
    let real = w.svm.svm.get_account(&w.deal.escrow).unwrap();
    let forged = Pubkey::new_unique();
    w.svm
        .svm
        .set_account(
            forged,
            Account {
                owner: Pubkey::new_unique(),
                ..real
            },
        )
        .unwrap();
    let mut deal = w.deal;
    deal.escrow = forged;
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_anchor_error(r, AnchorError::AccountOwnedByWrongProgram);
}

#[test]
fn type_cosplay() {
    let mut w = ready_to_release();
    // The program's own account type must be an Escrow: same bytes with another discriminator
    // are refused, and so is a token account (the vault) posing as the escrow.
    let mut fake = w.svm.svm.get_account(&w.deal.escrow).unwrap();
    fake.data[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let forged = Pubkey::new_unique();
    w.svm.svm.set_account(forged, fake).unwrap();
    let mut deal = w.deal;
    deal.escrow = forged;
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_anchor_error(r, AnchorError::AccountDiscriminatorMismatch);

    deal.escrow = w.deal.vault;
    let r = w.svm.send(
        &[deal.approve(&w.relayer.pubkey(), Outcome::Refund)],
        &[&w.relayer],
    );
    assert_anchor_error(r, AnchorError::AccountOwnedByWrongProgram);
}

#[test]
fn reinitialization() {
    let mut w = World::new();
    w.fund();
    // Creating the same deal again, with a policy that would hand the attacker control, fails.
    let attacker = w.svm.wallet();
    let mut args: CreateArgs = w.args.clone();
    args.approvers = vec![attacker.pubkey()];
    args.threshold = 1;
    let ix = client::create(&w.buyer.pubkey(), &w.mint, &w.token_program, args);
    assert!(w.svm.send(&[ix], &[&w.buyer]).is_err());
    let state = w.state().unwrap();
    assert_eq!(state.approvers(), w.args.approvers.as_slice());
    assert_eq!(state.received, AMOUNT);
}

#[test]
fn arbitrary_cpi() {
    let mut w = ready_to_release();
    // A program that is not SPL Token or Token-2022 posing as the token program.
    let mut ix = w.deal.release(&w.seller_token);
    let token_program = ix
        .accounts
        .iter_mut()
        .find(|m| m.pubkey == w.token_program)
        .unwrap();
    *token_program = AccountMeta::new_readonly(escrow::ID, false);
    assert_anchor_error(w.svm.send(&[ix], &[]), AnchorError::InvalidProgramId);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
}

#[test]
fn duplicate_mutable_accounts() {
    let mut w = ready_to_release();
    // The vault passed as the seller's account too. Every mutable slot is pinned to a recorded
    // address or token owner, so an alias always breaks one of those checks.
    let r = w.svm.send(&[w.deal.release(&w.deal.vault)], &[]);
    assert_escrow_error(r, EscrowError::WrongSellerTokenAccount);
    assert_eq!(w.svm.token_balance(&w.deal.vault), AMOUNT);
    // And as the buyer's source account on deposit: its token owner is the escrow, not the buyer.
    let mut v = World::new();
    v.create().unwrap();
    let r = v.svm.send(&[v.deal.deposit(&v.deal.vault)], &[&v.buyer]);
    assert_anchor_error(r, AnchorError::ConstraintTokenOwner);
}

#[test]
fn bump_seed_canonicalization() {
    let mut w = World::new();
    let buyer = w.buyer.pubkey();
    let seeds: [&[u8]; 3] = [b"escrow", buyer.as_ref(), &w.args.id.to_le_bytes()];
    let (_, canonical) = Pubkey::find_program_address(&seeds, &escrow::ID);
    let other_bump = (0..canonical)
        .rev()
        .find_map(|b| {
            let mut s = seeds.to_vec();
            let bump = [b];
            s.push(&bump);
            Pubkey::create_program_address(&s, &escrow::ID).ok()
        })
        .expect("a non-canonical bump exists");
    let mut ix = w.create_ix();
    ix.accounts[1].pubkey = other_bump;
    assert_anchor_error(w.svm.send(&[ix], &[&w.buyer]), AnchorError::ConstraintSeeds);
    assert!(w.svm.is_closed(&other_bump));
}

#[test]
fn pda_sharing() {
    // Two deals of one buyer: each vault belongs to its own escrow only.
    let mut w = ready_to_release();
    w.args.id = 43;
    let second = client::escrow_address(&w.buyer.pubkey(), 43).0;
    w.svm.ok(&[w.create_ix()], &[&w.buyer]);
    let second_vault = client::vault_address(&second).0;
    assert_ne!(second_vault, w.deal.vault);
    let mut deal = w.deal;
    deal.vault = second_vault;
    let r = w.svm.send(&[deal.release(&w.seller_token)], &[]);
    assert_escrow_error(r, EscrowError::WrongVault);
}

#[test]
fn closing_accounts() {
    let mut w = ready_to_release();
    // Release, then revive the closed escrow with lamports in the same transaction and try to
    // use it again: the account no longer belongs to the program, so everything reverts.
    let revive = system_instruction::transfer(&w.svm.payer.pubkey(), &w.deal.escrow, 10_000_000);
    let again = w.deal.approve(&w.arbiter.pubkey(), Outcome::Refund);
    let r = w.svm.send(
        &[w.deal.release(&w.seller_token), revive, again],
        &[&w.arbiter],
    );
    assert_anchor_error(r, AnchorError::AccountOwnedByWrongProgram);
    assert_eq!(
        w.svm.token_balance(&w.deal.vault),
        AMOUNT,
        "the whole transaction reverted"
    );

    w.release().unwrap();
    assert!(w.svm.is_closed(&w.deal.escrow));
    assert!(w.svm.is_closed(&w.deal.vault));
    assert_anchor_error(w.release(), AnchorError::AccountOwnedByWrongProgram);
}
