//! Random sequences of instructions by random actors, checking after every step that:
//! - money is in the vault, with the seller, or back with the buyer, and nowhere else;
//! - never both outcomes: the seller has all of it or none of it;
//! - a release or refund only succeeds when the policy allowed it at that moment;
//! - a refused instruction changes nothing.
use escrow::{Escrow, Outcome};
use escrow_tests::fixtures::*;
use proptest::prelude::*;
use solana_signer::Signer;

#[derive(Clone, Debug)]
enum Op {
    Approve(Who, Outcome),
    Revoke(Who, Outcome),
    Dispute(Who),
    Advance(i64),
    Release,
    Refund(Who),
    Cancel,
    Deposit,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        Just(Who::Buyer),
        Just(Who::Seller),
        Just(Who::Arbiter),
        Just(Who::Relayer),
        Just(Who::Anyone)
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![Just(Outcome::Release), Just(Outcome::Refund)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (who(), outcome()).prop_map(|(w, o)| Op::Approve(w, o)),
        1 => (who(), outcome()).prop_map(|(w, o)| Op::Revoke(w, o)),
        1 => who().prop_map(Op::Dispute),
        2 => prop_oneof![0..i64::from(TIMELOCK) * 2, Just(REFUND_AFTER)].prop_map(Op::Advance),
        2 => Just(Op::Release),
        2 => who().prop_map(Op::Refund),
        1 => Just(Op::Cancel),
        1 => Just(Op::Deposit),
    ]
}

/// Whether the policy allows a refund by `caller` now, judged from the state before it.
fn refund_allowed(w: &World, state: &Escrow, caller: Who) -> bool {
    let now = w.svm.now();
    w.key(caller).pubkey() == state.seller
        || match state.scheduled() {
            Some(Outcome::Refund) => now >= state.eta,
            Some(Outcome::Release) => false,
            None => now >= state.refund_after,
        }
}

fn check_money(w: &World) -> Result<(), TestCaseError> {
    let vault = if w.svm.is_closed(&w.deal.vault) {
        0
    } else {
        w.svm.token_balance(&w.deal.vault)
    };
    let buyer = w.svm.token_balance(&w.buyer_token);
    let seller = w.svm.token_balance(&w.seller_token);
    prop_assert_eq!(
        vault + buyer + seller,
        BUYER_FUNDS,
        "tokens appeared or vanished"
    );
    prop_assert!(
        seller == 0 || seller == AMOUNT,
        "partial release: {}",
        seller
    );
    if seller == AMOUNT {
        prop_assert_eq!(buyer, BUYER_FUNDS - AMOUNT, "both outcomes paid");
    }
    Ok(())
}

fn run(start_funded: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut w = World::new();
    if start_funded {
        w.fund();
    } else {
        w.create().expect("create");
    }
    for op in ops {
        let before = w.svm.svm.get_account(&w.deal.escrow).map(|a| a.data);
        let state = w.state();
        let result = match &op {
            Op::Approve(who, o) => w.approve(*who, *o),
            Op::Revoke(who, o) => w.revoke(*who, *o),
            Op::Dispute(who) => w.dispute(*who),
            Op::Advance(secs) => {
                w.svm.advance(*secs);
                continue;
            }
            Op::Release => w.release(),
            Op::Refund(who) => w.refund(*who),
            Op::Cancel => w.cancel(),
            Op::Deposit => w.deposit(),
        };
        match (&result, &state) {
            (Ok(_), Some(s)) if matches!(op, Op::Release) => {
                prop_assert_eq!(
                    s.scheduled(),
                    Some(Outcome::Release),
                    "released without a schedule"
                );
                prop_assert!(w.svm.now() >= s.eta, "released before eta");
            }
            (Ok(_), Some(s)) => {
                if let Op::Refund(caller) = op {
                    prop_assert!(
                        refund_allowed(&w, s, caller),
                        "refund the policy did not allow"
                    );
                }
            }
            (Ok(_), None) => prop_assert!(false, "{:?} succeeded on a closed escrow", op),
            (Err(_), _) => {
                let after = w.svm.svm.get_account(&w.deal.escrow).map(|a| a.data);
                prop_assert_eq!(before, after, "{:?} failed but changed the escrow", op);
            }
        }
        check_money(&w)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_invariants(start_funded in any::<bool>(), ops in prop::collection::vec(op(), 1..24)) {
        run(start_funded, ops)?;
    }
}
