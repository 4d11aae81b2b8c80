//! How the story prints: a heading per step, indented lines under it.

pub fn step(title: &str) {
    println!("\n▶ {title}");
}

pub fn say(line: &str) {
    println!("  {line}");
}

/// Base units as tokens: `25.000000 tokens`.
pub fn tokens(base_units: u64, decimals: u8) -> String {
    let scale = 10u64.pow(u32::from(decimals));
    format!(
        "{}.{:0width$} tokens",
        base_units / scale,
        base_units % scale,
        width = usize::from(decimals)
    )
}
