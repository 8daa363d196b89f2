//! Candidates that build the same matrices are evaluated once.
//!
//! Different edits can give bit-identical replacement matrices: on a 576 × 192 matrix, ρ = 0.01
//! and ρ = 0.005 both keep rank 1, and the gradient strategy's per-matrix choice of ρ (the best
//! predicted scores, equal for equal ranks) then scans one model twice — the default `adapt` on
//! the bundled task did, for 23 s of its scan. The scan remembers what each of its evaluations
//! replaced and gives a later candidate that replaces exactly the same (compared bit for bit, the
//! hash only finds the one to compare with) the same metrics an evaluation would.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use laser_model::Model;

use crate::edits::{Edit, EditEngine};
use crate::error::Result;
use crate::eval::Evaluated;

/// Replacement matrices, sorted by name (what [`EditEngine::replacements`] returns).
pub(super) type Replacements = [(String, Vec<f32>)];

/// A hash of replacement matrices: names and every value's bits.
pub(super) fn fingerprint(replacements: &Replacements) -> u64 {
    let mut h = DefaultHasher::new();
    for (name, data) in replacements {
        name.hash(&mut h);
        data.len().hash(&mut h);
        for x in data {
            x.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

/// The edit lists this process evaluated, by the fingerprint of their replacements.
#[derive(Debug, Default)]
pub(super) struct EvaluatedWeights {
    by_fingerprint: HashMap<u64, Vec<(Vec<Edit>, Evaluated)>>,
}

impl EvaluatedWeights {
    /// An evaluated edit list whose replacements equal `replacements` bit for bit, with its
    /// metrics (rebuilt through `engine` to compare: a hash match alone proves nothing). One that
    /// racing stopped stops the same: what stopped it (the base model or a candidate evaluated
    /// before it) was evaluated before this one too.
    pub(super) fn find(
        &self,
        engine: &mut EditEngine,
        model: &Model,
        fingerprint: u64,
        replacements: &Replacements,
    ) -> Result<Option<(Vec<Edit>, Evaluated)>> {
        let bits = |r: &Replacements| -> Vec<(String, Vec<u32>)> {
            r.iter().map(|(n, d)| (n.clone(), d.iter().map(|x| x.to_bits()).collect())).collect()
        };
        let wanted = bits(replacements);
        for (edits, done) in self.by_fingerprint.get(&fingerprint).into_iter().flatten() {
            if bits(&engine.replacements(model, edits)?) == wanted {
                return Ok(Some((edits.clone(), done.clone())));
            }
        }
        Ok(None)
    }

    /// Remembers that `edits`, whose replacements hash to `fingerprint`, scored `done`.
    pub(super) fn insert(&mut self, fingerprint: u64, edits: &[Edit], done: &Evaluated) {
        self.by_fingerprint.entry(fingerprint).or_default().push((edits.to_vec(), done.clone()));
    }
}
