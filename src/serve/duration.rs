//! Durations written as Go writes them (`10s`, `500ms`, `1m30s`, `1.5h`): the `timeout` query
//! parameter the API server appends to webhook calls, and the duration flags of `serve`.

use std::time::Duration;

/// Parses a Go duration (`time.ParseDuration`): one or more decimal numbers, each with an
/// optional fraction and a unit among `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`; `0` alone is
/// zero. Negative durations and overflows are `None`.
pub fn parse_go(text: &str) -> Option<Duration> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total.checked_add(scaled(number, nanos_per_unit)?)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    // Go durations are at most about 292 years; anything larger is not a duration Go wrote.
    if secs > i64::MAX as u64 / 1_000_000_000 {
        return None;
    }
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Parses a duration flag: whole seconds (`10`), or a Go duration (`10s`, `500ms`).
pub fn parse_flag(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    parse_go(text).ok_or_else(|| {
        format!("invalid duration {text:?}: expected seconds (10) or a duration (10s, 500ms, 1m)")
    })
}

/// `number` (digits, an optional fraction) times `unit` nanoseconds; the fraction is cut to
/// whole nanoseconds, as Go does.
/// Whole milliseconds, for log fields (saturating: a duration too long for u64 is `u64::MAX`).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut nanos = if whole.is_empty() {
        0
    } else {
        whole.parse::<u128>().ok()?.checked_mul(unit)?
    };
    let mut scale = unit;
    for digit in fraction.bytes() {
        if !digit.is_ascii_digit() {
            return None;
        }
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * scale)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn parses_what_the_api_server_sends() {
        assert_eq!(parse_go("10s"), ms(10_000));
        assert_eq!(parse_go("30s"), ms(30_000));
        assert_eq!(parse_go("500ms"), ms(500));
        assert_eq!(parse_go("1m"), ms(60_000));
        assert_eq!(parse_go("1m0s"), ms(60_000));
        assert_eq!(parse_go("1m30s"), ms(90_000));
        assert_eq!(parse_go("2h"), ms(7_200_000));
    }

    #[test]
    fn parses_fractions_and_small_units() {
        assert_eq!(parse_go("1.5s"), ms(1_500));
        assert_eq!(parse_go(".5s"), ms(500));
        assert_eq!(parse_go("1.s"), ms(1_000));
        assert_eq!(parse_go("1.5h"), ms(5_400_000));
        assert_eq!(parse_go("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go("250\u{b5}s"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse_go("1.0000000005s"), ms(1_000));
        assert_eq!(parse_go("0"), Some(Duration::ZERO));
        assert_eq!(parse_go("+3s"), ms(3_000));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "", "10", "s", ".s", "-1s", "1x", "1 s", "1s ", "1.2.3s", "ten", "1e3s",
        ] {
            assert_eq!(parse_go(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(parse_go("99999999999999999999999999999999999999h"), None);
        assert_eq!(parse_go("3000000h"), None);
        assert!(parse_go("2000000h").is_some());
    }

    #[test]
    fn flags_take_seconds_or_durations() {
        assert_eq!(parse_flag("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_flag("0"), Ok(Duration::ZERO));
        assert_eq!(parse_flag("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_flag("soon").is_err());
    }
}
