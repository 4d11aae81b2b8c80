//! A ready-made deal: buyer, seller, arbiter and relayer, a 2-of-4 policy with a one-hour
//! timelock and a seven-day refund deadline, the buyer holding enough tokens to deposit.
use anchor_lang::{
    error::ERROR_CODE_OFFSET, prelude::Pubkey, solana_program::instruction::Instruction,
};
use escrow::{client::Deal, errors::EscrowError, CreateArgs, Outcome};
use litesvm::types::TransactionResult;
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

use crate::{client, MintExtension, Svm, TOKEN};

pub const AMOUNT: u64 = 1_000_000;
pub const BUYER_FUNDS: u64 = 5_000_000;
pub const TIMELOCK: u32 = 3_600;
pub const REFUND_AFTER: i64 = 7 * 24 * 3_600;

pub struct World {
    pub svm: Svm,
    pub buyer: Keypair,
    pub seller: Keypair,
    pub arbiter: Keypair,
    pub relayer: Keypair,
    pub mint: Pubkey,
    pub token_program: Pubkey,
    pub buyer_token: Pubkey,
    pub seller_token: Pubkey,
    pub args: CreateArgs,
    pub deal: Deal,
}

impl World {
    pub fn new() -> Self {
        Self::with_mint(&TOKEN, &[])
    }

    /// A deal whose buyer holds `BUYER_FUNDS` of a new mint with these extensions.
    pub fn with_mint(token_program: &Pubkey, extensions: &[MintExtension]) -> Self {
        let mut w = Self::unfunded(token_program, extensions);
        w.svm.mint_to(&w.mint, &w.buyer_token, BUYER_FUNDS);
        w
    }

    /// The same, with no tokens minted (some mints, e.g. default-frozen ones, refuse minting).
    pub fn unfunded(token_program: &Pubkey, extensions: &[MintExtension]) -> Self {
        let mut svm = Svm::new();
        // Fixed keys: PDA derivation cost depends on the buyer's key, and CU figures must repeat.
        let [buyer, seller, arbiter, relayer] = [1, 2, 3, 4].map(|seed| svm.wallet_from_seed(seed));
        let mint = svm.create_mint(token_program, 6, extensions);
        let buyer_token = svm.create_token_account(&mint, &buyer.pubkey());
        let seller_token = svm.create_token_account(&mint, &seller.pubkey());
        let args = CreateArgs {
            id: 42,
            seller: seller.pubkey(),
            amount: AMOUNT,
            deal_ref: [7; 32],
            approvers: vec![
                buyer.pubkey(),
                seller.pubkey(),
                arbiter.pubkey(),
                relayer.pubkey(),
            ],
            threshold: 2,
            timelock_secs: TIMELOCK,
            refund_after: svm.now() + REFUND_AFTER,
        };
        // Its created_slot is known once `create` lands (see `learn_created_slot`).
        let deal = Deal::before_create(
            &buyer.pubkey(),
            args.id,
            &seller.pubkey(),
            &mint,
            token_program,
        );
        Self {
            svm,
            buyer,
            seller,
            arbiter,
            relayer,
            mint,
            token_program: *token_program,
            buyer_token,
            seller_token,
            args,
            deal,
        }
    }

    pub fn create_ix(&self) -> Instruction {
        client::create(
            &self.buyer.pubkey(),
            &self.mint,
            &self.token_program,
            self.args.clone(),
        )
    }

    pub fn create(&mut self) -> TransactionResult {
        let ix = self.create_ix();
        let result = self.svm.send(&[ix], &[&self.buyer]);
        self.learn_created_slot();
        result
    }

    /// Names the deal by the slot its escrow was created in, as a wallet reads it from the
    /// account before signing anything for it.
    pub fn learn_created_slot(&mut self) {
        if let Some(state) = self.state() {
            self.deal.created_slot = state.created_slot;
        }
    }

    pub fn deposit(&mut self) -> TransactionResult {
        let ix = self.deal.deposit(&self.buyer_token);
        self.svm.send(&[ix], &[&self.buyer])
    }

    /// Creates and deposits in one transaction, as a wallet would.
    pub fn fund(&mut self) {
        let ixs = [self.create_ix(), self.deal.deposit(&self.buyer_token)];
        self.svm.ok(&ixs, &[&self.buyer]);
        self.learn_created_slot();
    }

    pub fn approve(&mut self, who: Who, outcome: Outcome) -> TransactionResult {
        let signer = self.key(who);
        let ix = self.deal.approve(&signer.pubkey(), outcome);
        self.svm.send(&[ix], &[&signer])
    }

    pub fn revoke(&mut self, who: Who, outcome: Outcome) -> TransactionResult {
        let signer = self.key(who);
        let ix = self.deal.revoke(&signer.pubkey(), outcome);
        self.svm.send(&[ix], &[&signer])
    }

    pub fn dispute(&mut self, who: Who) -> TransactionResult {
        let signer = self.key(who);
        let ix = self.deal.dispute(&signer.pubkey());
        self.svm.send(&[ix], &[&signer])
    }

    /// Relayer and seller approve the release: the 2-of-4 threshold schedules it.
    pub fn schedule(&mut self, outcome: Outcome) {
        let second = match outcome {
            Outcome::Release => Who::Seller,
            Outcome::Refund => Who::Buyer,
        };
        for who in [Who::Relayer, second] {
            self.approve(who, outcome)
                .map_err(|e| e.meta.logs)
                .expect("approve");
        }
    }

    /// Cranked by the harness payer, a third party.
    pub fn release(&mut self) -> TransactionResult {
        let ix = self.deal.release(&self.seller_token);
        self.svm.send(&[ix], &[])
    }

    pub fn refund(&mut self, caller: Who) -> TransactionResult {
        let caller = self.key(caller);
        let ix = self.deal.refund(&caller.pubkey(), &self.buyer_token);
        self.svm.send(&[ix], &[&caller])
    }

    pub fn cancel(&mut self) -> TransactionResult {
        let ix = self.deal.cancel(&self.buyer_token);
        self.svm.send(&[ix], &[&self.buyer])
    }

    /// A copy of a party's key, so it can sign while `self.svm` is borrowed mutably.
    pub fn key(&self, who: Who) -> Keypair {
        match who {
            Who::Buyer => &self.buyer,
            Who::Seller => &self.seller,
            Who::Arbiter => &self.arbiter,
            Who::Relayer => &self.relayer,
            Who::Anyone => &self.svm.payer,
        }
        .insecure_clone()
    }

    pub fn state(&self) -> Option<escrow::Escrow> {
        self.svm.escrow(&self.deal.escrow)
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Buyer,
    Seller,
    Arbiter,
    Relayer,
    /// The harness payer: a key with no role in the deal.
    Anyone,
}

/// The custom error code of a failed transaction, with its logs for the panic message.
fn custom_code(result: &TransactionResult) -> (Option<u32>, String) {
    match result {
        Ok(_) => (None, "the transaction succeeded".into()),
        Err(e) => {
            let code = match &e.err {
                TransactionError::InstructionError(_, InstructionError::Custom(c)) => Some(*c),
                _ => None,
            };
            (code, format!("{:?}\n{}", e.err, e.meta.logs.join("\n")))
        }
    }
}

#[track_caller]
pub fn assert_escrow_error(result: TransactionResult, expected: EscrowError) {
    let want = expected as u32 + ERROR_CODE_OFFSET;
    let (code, detail) = custom_code(&result);
    assert_eq!(
        code,
        Some(want),
        "expected EscrowError code {want}; got {detail}"
    );
}

#[track_caller]
pub fn assert_anchor_error(result: TransactionResult, expected: anchor_lang::error::ErrorCode) {
    let want = expected as u32;
    let (code, detail) = custom_code(&result);
    assert_eq!(
        code,
        Some(want),
        "expected Anchor error {expected:?} ({want}); got {detail}"
    );
}

/// For refusals that come from the runtime or another program rather than an error code.
#[track_caller]
pub fn assert_tx_error(result: TransactionResult, expected: TransactionError) {
    match result {
        Ok(_) => panic!("expected {expected:?}, the transaction succeeded"),
        Err(e) => assert_eq!(e.err, expected, "{}", e.meta.logs.join("\n")),
    }
}
