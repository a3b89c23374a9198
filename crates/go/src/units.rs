//! go-units: `HumanDuration`, `HumanSize`, `BytesSize`, `RAMInBytes`, `FromHumanSize`, and Go's
//! `%.Ng` that they print with.

/// go-units `HumanDuration` for a duration in seconds (`Less than a second`, `About a minute`,
/// `3 hours`, `2 weeks`...); negative durations count as zero.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds the hours: int(d.Hours() + 0.5).
    let hours = crate::trunc_i64(secs as f64 / 3600.0 + 0.5);
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

/// Go's `%.{prec}g` of a float: `prec` significant digits, trailing zeros dropped, the
/// exponent form (`1e+03`) when the exponent is below -4 or at least `prec`.
pub fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let prec = prec.max(1);
    let p = i32::try_from(prec).unwrap_or(i32::MAX);
    let exp = crate::exponent10(v);
    // Round to `prec` significant digits first: rounding can carry into a new digit.
    let scale = 10f64.powi(p - 1 - exp);
    let rounded = (v * scale).round() / scale;
    let exp = if rounded == 0.0 {
        exp
    } else {
        crate::exponent10(rounded)
    };
    if exp < -4 || exp >= p {
        let mantissa = rounded / 10f64.powi(exp);
        let m = trim_zeros(format!("{:.*}", prec - 1, mantissa));
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
    trim_zeros(format!("{rounded:.decimals$}"))
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Divides `size` down by `base` while it is at least `base`: the value and its unit.
fn scaled(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanSizeWithPrecision`: decimal units (`kB`, `MB`...) with `%.{prec}g`.
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let (v, unit) = scaled(size, 1000.0, &DECIMAL);
    format!("{}{unit}", format_g(v, prec))
}

/// go-units `HumanSize`: sizes as `docker images` and `docker ps -s` show them (`4.26MB`).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units `BytesSize`: binary units (`KiB`, `MiB`...), as `docker info` shows memory.
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scaled(size, 1024.0, &BINARY);
    format!("{}{unit}", format_g(v, 4))
}

/// go-units `parseSize`: a number, an optional space, and an optional suffix `b`, `k`/`kb`/`kib`
/// ... `p`/`pb`/`pib` (any case), each prefix worth `base`^n. Go's error texts.
fn parse_size(s: &str, base: i64) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    // Rust's float syntax is Go's `strconv.ParseFloat` for the decimal forms (`1`, `1.5`, `.5`,
    // `1e3`, `+2`); Go's hexadecimal floats are not accepted here.
    let size: f64 = num.parse().ok().ok_or_else(|| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            crate::quote(num)
        )
    })?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    // Past i64's range Go's conversion is undefined (amd64 yields i64::MIN): refused here.
    let whole = |v: f64| {
        if v.is_finite() && v < i64::MAX as f64 {
            Ok(crate::trunc_i64(v))
        } else {
            Err(format!("invalid size: '{s}'"))
        }
    };
    if sfx.is_empty() {
        return whole(size);
    }
    let bad = || format!("invalid suffix: '{sfx}'");
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let mut chars = lower.chars();
    let first = chars.next().ok_or_else(bad)?;
    if first == 'b' {
        return if lower.len() == 1 {
            whole(size)
        } else {
            Err(bad())
        };
    }
    let power = match first {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        _ => return Err(bad()),
    };
    let rest = chars.as_str();
    if !(rest.is_empty() || rest == "b" || rest == "ib") {
        return Err(bad());
    }
    whole(size * (base as f64).powi(power))
}

/// go-units `RAMInBytes`: binary multiples (`64m` = 64 MiB), as `--memory`, `--shm-size` and
/// `max-size` take them.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    parse_size(s, 1024)
}

/// go-units `FromHumanSize`: decimal multiples (`1k` = 1000), as `--storage-opt size` takes them.
pub fn from_human_size(s: &str) -> Result<i64, String> {
    parse_size(s, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_as_go_units() {
        for (secs, s) in [
            (-5, "Less than a second"),
            (0, "Less than a second"),
            (1, "1 second"),
            (47, "47 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (13 * 86400, "13 days"),
            (14 * 86400, "2 weeks"),
            (59 * 86400, "8 weeks"),
            (60 * 86400, "2 months"),
            (89 * 86400, "2 months"),
            (729 * 86400, "24 months"),
            (730 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(secs), s, "{secs}");
        }
    }

    #[test]
    fn g_as_go() {
        for (v, p, s) in [
            (0.0, 3, "0"),
            (1.0, 3, "1"),
            (4.256, 3, "4.26"),
            (999.95, 3, "1e+03"),
            (999.4, 4, "999.4"),
            (12.0, 4, "12"),
            (0.00001234, 3, "1.23e-05"),
            (0.0001234, 3, "0.000123"),
            (123456.0, 3, "1.23e+05"),
        ] {
            assert_eq!(format_g(v, p), s, "{v} {p}");
        }
    }

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(4_256_000.0), "4.256MB");
        assert_eq!(human_size_prec(4_256_000.0, 3), "4.26MB");
        assert_eq!(human_size_prec(1.5e21, 3), "1.5ZB");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(24.0 * 1024.0 * 1024.0 * 1024.0), "24GiB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
    }

    #[test]
    fn ram_in_bytes_as_go_units() {
        for (s, n) in [
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 << 10),
            ("32K", 32 << 10),
            ("32kb", 32 << 10),
            ("32Kb", 32 << 10),
            ("32Kib", 32 << 10),
            ("32KIB", 32 << 10),
            ("32Mb", 32 << 20),
            ("32Gb", 32 << 30),
            ("32Tb", 32 << 40),
            ("8Pb", 8 << 50),
            ("32.3", 32),
            ("32.3 b", 32),
            ("32.3 K", 33075),
            ("0.3 K", 307),
            ("1.5g", 3 << 29),
            ("64m", 64 << 20),
        ] {
            assert_eq!(ram_in_bytes(s), Ok(n), "{s}");
        }
        for (s, e) in [
            ("", "invalid size: ''"),
            ("hello", "invalid size: 'hello'"),
            ("-32", "invalid size: '-32'"),
            ("32bm", "invalid suffix: 'bm'"),
            ("32kbb", "invalid suffix: 'kbb'"),
            ("32kbytes", "invalid suffix: 'kbytes'"),
            ("32x", "invalid suffix: 'x'"),
            ("32ki", "invalid suffix: 'ki'"),
            (
                "32 Kib x",
                "strconv.ParseFloat: parsing \"32 Kib\": invalid syntax",
            ),
        ] {
            assert_eq!(ram_in_bytes(s), Err(e.to_string()), "{s}");
        }
        assert!(ram_in_bytes(". ").is_err());
        assert!(ram_in_bytes("99999999999999999999999t").is_err());
        assert!(ram_in_bytes("1e400").is_err());
        assert!(ram_in_bytes("1..2k").is_err());
    }

    #[test]
    fn from_human_size_is_decimal() {
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(from_human_size("20"), Ok(20));
    }
}
