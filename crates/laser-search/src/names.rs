//! Serde by stable name for the option types other crates own (`TruncationScore`,
//! `MatrixKind`): written as their `Display`, read back through their `FromStr`, so a recorded
//! search configuration reads like the flags that made it.

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serializer, de::Error};

/// One value.
pub mod one {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err = String>,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// An optional list.
pub mod some_list {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(
        v: &Option<Vec<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(list) => s.collect_seq(list.iter().map(ToString::to_string)),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Vec<T>>, D::Error>
    where
        T: FromStr<Err = String>,
        D: Deserializer<'de>,
    {
        Option::<Vec<String>>::deserialize(d)?
            .map(|list| list.iter().map(|x| x.parse().map_err(D::Error::custom)).collect())
            .transpose()
    }
}
