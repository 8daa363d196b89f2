//! Which shard this process is: `--shard I/N`, else the array-job engine's environment —
//! Slurm job arrays, Kubernetes Indexed Jobs, AWS Batch array jobs. Engines number from 0 (or,
//! on Slurm, from the array's first index); shards are one-based. A half-specified environment
//! is an error, never a silent single shard.

use laser_search::Shard;

use crate::exit::usage;

/// The variable giving the shard count where the engine does not (Kubernetes; AWS Batch when
/// the job definition does not set `AWS_BATCH_JOB_ARRAY_SIZE`).
pub const NUM_SHARDS_VAR: &str = "LASER_NUM_SHARDS";

const SLURM: [&str; 3] = ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"];
const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
const AWS_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";
const AWS_SIZE: &str = "AWS_BATCH_JOB_ARRAY_SIZE";

/// The shard to run: `flag` when given, else from `env` (a variable lookup), else none.
pub fn shard_from(
    flag: Option<Shard>,
    num_shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Shard>> {
    if let Some(shard) = flag {
        if num_shards.is_some() {
            return Err(usage(
                "--num-shards goes with an engine's index variable; --shard I/N already gives N",
            ));
        }
        return Ok(Some(shard));
    }
    let number = |name: &str| -> anyhow::Result<Option<usize>> {
        match env(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| usage(format!("{name}={v:?} is not a non-negative integer"))),
        }
    };
    let count_from_flag_or_var = |engine: &str| -> anyhow::Result<usize> {
        match num_shards {
            Some(n) => Ok(n),
            None => number(NUM_SHARDS_VAR)?.ok_or_else(|| {
                usage(format!(
                    "{engine} gives this process's index but not the number of shards: pass --num-shards N or set {NUM_SHARDS_VAR}"
                ))
            }),
        }
    };
    let slurm_set: Vec<&str> = SLURM.iter().copied().filter(|v| env(v).is_some()).collect();
    let engines = [!slurm_set.is_empty(), env(K8S_INDEX).is_some(), env(AWS_INDEX).is_some()];
    if engines.iter().filter(|&&on| on).count() > 1 {
        return Err(usage(
            "the environment names shard indices of more than one engine (Slurm, Kubernetes, AWS Batch); pass --shard I/N",
        ));
    }
    let (zero_based, count, what) = if !slurm_set.is_empty() {
        if slurm_set.len() < SLURM.len() {
            let missing: Vec<&str> =
                SLURM.iter().copied().filter(|v| !slurm_set.contains(v)).collect();
            return Err(usage(format!(
                "a Slurm array job's environment is incomplete: {} set but {} missing; pass --shard I/N",
                slurm_set.join(", "),
                missing.join(", ")
            )));
        }
        let id = number(SLURM[0])?.unwrap_or(0);
        let min = number(SLURM[2])?.unwrap_or(0);
        let zero_based = id.checked_sub(min).ok_or_else(|| {
            usage(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))
        })?;
        (zero_based, number(SLURM[1])?.unwrap_or(0), "the Slurm array")
    } else if let Some(index) = number(K8S_INDEX)? {
        (index, count_from_flag_or_var("Kubernetes (JOB_COMPLETION_INDEX)")?, "the Indexed Job")
    } else if let Some(index) = number(AWS_INDEX)? {
        let count = match number(AWS_SIZE)? {
            Some(n) => n,
            None => count_from_flag_or_var("AWS Batch (AWS_BATCH_JOB_ARRAY_INDEX)")?,
        };
        (index, count, "the AWS Batch array")
    } else {
        if num_shards.is_some() {
            return Err(usage(
                "--num-shards needs an engine's index (JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX); or pass --shard I/N",
            ));
        }
        if env(NUM_SHARDS_VAR).is_some() || env(AWS_SIZE).is_some() {
            return Err(usage(format!(
                "{NUM_SHARDS_VAR} or {AWS_SIZE} is set but no shard index is; pass --shard I/N or unset it"
            )));
        }
        return Ok(None);
    };
    Shard::new(zero_based + 1, count).map(Some).map_err(|_| {
        usage(format!(
            "{what} puts this process at index {zero_based} of {count} shards, which is not a shard"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn shard(vars: &[(&str, &str)], num: Option<usize>) -> anyhow::Result<Option<(usize, usize)>> {
        Ok(shard_from(None, num, &with(vars))?.map(|s| (s.index(), s.count())))
    }

    #[test]
    fn each_engine_maps_its_index_to_a_one_based_shard() {
        // A Slurm array --array=5-7: indices 5, 6, 7 are shards 1, 2, 3.
        let slurm = |id| {
            [
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "5"),
            ]
        };
        assert_eq!(shard(&slurm("5"), None).unwrap(), Some((1, 3)));
        assert_eq!(shard(&slurm("7"), None).unwrap(), Some((3, 3)));
        assert_eq!(shard(&[("JOB_COMPLETION_INDEX", "0")], Some(4)).unwrap(), Some((1, 4)));
        assert_eq!(
            shard(&[("JOB_COMPLETION_INDEX", "3"), (NUM_SHARDS_VAR, "4")], None).unwrap(),
            Some((4, 4))
        );
        assert_eq!(shard(&[(AWS_INDEX, "1"), (AWS_SIZE, "2")], None).unwrap(), Some((2, 2)));
        assert_eq!(shard(&[], None).unwrap(), None);
        // The flag wins over the environment.
        let flag = Some(Shard::new(2, 5).unwrap());
        assert_eq!(shard_from(flag, None, &with(&slurm("5"))).unwrap(), flag);
    }

    #[test]
    fn half_specified_environments_are_errors() {
        for (vars, num) in [
            (vec![("SLURM_ARRAY_TASK_ID", "3")], None),
            (vec![("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")], None),
            (vec![("JOB_COMPLETION_INDEX", "0")], None),
            (vec![(AWS_INDEX, "0")], None),
            (vec![(AWS_SIZE, "4")], None),
            (vec![(NUM_SHARDS_VAR, "4")], None),
            (vec![], Some(4)),
            (vec![("JOB_COMPLETION_INDEX", "4")], Some(4)), // index past the count
            (vec![("JOB_COMPLETION_INDEX", "x")], Some(4)),
            (vec![("JOB_COMPLETION_INDEX", "0"), (AWS_INDEX, "0"), (AWS_SIZE, "2")], Some(2)),
        ] {
            assert!(shard(&vars, num).is_err(), "{vars:?} {num:?} accepted");
        }
    }
}
