//! Keyword options → [`SearchConfig`]: the CLI's flags in snake case with Python values
//! (`strategy="gradient"`, `rho=[0.1, 0.01]`, `factor=["svd", "blocks:4"]`, `layers="20-29"`).
//! One table drives the names, the parsing and the list of known options in errors.

use std::path::PathBuf;
use std::str::FromStr;

use laser_search::{SearchConfig, Strategy};
use serde_json::Value;

/// Sets one option from its Python value, or says what was expected.
type Setter = fn(&mut SearchConfig, &Value) -> Result<(), String>;

/// Every search option: its name and its setter.
const OPTIONS: &[(&str, Setter)] = &[
    ("strategy", |c, v| parse_one(v).map(|x| c.strategy = x)),
    ("n", |c, v| count(v).map(|x| c.n = x)),
    ("seed", |c, v| integer(v).map(|x| c.seed = x)),
    ("top_k", |c, v| count(v).map(|x| c.top_k = x)),
    ("rhos_per_matrix", |c, v| match v {
        Value::String(s) if s == "all" => {
            c.rhos_per_matrix = None;
            Ok(())
        }
        _ => count(v).map(|x| c.rhos_per_matrix = Some(x)),
    }),
    ("rho", |c, v| {
        let rhos = list(v, |x| x.as_f64().map(|f| f as f32).ok_or("a number"))?;
        if rhos.is_empty() {
            return Err("at least one kept-rank fraction".into());
        }
        if let Some(bad) = rhos.iter().find(|x| !(**x > 0.0 && **x <= 1.0)) {
            return Err(format!("kept-rank fractions in (0, 1], not {bad}"));
        }
        c.rhos = rhos;
        Ok(())
    }),
    ("factor", |c, v| list(v, parse_one).map(|x| c.factors = x)),
    ("layers", |c, v| layers(v).map(|x| c.layers = x)),
    ("kinds", |c, v| {
        // "fc_out,q" as the CLI takes it, or a list.
        let kinds = match v {
            Value::String(s) => s.split(',').map(|k| k.trim().parse()).collect(),
            _ => list(v, parse_one),
        }?;
        c.kinds = Some(kinds);
        Ok(())
    }),
    ("score", |c, v| parse_one(v).map(|x| c.score = x)),
    ("grad_groups", |c, v| count(v).map(|x| c.grad_groups = x)),
    ("select", |c, v| parse_one(v).map(|x| c.select = x)),
    ("compare_rules", |c, v| boolean(v).map(|x| c.compare_rules = x)),
    ("race", |c, v| parse_one(v).map(|x| c.race = x)),
    ("race_block", |c, v| count(v).map(|x| c.race_block = x)),
    ("test_max", |c, v| optional(v, count).map(|x| c.test_max = x)),
    ("truncate", |c, v| optional(v, parse_one).map(|x| c.truncate = x)),
    ("ranking", |c, v| optional(v, |v| text(v).map(PathBuf::from)).map(|x| c.ranking_file = x)),
    ("batch_tokens", |c, v| count(v).map(|x| c.batch_tokens = x)),
    ("drop_ill_posed", |c, v| boolean(v).map(|x| c.load.drop_ill_posed = x)),
];

/// The names [`search_config`] takes.
pub fn names() -> Vec<&'static str> {
    OPTIONS.iter().map(|(name, _)| *name).collect()
}

/// A configuration from `options` (a JSON object of Python keyword arguments) over the library's
/// defaults, the strategy defaulting to `gradient`. An unknown name or a bad value is an error
/// naming it and what it takes.
pub fn search_config(options: &Value) -> Result<SearchConfig, String> {
    let mut cfg = SearchConfig { strategy: Strategy::Gradient, ..SearchConfig::default() };
    let Value::Object(map) = options else {
        return Err("options must be keyword arguments".into());
    };
    for (name, value) in map {
        let Some((_, set)) = OPTIONS.iter().find(|(n, _)| n == name) else {
            return Err(format!("unknown option `{name}` (known: {})", names().join(", ")));
        };
        set(&mut cfg, value)
            .map_err(|want| format!("option `{name}`: expected {want}, got {value}"))?;
    }
    Ok(cfg)
}

fn text(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| "a string".into())
}

fn parse_one<T: FromStr<Err: std::fmt::Display>>(v: &Value) -> Result<T, String> {
    text(v)?.parse().map_err(|e: T::Err| e.to_string())
}

fn integer(v: &Value) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| "a non-negative integer".into())
}

fn count(v: &Value) -> Result<usize, String> {
    match v.as_u64() {
        Some(n) if n >= 1 => usize::try_from(n).map_err(|_| "a smaller count".into()),
        _ => Err("a positive integer".into()),
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| "True or False".into())
}

fn optional<T>(v: &Value, f: impl Fn(&Value) -> Result<T, String>) -> Result<Option<T>, String> {
    if v.is_null() { Ok(None) } else { f(v).map(Some) }
}

/// One value or a list of them.
fn list<T, E: std::fmt::Display>(
    v: &Value,
    f: impl Fn(&Value) -> Result<T, E>,
) -> Result<Vec<T>, String> {
    match v {
        Value::Array(xs) => xs.iter().map(|x| f(x).map_err(|e| e.to_string())).collect(),
        one => f(one).map(|x| vec![x]).map_err(|e| e.to_string()),
    }
}

/// `"20-29"`, `"5"`, `5` or `[20, 29]`: an inclusive range.
fn layers(v: &Value) -> Result<Option<(usize, usize)>, String> {
    let want = || "a layer range \"A-B\", a layer, or [A, B]".to_owned();
    let bound = |x: &Value| x.as_u64().map(|n| n as usize).ok_or_else(want);
    let (first, last) = match v {
        Value::Null => return Ok(None),
        Value::Number(_) => (bound(v)?, bound(v)?),
        Value::Array(xs) if xs.len() == 2 => (bound(&xs[0])?, bound(&xs[1])?),
        Value::String(s) => {
            let parse = |x: &str| x.trim().parse::<usize>().map_err(|_| want());
            match s.split_once('-') {
                Some((a, b)) => (parse(a)?, parse(b)?),
                None => (parse(s)?, parse(s)?),
            }
        }
        _ => return Err(want()),
    };
    if first > last {
        return Err(format!("a non-empty range, not {first}-{last}"));
    }
    Ok(Some((first, last)))
}
