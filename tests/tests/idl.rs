//! The committed IDL (idl/escrow.json) is what auditors and clients read: it must be exactly
//! what the program's source generates today.
#[test]
fn committed_idl_matches_the_program() {
    let generated = escrow_tests::idl::generate().expect("generate the IDL");
    let path = escrow_tests::idl::committed_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `cargo run -p escrow-tests --bin idl -- idl/escrow.json`",
        path.display()
    );
}

#[test]
fn idl_names_every_instruction_event_and_error() {
    let idl: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(escrow_tests::idl::committed_path()).unwrap(),
    )
    .unwrap();
    let names = |key: &str| -> Vec<String> {
        idl[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for ix in [
        "create", "deposit", "cancel", "approve", "revoke", "dispute", "release", "refund",
    ] {
        assert!(
            names("instructions").contains(&ix.to_owned()),
            "instruction {ix} missing"
        );
    }
    for event in [
        "Created",
        "Deposited",
        "Approved",
        "Revoked",
        "Scheduled",
        "Disputed",
        "Released",
        "Refunded",
        "Cancelled",
    ] {
        assert!(
            names("events").contains(&event.to_owned()),
            "event {event} missing"
        );
    }
    assert_eq!(idl["address"], escrow::ID.to_string());
    assert!(names("errors").contains(&"TimelockNotElapsed".to_owned()));
}
