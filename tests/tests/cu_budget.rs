//! Compute-unit regressions fail here; the figures themselves are printed by `cu-report`.
#[test]
fn every_instruction_stays_within_its_compute_budget() {
    let over: Vec<String> = escrow_tests::cu::measure()
        .into_iter()
        .filter(|m| m.compute_units > m.budget)
        .map(|m| {
            format!(
                "{}: {} CU > budget {}",
                m.instruction, m.compute_units, m.budget
            )
        })
        .collect();
    assert!(
        over.is_empty(),
        "over budget (see `cargo run -p escrow-tests --bin cu-report`):\n{}",
        over.join("\n")
    );
}
