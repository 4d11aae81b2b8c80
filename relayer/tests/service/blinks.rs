//! Solana Actions, as a wallet uses them: fetch the action, sign the returned transaction with the
//! party's own key, land it on the embedded chain (the compiled program in LiteSVM), and check
//! the escrow is exactly what the action promised.

use crate::{market::*, support::*};
use anchor_lang::prelude::Pubkey;
use escrow::{EscrowStatus, Outcome};
use escrow_tests::fixtures::{AMOUNT, BUYER_FUNDS, TIMELOCK};
use relayer::domain::offer::deal_ref;
use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use uuid::Uuid;

#[tokio::test]
async fn the_deposit_action_funds_the_escrow_exactly_as_promised() {
    let m = market().await;
    let (offer, registered) = m.register().await;
    assert_eq!(
        registered["escrow"],
        m.world.deal.escrow.to_string(),
        "the relayer derives the escrow's address from the buyer and the terms' id"
    );

    let (status, headers, rules) = m.get("/actions.json").await;
    assert_eq!(status, 200);
    assert_eq!(rules["rules"][0]["apiPath"], "/api/actions/**");
    assert_eq!(headers["access-control-allow-origin"], "*");

    let (status, headers, action) = m.get(&format!("/api/actions/deposit/{offer}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-action-version"], "2.4");
    assert!(headers["x-blockchain-ids"]
        .to_str()
        .unwrap()
        .starts_with("solana:"));
    assert_eq!(action["type"], "action");
    assert_eq!(action["label"], "Fund escrow");
    assert_eq!(
        action["links"]["actions"][0]["href"],
        format!("/api/actions/deposit/{offer}")
    );
    assert!(action["icon"]
        .as_str()
        .unwrap()
        .ends_with("/actions/icon.svg"));
    let description = action["description"].as_str().unwrap();
    assert!(description.contains("1.000000 tokens"), "{description}");
    assert!(
        description.contains("once 2 of 4 (buyer, seller, "),
        "{description}"
    );
    assert!(description.contains("1 h dispute window"), "{description}");
    assert!(action.get("disabled").is_none(), "{action}");

    let (status, body) = m.post("deposit", offer, &m.world.buyer.pubkey()).await;
    assert_eq!(status, 200, "{body}");
    let tx = decode(&body);
    assert_eq!(
        tx.message.header.num_required_signatures, 1,
        "only the buyer signs"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Locks 1.000000"));

    m.act("deposit", offer, &m.world.buyer).await;
    let escrow = m.escrow().expect("the escrow exists");
    assert_eq!(escrow.status(), EscrowStatus::Funded);
    assert_eq!(escrow.buyer, m.world.buyer.pubkey());
    assert_eq!(escrow.seller, m.world.seller.pubkey());
    assert_eq!(escrow.mint, m.world.mint);
    assert_eq!((escrow.amount, escrow.received), (AMOUNT, AMOUNT));
    assert_eq!(escrow.approvers(), m.world.args.approvers.as_slice());
    assert_eq!(escrow.threshold, 2);
    assert_eq!(escrow.timelock_secs, TIMELOCK);
    assert_eq!(escrow.refund_after, m.refund_after);
    assert_eq!(
        escrow.deal_ref,
        deal_ref(offer),
        "the escrow names its offer"
    );
    assert_eq!(m.balance(&m.world.deal.vault), AMOUNT);
    assert_eq!(m.balance(&m.buyer_token), BUYER_FUNDS - AMOUNT);

    // Funded: the action says so and builds nothing more.
    let (_, _, action) = m.get(&format!("/api/actions/deposit/{offer}")).await;
    assert_eq!(action["disabled"], true);
    assert_eq!(action["error"]["message"], "this offer is already funded");
    let (status, body) = m.post("deposit", offer, &m.world.buyer.pubkey()).await;
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (400, "this offer is already funded")
    );
    m.app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_clear_message_and_change_nothing() {
    let m = market().await;
    let (offer, _) = m.register().await;
    let mallory = Keypair::new();

    let (status, body) = m.post("deposit", offer, &mallory.pubkey()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        format!(
            "this offer is for buyer {}; connect that wallet",
            m.world.buyer.pubkey()
        )
    );
    let (status, body) = m
        .post("deposit", Uuid::new_v4(), &m.world.buyer.pubkey())
        .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("unknown offer"));
    let (status, body) = m.post("steal", offer, &m.world.buyer.pubkey()).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("unknown action"));
    // Approving, disputing, refunding an escrow that does not exist yet.
    for action in ["approve", "dispute", "refund"] {
        let (status, body) = m.post(action, offer, &m.world.seller.pubkey()).await;
        assert_eq!(status, 400, "{action}");
        assert_eq!(
            body["message"],
            "the escrow is not funded (yet, or any more)"
        );
    }

    let url = m.app.url(&format!("/api/actions/deposit/{offer}"));
    for body in [
        r#"{"acct": "x"}"#,
        "not json",
        r#"{"account": "not-an-address"}"#,
    ] {
        let resp = m
            .app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }

    // CORS preflight, as a browser wallet sends it.
    let resp = m
        .app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("X-Blockchain-Ids"));

    // An offer registered for an escrow made elsewhere has no terms to create one from.
    let resp = m
        .app
        .http
        .post(m.app.url("/v1/offers"))
        .bearer_auth(m.app.token())
        .json(&offer_body("1ZNOTERMS"))
        .send()
        .await
        .unwrap();
    let no_terms: Value = resp.json().await.unwrap();
    let buyer: Pubkey = no_terms["buyer"].as_str().unwrap().parse().unwrap();
    let (status, body) = m
        .post(
            "deposit",
            no_terms["id"].as_str().unwrap().parse().unwrap(),
            &buyer,
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("without deal terms"));

    assert!(m.escrow().is_none(), "nothing reached the chain");
    assert_eq!(
        m.app
            .metric("relayer_actions_total{action=\"deposit\",result=\"refused\"}")
            .await,
        6.0
    );
    m.app.stop().await;
}

#[tokio::test]
async fn a_deposit_moved_to_another_buyer_fails_on_chain() {
    let m = market().await;
    let (offer, _) = m.register().await;
    let (_, body) = m.post("deposit", offer, &m.world.buyer.pubkey()).await;
    let mut tx = decode(&body);

    // Another wallet cannot sign the buyer's transaction...
    let mallory = Keypair::new();
    m.chain
        .svm()
        .airdrop(&mallory.pubkey(), 1_000_000_000)
        .unwrap();
    let blockhash = tx.message.recent_blockhash;
    assert!(tx.try_sign(&[&mallory], blockhash).is_err());

    // ...and putting itself in the buyer's place breaks the escrow's address (seeds: buyer, id).
    tx.message.account_keys[0] = mallory.pubkey();
    let mut forged = Transaction::new_unsigned(tx.message);
    forged.try_sign(&[&mallory], blockhash).unwrap();
    let failed = m.chain.submit(&forged).expect_err("the program refuses it");
    assert!(
        failed
            .meta
            .logs
            .iter()
            .any(|l| l.contains("Error Code: ConstraintSeeds")),
        "{:?}",
        failed.meta.logs
    );
    assert!(m.escrow().is_none());
    assert_eq!(m.balance(&m.buyer_token), BUYER_FUNDS);
    m.app.stop().await;
}

#[tokio::test]
async fn parties_approve_dispute_and_take_a_refund_from_their_wallets() {
    let m = market().await;
    let (offer, _) = m.register().await;
    m.act("deposit", offer, &m.world.buyer).await;

    let (_, _, action) = m.get(&format!("/api/actions/approve/{offer}")).await;
    assert_eq!(action["label"], "Approve release");
    assert!(action.get("disabled").is_none());

    m.act("approve", offer, &m.world.seller).await;
    assert_eq!(
        m.escrow().unwrap().approvals(Outcome::Release),
        0b10,
        "the seller's bit"
    );
    let (status, body) = m.post("approve", offer, &m.world.seller.pubkey()).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("this transaction would fail:")
            && body["message"]
                .as_str()
                .unwrap()
                .ends_with("(AlreadyApproved)"),
        "{body}"
    );
    let stranger = Keypair::new();
    let (status, body) = m.post("approve", offer, &stranger.pubkey()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        format!("{} is not an approver of this escrow", stranger.pubkey())
    );

    m.act("approve", offer, &m.world.buyer).await;
    assert_eq!(m.escrow().unwrap().scheduled(), Some(Outcome::Release));

    m.act("dispute", offer, &m.world.buyer).await;
    let escrow = m.escrow().unwrap();
    assert_eq!(
        escrow.scheduled(),
        None,
        "the dispute cancelled the release"
    );
    assert_eq!(escrow.disputes & 1, 1);

    let (status, body) = m.post("refund", offer, &m.world.buyer.pubkey()).await;
    assert_eq!(status, 400, "no refund before the deadline: {body}");
    assert_eq!(m.balance(&m.buyer_token), BUYER_FUNDS - AMOUNT);

    m.set_chain_time(escrow.refund_after + 1);
    m.act("refund", offer, &m.world.buyer).await;
    assert!(m.escrow().is_none(), "the refund closed the escrow");
    assert_eq!(m.balance(&m.buyer_token), BUYER_FUNDS);
    assert_eq!(
        m.app
            .metric("relayer_actions_total{action=\"approve\",result=\"built\"}")
            .await,
        2.0
    );
    m.app.stop().await;
}

#[tokio::test]
async fn a_later_deal_at_the_offers_address_gets_no_transaction() {
    let m = market().await;
    let (offer, _) = m.register().await;
    m.act("deposit", offer, &m.world.buyer).await;
    // The watchtower binds the offer to the deal it sees; the seller then gives the money back.
    relayer::reconcile::reconcile_once(&m.app.pool, &m.chain, 5)
        .await
        .unwrap();
    m.act("refund", offer, &m.world.seller).await;
    assert!(m.escrow().is_none());

    // The buyer opens a new deal at the same address, outside the relayer, with the offer's own
    // terms.
    let w = &m.world;
    let mut args = w.args.clone();
    args.refund_after = m.refund_after;
    args.deal_ref = deal_ref(offer);
    let deal = escrow::client::Deal::before_create(
        &w.buyer.pubkey(),
        args.id,
        &w.seller.pubkey(),
        &w.mint,
        &w.token_program,
    );
    let ixs = [
        escrow::client::create(&w.buyer.pubkey(), &w.mint, &w.token_program, args),
        deal.deposit(&m.buyer_token),
    ];
    // Identical terms, even: only a fresh blockhash tells the two transactions apart.
    let blockhash = {
        let mut svm = m.chain.svm();
        svm.expire_blockhash();
        svm.latest_blockhash()
    };
    let tx =
        Transaction::new_signed_with_payer(&ixs, Some(&w.buyer.pubkey()), &[&w.buyer], blockhash);
    m.chain.submit(&tx).expect("the buyer's new deal");
    assert_eq!(m.escrow().unwrap().status(), EscrowStatus::Funded);

    for (action, who) in [("approve", &w.seller), ("dispute", &w.buyer)] {
        let (status, body) = m.post(action, offer, &who.pubkey()).await;
        assert_eq!(status, 400, "{action}: {body}");
        assert_eq!(
            body["message"],
            "the escrow at this address is a later deal than this offer's, which has closed; \
             do not sign anything for it"
        );
    }
    assert_eq!(m.escrow().unwrap().release_approvals, 0);
    m.app.stop().await;
}
