use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::{errors::EscrowError, events, mint_policy, state::*};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct CreateArgs {
    /// Buyer-chosen id; with the buyer it makes the escrow's address.
    pub id: u64,
    pub seller: Pubkey,
    /// What the buyer will deposit, in the mint's base units.
    pub amount: u64,
    pub deal_ref: [u8; 32],
    /// 1 to 8 distinct keys, e.g. buyer, seller, arbiter, the relayer.
    pub approvers: Vec<Pubkey>,
    /// Approvals an outcome needs: 1..=approvers.len().
    pub threshold: u8,
    /// Dispute window after an outcome reaches the threshold, at most 30 days.
    pub timelock_secs: u32,
    /// Unix time after which the buyer can be refunded if no release is scheduled.
    pub refund_after: i64,
}

#[derive(Accounts)]
#[instruction(args: CreateArgs)]
pub struct Create<'info> {
    #[account(mut)]
    pub buyer: Signer<'info>,
    #[account(
        init,
        payer = buyer,
        space = Escrow::SPACE,
        seeds = [ESCROW_SEED, buyer.key().as_ref(), &args.id.to_le_bytes()],
        bump,
    )]
    pub escrow: AccountLoader<'info, Escrow>,
    #[account(mint::token_program = token_program)]
    pub mint: InterfaceAccount<'info, Mint>,
    #[account(
        init,
        payer = buyer,
        seeds = [VAULT_SEED, escrow.key().as_ref()],
        bump,
        token::mint = mint,
        token::authority = escrow,
        token::token_program = token_program,
    )]
    pub vault: InterfaceAccount<'info, TokenAccount>,
    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,
}

impl Create<'_> {
    fn validate(&self, args: &CreateArgs) -> Result<()> {
        require!(args.amount > 0, EscrowError::ZeroAmount);
        require!(
            args.seller != Pubkey::default() && args.seller != self.buyer.key(),
            EscrowError::InvalidSeller
        );
        let approvers = &args.approvers;
        require!(!approvers.is_empty(), EscrowError::NoApprovers);
        require!(
            approvers.len() <= MAX_APPROVERS,
            EscrowError::TooManyApprovers
        );
        for (i, approver) in approvers.iter().enumerate() {
            require!(*approver != Pubkey::default(), EscrowError::DefaultApprover);
            require!(
                !approvers[..i].contains(approver),
                EscrowError::DuplicateApprover
            );
        }
        require!(
            args.threshold >= 1 && usize::from(args.threshold) <= approvers.len(),
            EscrowError::InvalidThreshold
        );
        require!(
            args.timelock_secs <= MAX_TIMELOCK_SECS,
            EscrowError::TimelockTooLong
        );
        require!(
            args.refund_after > Clock::get()?.unix_timestamp,
            EscrowError::RefundDeadlineInPast
        );
        mint_policy::check_mint(&self.mint.to_account_info())
    }

    /// Opens a deal: the escrow account and its empty vault, paid for by the buyer.
    #[access_control(ctx.accounts.validate(&args))]
    pub fn create(ctx: Context<Self>, args: CreateArgs) -> Result<()> {
        let accounts = ctx.accounts;
        let created_slot = Clock::get()?.slot;
        let mut escrow = accounts.escrow.load_init()?;
        escrow.buyer = accounts.buyer.key();
        escrow.seller = args.seller;
        escrow.mint = accounts.mint.key();
        escrow.token_program = accounts.token_program.key();
        escrow.vault = accounts.vault.key();
        escrow.deal_ref = args.deal_ref;
        escrow.approvers[..args.approvers.len()].copy_from_slice(&args.approvers);
        escrow.id = args.id;
        escrow.amount = args.amount;
        escrow.refund_after = args.refund_after;
        escrow.timelock_secs = args.timelock_secs;
        // Both fit in u8: validate() bounds them by MAX_APPROVERS.
        escrow.approver_count = args.approvers.len() as u8;
        escrow.threshold = args.threshold;
        escrow.status = EscrowStatus::AwaitingDeposit as u8;
        escrow.decimals = accounts.mint.decimals;
        escrow.created_slot = created_slot;
        escrow.bump = ctx.bumps.escrow;
        escrow.vault_bump = ctx.bumps.vault;

        emit!(events::Created {
            escrow: accounts.escrow.key(),
            created_slot,
            buyer: escrow.buyer,
            seller: escrow.seller,
            mint: escrow.mint,
            token_program: escrow.token_program,
            vault: escrow.vault,
            id: args.id,
            amount: args.amount,
            deal_ref: args.deal_ref,
            approvers: args.approvers,
            threshold: args.threshold,
            timelock_secs: args.timelock_secs,
            refund_after: args.refund_after,
        });
        Ok(())
    }
}
