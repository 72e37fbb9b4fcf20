//! Kubernetes resource quantities compared by value.
//!
//! The API server keeps the *spelling* of a quantity (`209715200` stays decimal, `200Mi`
//! stays binary) but several spellings name one value (`1000m`, `1`, `1.0`, `1e3m`), and it
//! rounds anything finer than a milli-unit *up* to `1m`. A fingerprint must therefore hold
//! the value, never the string. Values are exact integers of milli-units (`i128`), so no
//! floating point ever decides whether two quantities are equal.

use std::fmt;

use serde::{Serialize, Serializer};

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {0:?} is empty")]
    Empty(String),
    #[error("quantity {input:?} is malformed: {why}")]
    Malformed { input: String, why: &'static str },
    #[error("quantity {0:?} is outside the supported range (about ±1.7e35)")]
    OutOfRange(String),
}

/// A quantity's exact value in milli-units, rounded up (away from zero) to whole
/// milli-units as kube-apiserver does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    milli: i128,
}

/// Longest input accepted: far beyond anything the API server stores, short enough that
/// parsing is trivially bounded.
const MAX_LEN: usize = 128;

impl Quantity {
    pub const ZERO: Quantity = Quantity { milli: 0 };

    /// The value in milli-units.
    #[cfg(test)]
    pub fn milli(self) -> i128 {
        self.milli
    }

    /// Parses the full Kubernetes quantity grammar:
    /// `[+-]` digits with an optional `.` fraction, then one suffix out of binary
    /// (`Ki Mi Gi Ti Pi Ei`), decimal (`n u m "" k M G T P E`) or an exponent
    /// (`e`/`E` followed by a signed integer). As in the API server, an exponent takes no
    /// further suffix: `1e3m` is rejected.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let malformed = |why| QuantityError::Malformed {
            input: input.to_string(),
            why,
        };
        if input.is_empty() {
            return Err(QuantityError::Empty(input.to_string()));
        }
        if input.len() > MAX_LEN {
            return Err(malformed("longer than 128 characters"));
        }
        let bytes = input.as_bytes();
        let mut pos = 0;
        let negative = match bytes[0] {
            b'-' => {
                pos = 1;
                true
            }
            b'+' => {
                pos = 1;
                false
            }
            _ => false,
        };
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &input[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &input[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(malformed("no digits before the suffix"));
        }
        let suffix = &input[pos..];
        let scale = Scale::parse(suffix).ok_or_else(|| malformed("unknown suffix"))?;

        // value = mantissa / 10^frac_len * scale, in milli-units (×1000 = 10^3).
        let out_of_range = || QuantityError::OutOfRange(input.to_string());
        let mut mantissa: i128 = 0;
        for d in int_digits.bytes().chain(frac_digits.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(d - b'0')))
                .ok_or_else(out_of_range)?;
        }
        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| out_of_range())?;
        let (pow2, pow10) = match scale {
            Scale::Binary(p2) => (p2, 0),
            Scale::Decimal(p10) => (0, p10),
        };
        // Net power of ten after converting to milli-units and undoing the fraction.
        let exp10 = pow10 + 3 - frac_len;
        let numerator = mantissa
            .checked_mul(pow_i128(2, pow2).ok_or_else(out_of_range)?)
            .ok_or_else(out_of_range)?;
        let milli = if exp10 >= 0 {
            let factor = pow_i128(10, u32::try_from(exp10).map_err(|_| out_of_range())?);
            if numerator == 0 {
                0
            } else {
                numerator
                    .checked_mul(factor.ok_or_else(out_of_range)?)
                    .ok_or_else(out_of_range)?
            }
        } else {
            match u32::try_from(-exp10).ok().and_then(|e| pow_i128(10, e)) {
                Some(denominator) => {
                    let whole = numerator / denominator;
                    whole + i128::from(numerator % denominator != 0)
                }
                // The denominator exceeds any i128 numerator: 0 < value < 1m, rounds up.
                None => i128::from(numerator != 0),
            }
        };
        Ok(Quantity {
            milli: if negative { -milli } else { milli },
        })
    }
}

/// 2^10k for binary suffixes, 10^n for decimal suffixes and exponents.
#[derive(Debug, Clone, Copy)]
enum Scale {
    Binary(u32),
    Decimal(i64),
}

impl Scale {
    fn parse(suffix: &str) -> Option<Scale> {
        Some(match suffix {
            "" => Scale::Decimal(0),
            "n" => Scale::Decimal(-9),
            "u" => Scale::Decimal(-6),
            "m" => Scale::Decimal(-3),
            "k" => Scale::Decimal(3),
            "M" => Scale::Decimal(6),
            "G" => Scale::Decimal(9),
            "T" => Scale::Decimal(12),
            "P" => Scale::Decimal(15),
            "E" => Scale::Decimal(18),
            "Ki" => Scale::Binary(10),
            "Mi" => Scale::Binary(20),
            "Gi" => Scale::Binary(30),
            "Ti" => Scale::Binary(40),
            "Pi" => Scale::Binary(50),
            "Ei" => Scale::Binary(60),
            _ => {
                let rest = suffix.strip_prefix(['e', 'E'])?;
                let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
                if digits.is_empty()
                    || digits.len() > 6
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                Scale::Decimal(rest.parse().ok()?)
            }
        })
    }
}

fn pow_i128(base: i128, exp: u32) -> Option<i128> {
    base.checked_pow(exp)
}

impl fmt::Display for Quantity {
    /// One spelling per value: whole units without suffix, otherwise milli-units.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.milli % 1000 == 0 {
            write!(f, "{}", self.milli / 1000)
        } else {
            write!(f, "{}m", self.milli)
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> i128 {
        Quantity::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .milli()
    }

    #[test]
    fn spellings_of_one_value_agree() {
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1e-3"), q("1m"));
        assert_eq!(q("1.0"), q("1"));
        assert_eq!(q("200Mi"), q("209715200"));
        assert_eq!(q(".5"), 500);
        assert_eq!(q("5."), 5000);
        assert_eq!(q("+1"), 1000);
        assert_eq!(q("-1.5"), -1500);
        assert_eq!(q("1e+3"), 1_000_000);
        assert_eq!(q("1E"), 1_000_000_000_000_000_000_000);
        assert_eq!(q("1Ei"), (1i128 << 60) * 1000);
    }

    #[test]
    fn sub_milli_rounds_up_away_from_zero() {
        assert_eq!(q("0.0001"), 1);
        assert_eq!(q("100u"), 1);
        assert_eq!(q("1n"), 1);
        assert_eq!(q("1001u"), 2);
        assert_eq!(q("-1n"), -1);
        assert_eq!(q("3.14159"), 3142);
        assert_eq!(q("0.1Ki"), 102_400);
        assert_eq!(q(&format!("0.{}1", "0".repeat(60))), 1);
        assert_eq!(q("0n"), 0);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(Quantity::parse("1000m").unwrap().to_string(), "1");
        assert_eq!(Quantity::parse("1.5").unwrap().to_string(), "1500m");
        assert_eq!(Quantity::parse("1Ki").unwrap().to_string(), "1024");
    }

    #[test]
    fn invalid_inputs_are_errors_not_panics() {
        for bad in [
            "",
            " 1",
            "1 ",
            "abc",
            "1.2.3",
            "1x",
            "Ki",
            ".",
            "-",
            "+",
            "1e",
            "1e+",
            "1ee3",
            "1Kii",
            "1k1",
            "--1",
            "1e1000000",
            "1e99",
            "1.5e",
            "0x10",
            "1_000",
            "١",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            Quantity::parse(&"9".repeat(60)),
            Err(QuantityError::OutOfRange(_))
        ));
        assert!(Quantity::parse(&"1".repeat(200)).is_err());
    }
}
