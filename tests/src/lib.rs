//! A LiteSVM world with the real compiled escrow program and the real SPL Token and Token-2022
//! programs, plus the fixtures the integration tests, `cu-report` and the demo share.
// The harness hands back litesvm's own `TransactionResult` unchanged, large error and all.
#![allow(clippy::result_large_err)]

pub mod cu;
pub mod fixtures;
pub mod idl;

use anchor_lang::{
    prelude::Pubkey,
    solana_program::{instruction::Instruction, program_pack::Pack, system_instruction},
    AccountDeserialize,
};
use anchor_spl::token_2022::spl_token_2022::{
    self,
    extension::{BaseStateWithExtensions, ExtensionType, StateWithExtensions},
    instruction as token_ix,
    state::{Account as TokenAccountState, Mint as MintState},
};
use litesvm::{types::TransactionResult, LiteSVM};
use solana_keypair::Keypair;
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::Transaction;

pub use escrow::{client, Escrow};

pub const TOKEN: Pubkey = anchor_spl::token::ID;
pub const TOKEN_2022: Pubkey = anchor_spl::token_2022::ID;
/// A unix time the tests start at (2026-01-01), far from zero so deadlines are realistic.
pub const START_TIME: i64 = 1_767_225_600;

/// The sBPF program `scripts/build-program.sh` writes, or `$ESCROW_SO`.
pub fn program_path() -> std::path::PathBuf {
    std::env::var_os("ESCROW_SO")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/deploy/escrow.so")
        })
}

/// The test-only program that logs forged events (`tests/event-spoofer`), built beside the escrow.
pub fn event_spoofer_path() -> std::path::PathBuf {
    program_path().with_file_name("event_spoofer.so")
}

pub struct Svm {
    pub svm: LiteSVM,
    pub payer: Keypair,
}

impl Default for Svm {
    fn default() -> Self {
        Self::new()
    }
}

impl Svm {
    pub fn new() -> Self {
        let path = program_path();
        let elf = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {} ({e}): run scripts/build-program.sh first",
                path.display()
            )
        });
        let mut svm = LiteSVM::new();
        svm.add_program(escrow::ID, &elf).expect("load escrow.so");
        let payer = Keypair::new();
        svm.airdrop(&payer.pubkey(), 100_000_000_000)
            .expect("airdrop");
        let mut world = Self { svm, payer };
        world.set_time(START_TIME);
        world
    }

    /// Loads `tests/event-spoofer` at `event_spoofer::ID`: a program that logs whatever bytes
    /// it is given as `Program data:`, as an attacker's program would to forge escrow events.
    pub fn load_event_spoofer(&mut self) {
        let path = event_spoofer_path();
        let elf = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {} ({e}): run scripts/build-program.sh first",
                path.display()
            )
        });
        self.svm
            .add_program(event_spoofer::ID, &elf)
            .expect("load event_spoofer.so");
    }

    pub fn now(&self) -> i64 {
        self.svm
            .get_sysvar::<anchor_lang::prelude::Clock>()
            .unix_timestamp
    }

    pub fn set_time(&mut self, unix_timestamp: i64) {
        let mut clock = self.svm.get_sysvar::<anchor_lang::prelude::Clock>();
        clock.unix_timestamp = unix_timestamp;
        self.svm.set_sysvar(&clock);
    }

    pub fn advance(&mut self, secs: i64) {
        self.set_time(self.now() + secs);
    }

    pub fn slot(&self) -> u64 {
        self.svm.get_sysvar::<anchor_lang::prelude::Clock>().slot
    }

    /// Sends `ixs` in one transaction, fee paid by the harness payer, as its own block: the slot
    /// moves on after it, as on a cluster where each transaction lands in a later slot than the
    /// one before. A fresh blockhash each time lets a test send the same instructions twice.
    pub fn send(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> TransactionResult {
        let result = self.send_in_this_slot(ixs, signers);
        self.svm.warp_to_slot(self.slot() + 1);
        result
    }

    /// Like `send`, but leaves the slot where it is, so the next transaction shares it.
    pub fn send_in_this_slot(
        &mut self,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> TransactionResult {
        self.svm.expire_blockhash();
        let mut all: Vec<&Keypair> = vec![&self.payer];
        all.extend(
            signers
                .iter()
                .copied()
                .filter(|k| k.pubkey() != self.payer.pubkey()),
        );
        let message = Message::new(ixs, Some(&self.payer.pubkey()));
        let tx = Transaction::new(&all, message, self.svm.latest_blockhash());
        self.svm.send_transaction(tx)
    }

    /// Like `send`, panicking with the program logs on failure.
    pub fn ok(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> u64 {
        match self.send(ixs, signers) {
            Ok(meta) => meta.compute_units_consumed,
            Err(e) => panic!(
                "transaction failed: {:?}\n{}",
                e.err,
                e.meta.logs.join("\n")
            ),
        }
    }

    /// A new funded key.
    pub fn wallet(&mut self) -> Keypair {
        self.fund(Keypair::new())
    }

    /// A funded key that is the same in every run.
    pub fn wallet_from_seed(&mut self, seed: u8) -> Keypair {
        self.fund(Keypair::new_from_array([seed; 32]))
    }

    fn fund(&mut self, key: Keypair) -> Keypair {
        self.svm
            .airdrop(&key.pubkey(), 10_000_000_000)
            .expect("airdrop");
        key
    }

    pub fn lamports(&self, address: &Pubkey) -> u64 {
        self.svm.get_account(address).map_or(0, |a| a.lamports)
    }

    /// Closed accounts are gone (no lamports) or handed back to the system program empty.
    pub fn is_closed(&self, address: &Pubkey) -> bool {
        self.svm
            .get_account(address)
            .is_none_or(|a| a.lamports == 0 && a.data.is_empty())
    }

    pub fn escrow(&self, address: &Pubkey) -> Option<Escrow> {
        let account = self.svm.get_account(address)?;
        Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    }

    pub fn token_balance(&self, account: &Pubkey) -> u64 {
        let data = self.svm.get_account(account).expect("token account").data;
        StateWithExtensions::<TokenAccountState>::unpack(&data)
            .expect("token account")
            .base
            .amount
    }

    pub fn mint_supply(&self, mint: &Pubkey) -> u64 {
        let data = self.svm.get_account(mint).expect("mint").data;
        StateWithExtensions::<MintState>::unpack(&data)
            .expect("mint")
            .base
            .supply
    }

    /// Creates a mint (the payer is its authority) with the given Token-2022 extensions.
    pub fn create_mint(
        &mut self,
        token_program: &Pubkey,
        decimals: u8,
        extensions: &[MintExtension],
    ) -> Pubkey {
        let mint = Keypair::new();
        let authority = self.payer.pubkey();
        let types: Vec<ExtensionType> = extensions
            .iter()
            .map(MintExtension::extension_type)
            .collect();
        let space = if types.is_empty() {
            MintState::LEN
        } else {
            ExtensionType::try_calculate_account_len::<MintState>(&types).expect("mint size")
        };
        let mut ixs = vec![system_instruction::create_account(
            &authority,
            &mint.pubkey(),
            self.svm.minimum_balance_for_rent_exemption(space),
            space as u64,
            token_program,
        )];
        ixs.extend(
            extensions
                .iter()
                .map(|e| e.init_instruction(&mint.pubkey(), &authority)),
        );
        ixs.push(
            token_ix::initialize_mint2(
                token_program,
                &mint.pubkey(),
                &authority,
                Some(&authority),
                decimals,
            )
            .expect("initialize_mint2"),
        );
        self.ok(&ixs, &[&mint]);
        mint.pubkey()
    }

    /// Creates a token account for `mint` owned by `owner`, sized for the mint's extensions.
    pub fn create_token_account(&mut self, mint: &Pubkey, owner: &Pubkey) -> Pubkey {
        let mint_account = self.svm.get_account(mint).expect("mint");
        let token_program = mint_account.owner;
        let mint_state =
            StateWithExtensions::<MintState>::unpack(&mint_account.data).expect("mint");
        let required = ExtensionType::get_required_init_account_extensions(
            &mint_state.get_extension_types().unwrap(),
        );
        let space =
            ExtensionType::try_calculate_account_len::<TokenAccountState>(&required).unwrap();
        let account = Keypair::new();
        let ixs = [
            system_instruction::create_account(
                &self.payer.pubkey(),
                &account.pubkey(),
                self.svm.minimum_balance_for_rent_exemption(space),
                space as u64,
                &token_program,
            ),
            token_ix::initialize_account3(&token_program, &account.pubkey(), mint, owner).unwrap(),
        ];
        self.ok(&ixs, &[&account]);
        account.pubkey()
    }

    /// The owner's associated token account for `mint`, created if missing: where a wallet
    /// keeps its tokens.
    pub fn associated_token_account(&mut self, mint: &Pubkey, owner: &Pubkey) -> Pubkey {
        use anchor_spl::associated_token::{
            get_associated_token_address_with_program_id,
            spl_associated_token_account::instruction::create_associated_token_account_idempotent,
        };
        let token_program = self.svm.get_account(mint).expect("mint").owner;
        let ix = create_associated_token_account_idempotent(
            &self.payer.pubkey(),
            owner,
            mint,
            &token_program,
        );
        self.ok(&[ix], &[]);
        get_associated_token_address_with_program_id(owner, mint, &token_program)
    }

    pub fn mint_to(&mut self, mint: &Pubkey, account: &Pubkey, amount: u64) {
        let token_program = self.svm.get_account(mint).expect("mint").owner;
        let ix = token_ix::mint_to(
            &token_program,
            mint,
            account,
            &self.payer.pubkey(),
            &[],
            amount,
        )
        .unwrap();
        self.ok(&[ix], &[]);
    }

    /// A plain transfer between token accounts, signed by `owner` (used to "donate" to vaults).
    pub fn transfer(
        &mut self,
        mint: &Pubkey,
        from: &Pubkey,
        to: &Pubkey,
        owner: &Keypair,
        amount: u64,
    ) {
        let mint_account = self.svm.get_account(mint).expect("mint");
        let decimals = StateWithExtensions::<MintState>::unpack(&mint_account.data)
            .unwrap()
            .base
            .decimals;
        let ix = token_ix::transfer_checked(
            &mint_account.owner,
            from,
            mint,
            to,
            &owner.pubkey(),
            &[],
            amount,
            decimals,
        )
        .unwrap();
        self.ok(&[ix], &[owner]);
    }
}

/// Token-2022 mint extensions the tests create mints with.
#[derive(Clone, Copy, Debug)]
pub enum MintExtension {
    TransferFee { basis_points: u16, max_fee: u64 },
    MintCloseAuthority,
    PermanentDelegate,
    TransferHook,
    NonTransferable,
    DefaultFrozen,
    ConfidentialTransfer,
    Pausable,
}

impl MintExtension {
    fn extension_type(&self) -> ExtensionType {
        match self {
            Self::TransferFee { .. } => ExtensionType::TransferFeeConfig,
            Self::MintCloseAuthority => ExtensionType::MintCloseAuthority,
            Self::PermanentDelegate => ExtensionType::PermanentDelegate,
            Self::TransferHook => ExtensionType::TransferHook,
            Self::NonTransferable => ExtensionType::NonTransferable,
            Self::DefaultFrozen => ExtensionType::DefaultAccountState,
            Self::ConfidentialTransfer => ExtensionType::ConfidentialTransferMint,
            Self::Pausable => ExtensionType::Pausable,
        }
    }

    fn init_instruction(&self, mint: &Pubkey, authority: &Pubkey) -> Instruction {
        use spl_token_2022::extension::{
            confidential_transfer, default_account_state, pausable, transfer_fee, transfer_hook,
        };
        let program = &TOKEN_2022;
        match *self {
            Self::TransferFee {
                basis_points,
                max_fee,
            } => transfer_fee::instruction::initialize_transfer_fee_config(
                program,
                mint,
                Some(authority),
                Some(authority),
                basis_points,
                max_fee,
            ),
            Self::MintCloseAuthority => {
                token_ix::initialize_mint_close_authority(program, mint, Some(authority))
            }
            Self::PermanentDelegate => {
                token_ix::initialize_permanent_delegate(program, mint, authority)
            }
            // Any program id will do: the escrow refuses the mint before a hook would run.
            Self::TransferHook => transfer_hook::instruction::initialize(
                program,
                mint,
                Some(*authority),
                Some(escrow::ID),
            ),
            Self::NonTransferable => token_ix::initialize_non_transferable_mint(program, mint),
            Self::DefaultFrozen => {
                default_account_state::instruction::initialize_default_account_state(
                    program,
                    mint,
                    &spl_token_2022::state::AccountState::Frozen,
                )
            }
            Self::ConfidentialTransfer => confidential_transfer::instruction::initialize_mint(
                program,
                mint,
                Some(*authority),
                true,
                None,
            ),
            Self::Pausable => pausable::instruction::initialize(program, mint, authority),
        }
        .expect("extension instruction")
    }
}
