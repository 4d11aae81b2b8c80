//! Instruction builders for off-chain callers (tests, the relayer, the CLI), made from the
//! program's own generated account and instruction types so nothing is copied by hand.
use anchor_lang::{
    prelude::Pubkey, solana_program::instruction::Instruction, system_program, InstructionData,
    ToAccountMetas,
};

use crate::{
    accounts, instruction,
    state::{Escrow, Outcome, ESCROW_SEED, VAULT_SEED},
    CreateArgs, ID,
};

pub fn escrow_address(buyer: &Pubkey, id: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[ESCROW_SEED, buyer.as_ref(), &id.to_le_bytes()], &ID)
}

/// `base_units` of a mint with `decimals` as a decimal number: 25000000, 6 → "25.000000".
pub fn ui_amount(base_units: u64, decimals: u8) -> String {
    let scale = 10u128.pow(u32::from(decimals));
    let (whole, frac) = (
        u128::from(base_units) / scale,
        u128::from(base_units) % scale,
    );
    if decimals == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:0width$}", width = usize::from(decimals))
    }
}

/// Setup for tests, the demo and benchmarks: a new SPL Token mint (`mint` signs, `authority`
/// mints, `payer` pays `mint_rent`, the cluster's rent for 82 bytes) and `amount` of it in
/// `holder`'s associated token account.
pub fn new_mint_with_balance(
    payer: &Pubkey,
    mint: &Pubkey,
    authority: &Pubkey,
    decimals: u8,
    holder: &Pubkey,
    amount: u64,
    mint_rent: u64,
) -> Result<Vec<Instruction>, anchor_lang::prelude::ProgramError> {
    use anchor_lang::solana_program::system_instruction;
    use anchor_spl::{
        associated_token::{
            get_associated_token_address_with_program_id,
            spl_associated_token_account::instruction::create_associated_token_account_idempotent,
        },
        token::ID as TOKEN,
        token_2022::spl_token_2022::instruction as token_ix,
    };
    let holder_token = get_associated_token_address_with_program_id(holder, mint, &TOKEN);
    Ok(vec![
        system_instruction::create_account(payer, mint, mint_rent, 82, &TOKEN),
        token_ix::initialize_mint2(&TOKEN, mint, authority, None, decimals)?,
        create_associated_token_account_idempotent(payer, holder, mint, &TOKEN),
        token_ix::mint_to(&TOKEN, mint, &holder_token, authority, &[], amount)?,
    ])
}

pub fn vault_address(escrow: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[VAULT_SEED, escrow.as_ref()], &ID)
}

fn ix(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

pub fn create(
    buyer: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
    args: CreateArgs,
) -> Instruction {
    let escrow = escrow_address(buyer, args.id).0;
    let accounts = accounts::Create {
        buyer: *buyer,
        escrow,
        mint: *mint,
        vault: vault_address(&escrow).0,
        token_program: *token_program,
        system_program: system_program::ID,
    };
    ix(accounts, instruction::Create { args })
}

/// The addresses a deal's instructions need, as recorded in its escrow account, and the slot it
/// was created in, which names the deal in every instruction a party signs (an address is reused
/// once a deal closes).
#[derive(Clone, Copy, Debug)]
pub struct Deal {
    pub escrow: Pubkey,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    pub vault: Pubkey,
    pub token_program: Pubkey,
    /// 0 until the escrow exists: `deposit` and `cancel`, the only instructions that do not name
    /// the slot, are all a wallet can build for an escrow its own transaction creates.
    pub created_slot: u64,
}

impl Deal {
    /// The deal `create` will open for `buyer` at `id`, before it exists: enough to build the
    /// deposit that goes in the same transaction (its slot is not known yet).
    pub fn before_create(
        buyer: &Pubkey,
        id: u64,
        seller: &Pubkey,
        mint: &Pubkey,
        token_program: &Pubkey,
    ) -> Self {
        let escrow = escrow_address(buyer, id).0;
        Self {
            escrow,
            buyer: *buyer,
            seller: *seller,
            mint: *mint,
            vault: vault_address(&escrow).0,
            token_program: *token_program,
            created_slot: 0,
        }
    }

    pub fn from_state(escrow: Pubkey, state: &Escrow) -> Self {
        Self {
            escrow,
            buyer: state.buyer,
            seller: state.seller,
            mint: state.mint,
            vault: state.vault,
            token_program: state.token_program,
            created_slot: state.created_slot,
        }
    }

    pub fn deposit(&self, buyer_token: &Pubkey) -> Instruction {
        let accounts = accounts::Deposit {
            buyer: self.buyer,
            escrow: self.escrow,
            mint: self.mint,
            buyer_token: *buyer_token,
            vault: self.vault,
            token_program: self.token_program,
        };
        ix(accounts, instruction::Deposit {})
    }

    pub fn cancel(&self, buyer_token: &Pubkey) -> Instruction {
        let accounts = accounts::Cancel {
            buyer: self.buyer,
            escrow: self.escrow,
            mint: self.mint,
            buyer_token: *buyer_token,
            vault: self.vault,
            token_program: self.token_program,
        };
        self.with_writable_mint(ix(accounts, instruction::Cancel {}))
    }

    pub fn approve(&self, approver: &Pubkey, outcome: Outcome) -> Instruction {
        let accounts = accounts::Approve {
            approver: *approver,
            escrow: self.escrow,
        };
        ix(
            accounts,
            instruction::Approve {
                outcome,
                created_slot: self.created_slot,
            },
        )
    }

    pub fn revoke(&self, approver: &Pubkey, outcome: Outcome) -> Instruction {
        let accounts = accounts::Revoke {
            approver: *approver,
            escrow: self.escrow,
        };
        ix(
            accounts,
            instruction::Revoke {
                outcome,
                created_slot: self.created_slot,
            },
        )
    }

    pub fn dispute(&self, party: &Pubkey) -> Instruction {
        let accounts = accounts::Dispute {
            party: *party,
            escrow: self.escrow,
        };
        ix(
            accounts,
            instruction::Dispute {
                created_slot: self.created_slot,
            },
        )
    }

    pub fn release(&self, seller_token: &Pubkey) -> Instruction {
        let accounts = accounts::Release {
            escrow: self.escrow,
            buyer: self.buyer,
            mint: self.mint,
            seller_token: *seller_token,
            vault: self.vault,
            token_program: self.token_program,
        };
        let data = instruction::Release {
            created_slot: self.created_slot,
        };
        self.with_writable_mint(ix(accounts, data))
    }

    pub fn refund(&self, caller: &Pubkey, buyer_token: &Pubkey) -> Instruction {
        let accounts = accounts::Refund {
            caller: *caller,
            escrow: self.escrow,
            buyer: self.buyer,
            mint: self.mint,
            buyer_token: *buyer_token,
            vault: self.vault,
            token_program: self.token_program,
        };
        let data = instruction::Refund {
            created_slot: self.created_slot,
        };
        self.with_writable_mint(ix(accounts, data))
    }

    /// Token-2022 vaults may hold withheld transfer fees, which the program harvests to the mint
    /// before closing the vault; that needs the mint writable. SPL Token mints stay read-only so
    /// payouts do not write-lock a busy mint.
    fn with_writable_mint(&self, mut ix: Instruction) -> Instruction {
        if self.token_program == anchor_spl::token_2022::ID {
            for meta in ix.accounts.iter_mut().filter(|m| m.pubkey == self.mint) {
                meta.is_writable = true;
            }
        }
        ix
    }
}
