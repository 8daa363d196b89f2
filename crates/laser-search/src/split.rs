//! Selection / test splits: a seeded shuffle, the first N items select, the rest test. Nothing a
//! strategy chooses may look at the test split.

use laser_linalg::rng::SplitMix64;

use crate::error::{Result, SearchError};
use crate::task::{Item, Task};

/// Item indices of the two splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The first `n` after the shuffle.
    pub select: Vec<usize>,
    /// Everything else (may be empty when the task has exactly `n` items).
    pub test: Vec<usize>,
}

impl Split {
    /// Fisher–Yates shuffle with a seeded SplitMix64, then cut at `n`.
    pub fn new(items: usize, n: usize, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(SearchError::option("n", "the selection split needs at least one item"));
        }
        if n > items {
            return Err(SearchError::option("n", format!("{n} exceeds the task's {items} items")));
        }
        let mut order: Vec<usize> = (0..items).collect();
        let mut rng = SplitMix64::new(seed);
        for i in (1..items).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
        let test = order.split_off(n);
        Ok(Self { select: order, test })
    }

    /// The items of a split.
    pub fn items(task: &Task, indices: &[usize]) -> Vec<Item> {
        indices.iter().map(|&i| task.items[i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_partition_the_items_deterministically() {
        let a = Split::new(50, 10, 7).unwrap();
        assert_eq!(a, Split::new(50, 10, 7).unwrap());
        assert_ne!(a, Split::new(50, 10, 8).unwrap());
        let mut all: Vec<usize> = a.select.iter().chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!(a.select.len(), 10);
        assert!(Split::new(5, 6, 0).is_err() && Split::new(5, 0, 0).is_err());
        assert!(Split::new(5, 5, 0).unwrap().test.is_empty());
    }
}
