//! The CLI against the compiled program in the embedded chain: every instruction, as typed on a
//! command line, signed by the party's own keypair; refusals in the program's words. The
//! binary itself is run for the Solana CLI config conventions.
use anchor_lang::{prelude::Pubkey, AccountDeserialize};
use base64::Engine;
use clap::Parser;
use escrow::{EscrowStatus, Outcome};
use escrow_chain::embedded::EmbeddedChain;
use escrow_cli::{run, Cli, Signing};
use escrow_tests::fixtures::{World, AMOUNT, BUYER_FUNDS};
use solana_keypair::Keypair;
use solana_signer::Signer;

struct Desk {
    world: World,
    chain: EmbeddedChain,
    buyer_token: Pubkey,
    seller_token: Pubkey,
}

/// Buyer and seller with wallet token accounts; nothing on-chain for the deal yet.
fn desk() -> Desk {
    let mut world = World::new();
    let buyer_token = world
        .svm
        .associated_token_account(&world.mint, &world.buyer.pubkey());
    world.svm.mint_to(&world.mint, &buyer_token, BUYER_FUNDS);
    let seller_token = anchor_spl::associated_token::get_associated_token_address(
        &world.seller.pubkey(),
        &world.mint,
    );
    let chain = EmbeddedChain::from_svm(std::mem::take(&mut world.svm.svm));
    Desk {
        world,
        chain,
        buyer_token,
        seller_token,
    }
}

impl Desk {
    /// Runs `escrow <args>` signed by `who`; returns what it printed or its error.
    async fn escrow(&self, who: &Keypair, args: &str) -> Result<String, String> {
        let cli = Cli::try_parse_from(std::iter::once("escrow").chain(args.split_whitespace()))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        run(
            &cli.command,
            &self.chain,
            Some(Signing::Keypair(who)),
            &mut out,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        Ok(String::from_utf8(out).unwrap())
    }

    async fn ok(&self, who: &Keypair, args: &str) -> String {
        self.escrow(who, args)
            .await
            .unwrap_or_else(|e| panic!("escrow {args}: {e}"))
    }

    fn escrow_address(&self) -> Pubkey {
        self.world.deal.escrow
    }

    fn state(&self) -> Option<escrow::Escrow> {
        let account = self.chain.svm().get_account(&self.escrow_address())?;
        escrow::Escrow::try_deserialize(&mut account.data.as_slice()).ok()
    }

    fn balance(&self, account: &Pubkey) -> u64 {
        self.chain.svm().get_account(account).map_or(0, |a| {
            u64::from_le_bytes(a.data[64..72].try_into().unwrap())
        })
    }

    fn now(&self) -> i64 {
        self.chain
            .svm()
            .get_sysvar::<anchor_lang::prelude::Clock>()
            .unix_timestamp
    }

    fn set_time(&self, unix_timestamp: i64) {
        let mut svm = self.chain.svm();
        let mut clock = svm.get_sysvar::<anchor_lang::prelude::Clock>();
        clock.unix_timestamp = unix_timestamp;
        svm.set_sysvar(&clock);
    }

    fn create_args(&self, extra: &str) -> String {
        let w = &self.world;
        let approvers: Vec<String> = w
            .args
            .approvers
            .iter()
            .map(|a| format!("--approver {a}"))
            .collect();
        format!(
            "create --id 42 --seller {} --mint {} --amount {AMOUNT} {} --threshold 2 \
             --timelock 1h --refund-after 7d {extra}",
            w.seller.pubkey(),
            w.mint,
            approvers.join(" ")
        )
    }
}

#[tokio::test]
async fn a_deal_from_create_to_release_on_the_command_line() {
    let d = desk();
    let w = &d.world;
    let escrow = d.escrow_address();

    let out = d.ok(&w.buyer, &d.create_args("")).await;
    assert!(
        out.starts_with(&format!("created escrow {escrow}\nsignature ")),
        "{out}"
    );
    assert_eq!(d.state().unwrap().status(), EscrowStatus::AwaitingDeposit);
    d.ok(&w.buyer, &format!("deposit {escrow}")).await;
    assert_eq!(d.balance(&w.deal.vault), AMOUNT);
    assert_eq!(d.balance(&d.buyer_token), BUYER_FUNDS - AMOUNT);

    d.ok(&w.seller, &format!("approve {escrow}")).await;
    d.ok(&w.seller, &format!("revoke {escrow}")).await;
    assert_eq!(d.state().unwrap().approvals(Outcome::Release), 0);
    // The same approval again is the same transaction unless the blockhash moved on, as it
    // does on a cluster every slot; the embedded chain moves it when asked.
    d.chain.svm().expire_blockhash();
    d.ok(&w.seller, &format!("approve {escrow} --outcome release"))
        .await;
    d.ok(&w.arbiter, &format!("approve {escrow}")).await;
    let state = d.state().unwrap();
    assert_eq!(state.scheduled(), Some(Outcome::Release));

    let shown = d.ok(&w.seller, &format!("show {escrow}")).await;
    for expected in [
        "status      funded (1.000000 received)".to_owned(),
        "policy      2 of 4 approvals, then a 1 h dispute window".to_owned(),
        format!("{} (seller)  approved release", w.seller.pubkey()),
        "approvals   release 2/2, refund 0/2".to_owned(),
        "(in 1 h); disputable until then".to_owned(),
    ] {
        assert!(
            shown.contains(&expected),
            "missing {expected:?} in\n{shown}"
        );
    }

    let early = d
        .escrow(&w.seller, &format!("release {escrow}"))
        .await
        .unwrap_err();
    assert_eq!(
        early,
        "refused, nothing was sent: the timelock has not elapsed (TimelockNotElapsed)"
    );
    d.set_time(state.eta);
    // Anyone may crank a due release; the seller's token account is created on the way.
    let out = d.ok(&w.relayer, &format!("release {escrow}")).await;
    assert!(
        out.starts_with(&format!(
            "released {escrow} (created at slot {}) to the seller",
            state.created_slot
        )),
        "{out}"
    );
    assert!(d.state().is_none(), "the escrow closed");
    assert_eq!(d.balance(&d.seller_token), AMOUNT);
    let gone = d
        .escrow(&w.seller, &format!("show {escrow}"))
        .await
        .unwrap_err();
    assert!(
        gone.starts_with(&format!("no account at {escrow}")),
        "{gone}"
    );
}

#[tokio::test]
async fn dispute_refund_and_cancel_on_the_command_line() {
    let d = desk();
    let w = &d.world;
    let escrow = d.escrow_address();

    // An unfunded deal can be cancelled, by its buyer only.
    d.ok(&w.buyer, &d.create_args("")).await;
    let err = d
        .escrow(&w.seller, &format!("cancel {escrow}"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "this needs the signature of {}, and you are {}: run it with that keypair",
            w.buyer.pubkey(),
            w.seller.pubkey()
        )
    );
    let cancelled = d.state().unwrap().created_slot;
    d.ok(&w.buyer, &format!("cancel {escrow}")).await;
    assert!(d.state().is_none());

    let deal_ref = "ab".repeat(32);
    d.ok(
        &w.buyer,
        &d.create_args(&format!("--deposit --deal-ref {deal_ref}")),
    )
    .await;
    let state = d.state().unwrap();
    assert_eq!(state.status(), EscrowStatus::Funded);
    assert_eq!(state.deal_ref, [0xab; 32]);
    let shown = d.ok(&w.seller, &format!("show {escrow}")).await;
    assert!(
        shown.contains(&format!("created     slot {}", state.created_slot)),
        "{shown}"
    );

    // The same address now holds another deal: a signature pinned to the cancelled one is
    // refused before anything is built.
    let err = d
        .escrow(
            &w.buyer,
            &format!("approve {escrow} --outcome refund --created-slot {cancelled}"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "{escrow} is now another deal (created at slot {}, not {cancelled}): the deal you \
             meant has closed; check `escrow show {escrow}` before signing anything for this one",
            state.created_slot
        )
    );
    assert_eq!(d.state().unwrap().refund_approvals, 0);

    let stranger = Keypair::new();
    d.chain
        .svm()
        .airdrop(&stranger.pubkey(), 1_000_000_000)
        .unwrap();
    let err = d
        .escrow(&stranger, &format!("approve {escrow}"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "refused, nothing was sent: signer is not an approver of this escrow (NotAnApprover)"
    );

    d.ok(
        &w.buyer,
        &format!(
            "approve {escrow} --outcome refund --created-slot {}",
            state.created_slot
        ),
    )
    .await;
    d.ok(&w.arbiter, &format!("approve {escrow} --outcome refund"))
        .await;
    assert_eq!(d.state().unwrap().scheduled(), Some(Outcome::Refund));
    d.ok(&w.seller, &format!("dispute {escrow}")).await;
    let state = d.state().unwrap();
    assert_eq!((state.scheduled(), state.disputes), (None, 0b10));
    let err = d
        .escrow(&w.seller, &format!("dispute {escrow}"))
        .await
        .unwrap_err();
    assert!(err.starts_with("refused, nothing was sent: "), "{err}");

    let err = d
        .escrow(&w.buyer, &format!("refund {escrow}"))
        .await
        .unwrap_err();
    assert!(err.ends_with("(RefundNotAllowed)"), "{err}");
    assert_eq!(d.balance(&d.buyer_token), BUYER_FUNDS - AMOUNT);
    d.set_time(state.refund_after + 1);
    d.ok(&w.buyer, &format!("refund {escrow}")).await;
    assert!(d.state().is_none());
    assert_eq!(d.balance(&d.buyer_token), BUYER_FUNDS);
    assert!(d.now() > state.refund_after);
}

#[tokio::test]
async fn unsigned_mode_hands_the_transaction_to_another_signer() {
    let d = desk();
    let w = &d.world;
    let cli = Cli::try_parse_from(
        std::iter::once("escrow").chain(d.create_args("--deposit").split_whitespace()),
    )
    .unwrap();
    let mut out = Vec::new();
    run(
        &cli.command,
        &d.chain,
        Some(Signing::Elsewhere(w.buyer.pubkey())),
        &mut out,
    )
    .await
    .unwrap();
    assert!(d.state().is_none(), "nothing was sent");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8(out).unwrap().trim())
        .unwrap();
    let mut tx: solana_transaction::Transaction = bincode::deserialize(&bytes).unwrap();
    assert_eq!(tx.message.account_keys[0], w.buyer.pubkey());
    // The hardware wallet's part, played by the buyer's key.
    let blockhash = tx.message.recent_blockhash;
    tx.try_sign(&[&w.buyer], blockhash).unwrap();
    d.chain.submit(&tx).unwrap();
    assert_eq!(d.state().unwrap().status(), EscrowStatus::Funded);
}

/// The `escrow` binary: `cmd args` with HOME pointed at `home`.
fn escrow_bin(home: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_escrow"))
        .args(args)
        .env("HOME", home)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_follows_the_solana_cli_config() {
    let home = tempfile::tempdir().unwrap();
    let config_dir = home.path().join(".config/solana/cli");
    std::fs::create_dir_all(&config_dir).unwrap();
    let keypair = home.path().join("me.json");
    solana_keypair::write_keypair_file(&Keypair::new(), &keypair).unwrap();
    // Nothing listens on port 1: the error must name the URL the config chose.
    std::fs::write(
        config_dir.join("config.yml"),
        format!(
            "---\njson_rpc_url: \"http://127.0.0.1:1\"\nkeypair_path: {}\ncommitment: confirmed\n",
            keypair.display()
        ),
    )
    .unwrap();
    let escrow = Pubkey::new_unique().to_string();

    let (ok, _, err) = escrow_bin(home.path(), &["approve", &escrow]);
    assert!(!ok);
    assert!(
        err.starts_with("error: cannot use the cluster at http://127.0.0.1:1 (check --url)"),
        "{err}"
    );

    // --keypair wins over the config, and a missing file says how to fix it.
    let (ok, _, err) = escrow_bin(
        home.path(),
        &["-k", "/nonexistent.json", "dispute", &escrow],
    );
    assert!(!ok);
    assert!(
        err.starts_with("error: cannot read keypair /nonexistent.json"),
        "{err}"
    );

    let (ok, _, err) = escrow_bin(home.path(), &["--url", "ftp://x", "show", &escrow]);
    assert!(!ok);
    assert!(err.contains("use an http(s) URL"), "{err}");

    let (ok, help, _) = escrow_bin(home.path(), &["--help"]);
    assert!(ok);
    for command in [
        "create", "deposit", "approve", "revoke", "dispute", "release", "refund", "cancel", "show",
    ] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} in\n{help}"
        );
    }
}
