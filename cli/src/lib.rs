//! `escrow`: every instruction of the escrow program from a terminal, signed with your own
//! keypair (or built unsigned for a hardware wallet), with the Solana CLI's config conventions.
//! Each transaction is simulated first; a refusal is reported in the program's own words and
//! nothing is sent.
pub mod config;
mod show;
mod when;

use std::{io::Write, path::PathBuf, time::Duration};

use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction, AccountDeserialize};
use anchor_spl::associated_token::{
    get_associated_token_address_with_program_id,
    spl_associated_token_account::instruction::create_associated_token_account_idempotent,
};
use anyhow::{bail, Context as _};
use base64::Engine;
use clap::{Args, Parser, Subcommand, ValueEnum};
use escrow::{
    client::{self, Deal},
    CreateArgs, Escrow, Outcome,
};
use escrow_chain::{send_and_confirm, Chain};
use solana_keypair::Keypair;
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::Transaction;

#[derive(Debug, Parser)]
#[command(name = "escrow", version, about, long_about = None)]
pub struct Cli {
    /// RPC URL, or mainnet-beta (m), devnet (d), testnet (t), localhost (l)
    /// [default: the Solana CLI config's json_rpc_url]
    #[arg(short = 'u', long, global = true)]
    pub url: Option<String>,
    /// Keypair file that signs and pays [default: the Solana CLI config's keypair_path]
    #[arg(short = 'k', long, global = true)]
    pub keypair: Option<String>,
    /// Solana CLI config file [default: ~/.config/solana/cli/config.yml]
    #[arg(short = 'C', long, global = true)]
    pub config: Option<PathBuf>,
    /// Build the transaction for ADDRESS to sign elsewhere (e.g. a hardware wallet): it is
    /// simulated, then printed unsigned in base64; nothing is sent.
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub unsigned: Option<Pubkey>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open an escrow as its buyer (and fund it at once with --deposit)
    Create(CreateOpts),
    /// Fund your escrow from your token account for its mint
    Deposit {
        escrow: Pubkey,
        /// Token account to pay from [default: your associated token account]
        #[arg(long)]
        from: Option<Pubkey>,
    },
    /// Approve an outcome as one of the escrow's approvers
    Approve {
        #[command(flatten)]
        deal: DealArg,
        #[arg(long, value_enum, default_value_t = OutcomeArg::Release)]
        outcome: OutcomeArg,
    },
    /// Withdraw your approval of an outcome
    Revoke {
        #[command(flatten)]
        deal: DealArg,
        #[arg(long, value_enum, default_value_t = OutcomeArg::Release)]
        outcome: OutcomeArg,
    },
    /// As buyer or seller, dispute the scheduled outcome within its window
    Dispute(DealArg),
    /// Pay the seller once a scheduled release is due (anyone may send it)
    Release(DealArg),
    /// Return the deposit to the buyer when a refund is due
    Refund(DealArg),
    /// As buyer, close an escrow you have not funded
    Cancel { escrow: Pubkey },
    /// Show an escrow: parties, policy, approvals, schedule
    Show { escrow: Pubkey },
}

/// An existing deal. Its address is reused once it closes, so what you sign names the deal by
/// the slot it was created in, as `escrow show` prints it.
#[derive(Debug, Args)]
pub struct DealArg {
    pub escrow: Pubkey,
    /// Sign only if the escrow is still the deal created at this slot
    /// [default: the deal at the address now]
    #[arg(long, value_name = "SLOT")]
    pub created_slot: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CreateOpts {
    /// Your id for this deal; with your address it makes the escrow's address
    #[arg(long)]
    pub id: u64,
    #[arg(long)]
    pub seller: Pubkey,
    #[arg(long)]
    pub mint: Pubkey,
    /// In the mint's base units
    #[arg(long)]
    pub amount: u64,
    /// An approver; repeat for each (1 to 8)
    #[arg(long = "approver", required = true)]
    pub approvers: Vec<Pubkey>,
    /// Approvals an outcome needs
    #[arg(long)]
    pub threshold: u8,
    /// Dispute window after an outcome is approved: seconds, or 30m, 1h, 2d
    #[arg(long, default_value = "1h")]
    pub timelock: String,
    /// When you may take a refund if nothing was released: unix seconds, RFC 3339, or a
    /// duration from now on the cluster's clock (7d)
    #[arg(long)]
    pub refund_after: String,
    /// Deal reference: 64 hex characters (e.g. sha256 of your order id) [default: zeros]
    #[arg(long)]
    pub deal_ref: Option<String>,
    /// Fund it in the same transaction, from your associated token account
    #[arg(long)]
    pub deposit: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutcomeArg {
    Release,
    Refund,
}

impl From<OutcomeArg> for Outcome {
    fn from(o: OutcomeArg) -> Self {
        match o {
            OutcomeArg::Release => Outcome::Release,
            OutcomeArg::Refund => Outcome::Refund,
        }
    }
}

impl Command {
    /// Whether the command sends a transaction (and so needs a signer).
    pub fn signs(&self) -> bool {
        !matches!(self, Command::Show { .. })
    }
}

/// Who signs: a keypair here, or someone elsewhere who gets the unsigned transaction.
pub enum Signing<'a> {
    Keypair(&'a Keypair),
    Elsewhere(Pubkey),
}

impl Signing<'_> {
    fn pubkey(&self) -> Pubkey {
        match self {
            Signing::Keypair(k) => k.pubkey(),
            Signing::Elsewhere(p) => *p,
        }
    }
}

/// How long to wait between confirmation polls.
const POLL: Duration = Duration::from_millis(400);

/// Runs one command against `chain`; what it reports goes to `out`.
pub async fn run(
    command: &Command,
    chain: &dyn Chain,
    signing: Option<Signing<'_>>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if let Command::Show { escrow } = command {
        let state = load(chain, escrow).await?;
        let now = chain.unix_time().await?;
        return Ok(write!(out, "{}", show::render(escrow, &state, now))?);
    }
    let signing =
        signing.context("this command signs a transaction: give --keypair or --unsigned")?;
    let me = signing.pubkey();
    let (ixs, done) = match command {
        Command::Create(opts) => create(chain, opts, &me).await?,
        Command::Deposit { escrow, from } => {
            let deal = deal(chain, escrow).await?;
            let from = from.unwrap_or_else(|| ata(&me, &deal.mint, &deal.token_program));
            (
                vec![deal.deposit(&from)],
                format!("deposited into {escrow}"),
            )
        }
        Command::Approve { deal: arg, outcome } => {
            let deal = pinned_deal(chain, arg).await?;
            let o = Outcome::from(*outcome);
            (
                vec![deal.approve(&me, o)],
                format!("approved {} of {}", name(o), named(&deal)),
            )
        }
        Command::Revoke { deal: arg, outcome } => {
            let deal = pinned_deal(chain, arg).await?;
            let o = Outcome::from(*outcome);
            (
                vec![deal.revoke(&me, o)],
                format!("revoked your {} approval of {}", name(o), named(&deal)),
            )
        }
        Command::Dispute(arg) => {
            let deal = pinned_deal(chain, arg).await?;
            (
                vec![deal.dispute(&me)],
                format!("disputed {}", named(&deal)),
            )
        }
        Command::Release(arg) => {
            let deal = pinned_deal(chain, arg).await?;
            let (create_ata, seller_token) = ensure_ata(&me, &deal.seller, &deal);
            let ixs = vec![create_ata, deal.release(&seller_token)];
            (ixs, format!("released {} to the seller", named(&deal)))
        }
        Command::Refund(arg) => {
            let deal = pinned_deal(chain, arg).await?;
            let (create_ata, buyer_token) = ensure_ata(&me, &deal.buyer, &deal);
            let ixs = vec![create_ata, deal.refund(&me, &buyer_token)];
            (ixs, format!("refunded {} to the buyer", named(&deal)))
        }
        Command::Cancel { escrow } => {
            let deal = deal(chain, escrow).await?;
            let (create_ata, buyer_token) = ensure_ata(&me, &deal.buyer, &deal);
            let ixs = vec![create_ata, deal.cancel(&buyer_token)];
            (ixs, format!("cancelled {escrow}"))
        }
        Command::Show { .. } => unreachable!("handled above"),
    };
    execute(chain, &ixs, &signing, &done, out).await
}

fn name(o: Outcome) -> &'static str {
    match o {
        Outcome::Release => "release",
        Outcome::Refund => "refund",
    }
}

fn ata(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    get_associated_token_address_with_program_id(owner, mint, token_program)
}

/// `owner`'s associated token account for the deal's mint, created (paid by `payer`) if missing.
fn ensure_ata(payer: &Pubkey, owner: &Pubkey, deal: &Deal) -> (Instruction, Pubkey) {
    let ix =
        create_associated_token_account_idempotent(payer, owner, &deal.mint, &deal.token_program);
    (ix, ata(owner, &deal.mint, &deal.token_program))
}

async fn load(chain: &dyn Chain, escrow: &Pubkey) -> anyhow::Result<Escrow> {
    let account = chain.account(escrow).await?.with_context(|| {
        format!("no account at {escrow} on this cluster (settled escrows are closed)")
    })?;
    if account.owner != escrow::ID {
        bail!(
            "{escrow} is not an escrow: it is owned by {}",
            account.owner
        );
    }
    Escrow::try_deserialize(&mut account.data.as_slice())
        .with_context(|| format!("{escrow} is not an escrow account"))
}

async fn deal(chain: &dyn Chain, escrow: &Pubkey) -> anyhow::Result<Deal> {
    Ok(Deal::from_state(*escrow, &load(chain, escrow).await?))
}

/// The deal at the address, refused when `--created-slot` names an earlier (closed) one.
async fn pinned_deal(chain: &dyn Chain, arg: &DealArg) -> anyhow::Result<Deal> {
    let deal = deal(chain, &arg.escrow).await?;
    match arg.created_slot {
        Some(slot) if slot != deal.created_slot => bail!(
            "{} is now another deal (created at slot {}, not {slot}): the deal you meant has \
             closed; check `escrow show {}` before signing anything for this one",
            arg.escrow,
            deal.created_slot,
            arg.escrow
        ),
        _ => Ok(deal),
    }
}

fn named(deal: &Deal) -> String {
    format!("{} (created at slot {})", deal.escrow, deal.created_slot)
}

async fn create(
    chain: &dyn Chain,
    opts: &CreateOpts,
    buyer: &Pubkey,
) -> anyhow::Result<(Vec<Instruction>, String)> {
    let mint = chain
        .account(&opts.mint)
        .await?
        .with_context(|| format!("mint {} does not exist on this cluster", opts.mint))?;
    let token_program = mint.owner;
    if token_program != anchor_spl::token::ID && token_program != anchor_spl::token_2022::ID {
        bail!("{} is not a token mint (owner {token_program})", opts.mint);
    }
    let now = chain.unix_time().await?;
    let deal_ref = match &opts.deal_ref {
        None => [0; 32],
        Some(hex) => when::hex32(hex).context("--deal-ref must be 64 hex characters")?,
    };
    let args = CreateArgs {
        id: opts.id,
        seller: opts.seller,
        amount: opts.amount,
        deal_ref,
        approvers: opts.approvers.clone(),
        threshold: opts.threshold,
        timelock_secs: when::duration_secs(&opts.timelock)
            .and_then(|s| u32::try_from(s).ok())
            .context("--timelock: seconds, or a duration like 30m, 1h, 2d")?,
        refund_after: when::instant(&opts.refund_after, now)
            .context("--refund-after: unix seconds, RFC 3339, or a duration from now like 7d")?,
    };
    let escrow = client::escrow_address(buyer, opts.id).0;
    let mut ixs = vec![client::create(buyer, &opts.mint, &token_program, args)];
    if opts.deposit {
        let deal = Deal::before_create(buyer, opts.id, &opts.seller, &opts.mint, &token_program);
        ixs.push(deal.deposit(&ata(buyer, &opts.mint, &token_program)));
    }
    let verb = if opts.deposit {
        "created and funded"
    } else {
        "created"
    };
    Ok((ixs, format!("{verb} escrow {escrow}")))
}

/// Simulates, then signs and sends (or prints the unsigned transaction).
async fn execute(
    chain: &dyn Chain,
    ixs: &[Instruction],
    signing: &Signing<'_>,
    done: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let me = signing.pubkey();
    let blockhash = chain.latest_blockhash().await?;
    let mut tx =
        Transaction::new_unsigned(Message::new_with_blockhash(ixs, Some(&me), &blockhash.hash));
    let signers =
        &tx.message.account_keys[..usize::from(tx.message.header.num_required_signatures)];
    if let Some(other) = signers.iter().find(|k| **k != me) {
        bail!("this needs the signature of {other}, and you are {me}: run it with that keypair");
    }
    if let Some(reason) = chain.simulate(&tx).await?.failure() {
        bail!("refused, nothing was sent: {reason}");
    }
    match signing {
        Signing::Elsewhere(_) => {
            let bytes = bincode::serialize(&tx)?;
            writeln!(
                out,
                "{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )?;
        }
        Signing::Keypair(keypair) => {
            tx.try_sign(&[*keypair], blockhash.hash)
                .context("the keypair cannot sign this transaction")?;
            let signature =
                send_and_confirm(chain, &tx, blockhash.last_valid_block_height, POLL).await?;
            writeln!(out, "{done}\nsignature {signature}")?;
        }
    }
    Ok(())
}
