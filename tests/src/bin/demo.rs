//! The on-chain half of the escrow story, told step by step on the real compiled program in
//! LiteSVM: a buyer funds a deal, the relayer and the seller approve, the timelock runs out,
//! the release pays the seller.
use escrow::Outcome;
use escrow_tests::fixtures::{Who, World, AMOUNT, TIMELOCK};
use solana_signer::Signer;

fn step(text: &str) {
    println!("\n▶ {text}");
}

fn main() {
    let mut w = World::new();
    println!(
        "escrow program {} loaded from {}",
        escrow::ID,
        escrow_tests::program_path().display()
    );
    println!(
        "buyer   {}\nseller  {}\narbiter {}\nrelayer {}",
        w.buyer.pubkey(),
        w.seller.pubkey(),
        w.arbiter.pubkey(),
        w.relayer.pubkey()
    );

    step("buyer creates the escrow and deposits in one transaction, signed by their own wallet");
    w.fund();
    let s = w.state().expect("escrow");
    println!(
        "  escrow {}\n  vault holds {} (policy: {} of {} approvers, timelock {} s)",
        w.deal.escrow,
        w.svm.token_balance(&w.deal.vault),
        s.threshold,
        s.approver_count,
        s.timelock_secs
    );

    step("the relayer approves the release (delivery confirmed)");
    w.approve(Who::Relayer, Outcome::Release)
        .expect("relayer approves");
    println!("  release approvals: 1 of {}", s.threshold);

    step("the seller approves: threshold reached, the release is scheduled");
    w.approve(Who::Seller, Outcome::Release)
        .expect("seller approves");
    let eta = w.state().unwrap().eta;
    println!("  eta = now + {} s", eta - w.svm.now());

    step("a crank before the eta is refused");
    let early = w.release().expect_err("early release must fail");
    let reason = early
        .meta
        .logs
        .iter()
        .find_map(|l| l.split("Error Message: ").nth(1))
        .unwrap_or("?");
    println!("  refused: {reason}");

    step("the dispute window passes without a dispute");
    w.svm.advance(i64::from(TIMELOCK));

    step("anyone cranks the release");
    w.release().expect("release");
    println!(
        "  seller received {} of {}; escrow closed: {}, vault closed: {}",
        w.svm.token_balance(&w.seller_token),
        AMOUNT,
        w.svm.is_closed(&w.deal.escrow),
        w.svm.is_closed(&w.deal.vault)
    );
    println!("\ndone: the money moved only under the policy fixed at creation.");

    // The relayer's act of the demo registers this same deal.
    if let Some(path) = std::env::args().nth(1) {
        let deal = serde_json::json!({
            "escrow": w.deal.escrow.to_string(), "buyer": w.buyer.pubkey().to_string(),
            "seller": w.seller.pubkey().to_string(), "mint": w.mint.to_string(), "amount": AMOUNT,
        });
        std::fs::write(&path, deal.to_string()).expect("write the deal file");
    }
}
