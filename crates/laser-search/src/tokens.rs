//! Item text as token ids the way the model sees it (a causal prompt with the tokenizer's BOS),
//! refusing text that tokenizes to nothing, and answers normalised for comparison.

use laser_model::Tokenizer;

use crate::error::{Result, SearchError};

/// Lower-cases, strips punctuation and articles, and collapses whitespace (SQuAD-style), so that
/// "The Beatles." and "the beatles" match.
pub fn normalise_answer(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn encode(tok: &Tokenizer, text: &str, item: usize, what: &str) -> Result<Vec<u32>> {
    let ids = tok.encode(text)?;
    if ids.is_empty() {
        return Err(SearchError::Config(format!(
            "item {item}: the {what} {text:?} tokenizes to nothing"
        )));
    }
    Ok(ids)
}

/// A causal prompt as the family's tokenizer presents it (its BOS first, when it has one).
pub(crate) fn encode_prompt(tok: &Tokenizer, text: &str, item: usize) -> Result<Vec<u32>> {
    let ids = tok.encode_prompt(text)?;
    if ids.is_empty() {
        return Err(SearchError::Config(format!(
            "item {item}: the prompt {text:?} tokenizes to nothing"
        )));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_normalise_like_squad() {
        assert_eq!(normalise_answer("The Beatles."), "beatles");
        assert_eq!(normalise_answer("  New   York-City "), "new york city");
        assert_eq!(normalise_answer("An"), "");
    }
}
