//! The CLI's own flag value types (`--layers`, `--rhos-per-matrix`), typed at parse time: a bad
//! value is refused by clap with the flag's name before any command runs.

use std::str::FromStr;

/// An inclusive layer range (`--layers A-B` or `A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerRange {
    pub first: usize,
    pub last: usize,
}

impl FromStr for LayerRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{s}` is not A-B or A with non-negative integers"))
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(s)?, parse(s)?),
        };
        if first > last {
            return Err(format!("the range `{s}` is empty"));
        }
        Ok(Self { first, last })
    }
}

/// `--rhos-per-matrix N|all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RhosPerMatrix {
    Best(usize),
    All,
}

impl FromStr for RhosPerMatrix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            _ => match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Self::Best(n)),
                _ => Err(format!("expected a count ≥ 1 or `all`, got `{s}`")),
            },
        }
    }
}
