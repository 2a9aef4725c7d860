//! Kubernetes resource quantities (`100m`, `128Mi`, `1.5`, `2e3`), checked against the
//! grammar of apimachinery's resource.Quantity so a typo fails here, not at apply time.

/// The value of a non-negative quantity, close enough to compare a request with a limit;
/// `Err` says why the text is not one.
pub fn parse(text: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "{text:?} is not a quantity: a number with an optional suffix \
             (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>), e.g. 250m, 128Mi, 1.5"
        )
    };
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    let number_len = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);
    if !is_number(number) {
        return Err(bad());
    }
    let mantissa: f64 = number.parse().map_err(|_| bad())?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 2f64.powi(10),
        "Mi" => 2f64.powi(20),
        "Gi" => 2f64.powi(30),
        "Ti" => 2f64.powi(40),
        "Pi" => 2f64.powi(50),
        "Ei" => 2f64.powi(60),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E']).ok_or_else(bad)?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            10f64.powi(digits.parse::<i32>().map_err(|_| bad())?)
        }
    };
    Ok(mantissa * scale)
}

/// `<digits> | <digits>.<digits> | <digits>. | .<digits>`
fn is_number(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !(whole.is_empty() && fraction.is_empty()) && all_digits(whole) && all_digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar() {
        for (text, value) in [
            ("100m", 0.1),
            ("128Mi", 134_217_728.0),
            ("1.5", 1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("+2", 2.0),
            ("2e3", 2000.0),
            ("2E-3", 0.002),
            ("1Gi", 1_073_741_824.0),
            ("0", 0.0),
            ("1k", 1000.0),
        ] {
            assert_eq!(parse(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        for text in [
            "", "m", "100 m", "1.2.3", "10MB", "1mi", "ten", "1e", "1e+", ".", "1Ki2", "0x10",
        ] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
        assert!(parse("-1").unwrap_err().contains("negative"));
    }
}
