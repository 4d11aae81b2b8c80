//! How the story prints: a heading per step, indented lines under it.

pub fn step(title: &str) {
    println!("\n▶ {title}");
}

pub fn say(line: &str) {
    println!("  {line}");
}

/// Base units as tokens: `25.000000 tokens`.
pub fn tokens(base_units: u64, decimals: u8) -> String {
    format!("{} tokens", escrow::client::ui_amount(base_units, decimals))
}
