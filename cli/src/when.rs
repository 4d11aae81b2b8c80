//! Times and durations as people type them, and as `show` prints them.

/// `90`, `30m`, `1h`, `2d` → seconds.
pub fn duration_secs(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Unix seconds, RFC 3339, or a duration after `now` → unix seconds.
pub fn instant(s: &str, now: i64) -> Option<i64> {
    if let Ok(unix) = s.parse::<i64>() {
        return Some(unix);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    now.checked_add(i64::try_from(duration_secs(s)?).ok()?)
}

pub fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `2026-12-03 10:00:00 UTC (in 6 d 23 h)` against the cluster's clock `now`.
pub fn human(unix: i64, now: i64) -> String {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let delta = unix.saturating_sub(now);
    let span = span(delta.unsigned_abs());
    if delta >= 0 {
        format!("{at} (in {span})")
    } else {
        format!("{at} ({span} ago)")
    }
}

/// The two largest units of a duration: `6 d 23 h`, `59 min 10 s`.
pub fn span(secs: u64) -> String {
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3_600 % 24, "h"),
        (secs / 60 % 60, "min"),
        (secs % 60, "s"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if shown.is_empty() {
        "0 s".into()
    } else {
        shown.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_type() {
        assert_eq!(duration_secs("90"), Some(90));
        assert_eq!(duration_secs("30m"), Some(1_800));
        assert_eq!(duration_secs("2d"), Some(172_800));
        assert_eq!(duration_secs("2w"), None);
        assert_eq!(duration_secs("h"), None);
        assert_eq!(instant("7d", 1_000), Some(1_000 + 604_800));
        assert_eq!(instant("1767225600", 0), Some(1_767_225_600));
        assert_eq!(instant("2026-01-01T00:00:00Z", 0), Some(1_767_225_600));
        assert_eq!(instant("soon", 0), None);
        assert_eq!(hex32(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(hex32("ab"), None);
    }

    #[test]
    fn prints_times_relative_to_the_cluster_clock() {
        assert_eq!(span(3_661), "1 h 1 min");
        assert_eq!(span(0), "0 s");
        assert_eq!(span(86_400 + 5), "1 d");
        assert_eq!(
            human(1_767_225_600, 1_767_225_600 - 90),
            "2026-01-01 00:00:00 UTC (in 1 min 30 s)"
        );
        assert!(human(0, 10).ends_with("(10 s ago)"));
    }
}
