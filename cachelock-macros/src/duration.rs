//! Human durations, parsed at expansion time: `"30s"`, `"5m"`, `"250ms"`, `"1h30m"`, `"1.5s"`.

/// The units, longest suffix first where two share a prefix (`ms` before `m`).
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 60 * 60 * 1_000_000_000),
    ("d", 24 * 60 * 60 * 1_000_000_000),
];

const HELP: &str = "write a number and a unit (ns, us, ms, s, m, h, d), like \"30s\", \"250ms\", \"1.5s\" or \"1h30m\"";

/// Parses a duration into nanoseconds.
///
/// One or more `<number><unit>` parts, optionally separated by spaces; a number may have a
/// fractional part. The total must be a whole number of nanoseconds that fits in a `u64`.
pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration: {HELP}"));
    }
    let mut rest = trimmed;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() {
            return Err(format!("invalid duration {text:?}: {HELP}"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        if unit.is_empty() {
            return Err(format!(
                "duration {text:?} has no unit: write \"{number}s\" for seconds, or another unit (ns, us, ms, s, m, h, d)"
            ));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "unknown unit `{unit}` in duration {text:?}: use ns, us, ms, s, m, h or d"
            ));
        };
        total = total
            .checked_add(scaled(number, scale).ok_or_else(|| {
                format!("invalid number `{number}` in duration {text:?}: {HELP}")
            })??)
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    u64::try_from(total).map_err(|_| format!("duration {text:?} is too long"))
}

/// `number * scale`, exactly; `None` if `number` is not a decimal number.
fn scaled(number: &str, scale: u128) -> Option<Result<u128, String>> {
    let (int, frac) = match number.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (number, ""),
    };
    if int.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    if int.len() > 30 || frac.len() > 30 {
        return Some(Err(format!("number `{number}` is too long")));
    }
    let int: u128 = int.parse().ok()?;
    let mut value = int.checked_mul(scale)?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().ok()?;
        let denominator = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        let numerator = digits.checked_mul(scale)?;
        if numerator % denominator != 0 {
            return Some(Err(format!(
                "`{number}` is finer than a nanosecond: use a smaller unit"
            )));
        }
        value = value.checked_add(numerator / denominator)?;
    }
    Some(Ok(value))
}

#[cfg(test)]
mod tests {
    use super::parse;

    const S: u64 = 1_000_000_000;

    #[test]
    fn units() {
        assert_eq!(parse("30s"), Ok(30 * S));
        assert_eq!(parse("5m"), Ok(300 * S));
        assert_eq!(parse("250ms"), Ok(250_000_000));
        assert_eq!(parse("1h"), Ok(3600 * S));
        assert_eq!(parse("2d"), Ok(2 * 86_400 * S));
        assert_eq!(parse("10us"), Ok(10_000));
        assert_eq!(parse("10µs"), Ok(10_000));
        assert_eq!(parse("7ns"), Ok(7));
    }

    #[test]
    fn fractions_and_compounds() {
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("0.25m"), Ok(15 * S));
        assert_eq!(parse("1h30m"), Ok(5400 * S));
        assert_eq!(parse("1m 30s"), Ok(90 * S));
        assert_eq!(parse(" 0s "), Ok(0));
    }

    #[test]
    fn errors() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("30 s").unwrap_err().contains("no unit"));
        assert!(parse("30sec").unwrap_err().contains("unknown unit `sec`"));
        assert!(parse("s").unwrap_err().contains("invalid duration"));
        assert!(parse("1..5s").unwrap_err().contains("invalid number"));
        assert!(parse("1.s").unwrap_err().contains("invalid number"));
        assert!(parse(".5s").unwrap_err().contains("invalid number"));
        assert!(parse("1.5ns")
            .unwrap_err()
            .contains("finer than a nanosecond"));
        assert!(parse("100000000000d").unwrap_err().contains("too long"));
    }
}
