//! Deterministic shards of a photo collection (issue 15): `locate --shard I/N` takes the photos
//! whose key hashes to `I` modulo `N`, so `N` workers of a Kubernetes Indexed Job or a Slurm job
//! array split an archive without talking to each other.
//!
//! A photo's shard depends on its own key only: the path relative to the folder it was found
//! under (the folder given on the command line), with `/` between components. Adding or
//! removing other photos never moves a photo to another shard, and the same archive mounted at
//! another place on another worker shards the same way. Changing `N` reshuffles everything (a
//! rendezvous of shards would not be cheaper to explain than that). Pure: no I/O.

use std::path::Path;

use sha2::{Digest as _, Sha256};

/// One of `count` shards, `index` counted from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a shard could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("a shard is I/N with 0 <= I < N (for example 0/4), not `{0}`")]
    Syntax(String),
    #[error("shard {index} of {count} does not exist: I counts from 0 to N - 1")]
    OutOfRange { index: u32, count: u32 },
    #[error(
        "--shards {count} needs the shard's index: --shard I/{count}, or JOB_COMPLETION_INDEX \
         (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm job array) in the environment"
    )]
    NoIndex { count: u32 },
    #[error("{variable}=`{value}` is not a shard index")]
    BadIndex {
        variable: &'static str,
        value: String,
    },
}

/// The environment variables a scheduler sets to a task's index, in the order they are read.
pub const INDEX_VARIABLES: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// `I/N`, as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count)
    }

    /// Shard `index` of `count`, the index from the first of [`INDEX_VARIABLES`] that `get`
    /// (the environment) has.
    pub fn from_env(count: u32, get: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        for variable in INDEX_VARIABLES {
            if let Some(value) = get(variable) {
                let index = value.trim().parse().map_err(|_| ShardError::BadIndex {
                    variable,
                    value: value.clone(),
                })?;
                return Self::new(index, count);
            }
        }
        Err(ShardError::NoIndex { count })
    }

    /// Whether the photo with this key (see [`key`]) is this shard's.
    pub fn contains(&self, key: &str) -> bool {
        let digest = Sha256::digest(key.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(head) % u64::from(self.count) == u64::from(self.index)
    }
}

/// A photo's shard key: its path relative to the first of `roots` it lies under (the folders
/// given on the command line), else the path as it is, with `/` between components.
pub fn key(path: &Path, roots: &[&Path]) -> String {
    let relative = roots
        .iter()
        .find_map(|root| path.strip_prefix(root).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(path);
    relative.to_string_lossy().replace('\\', "/")
}

/// The photos a manifest lists: one path a line, relative ones joined to `dir` (the manifest's
/// folder), empty lines and lines starting with `#` skipped, surrounding spaces trimmed.
pub fn manifest_paths(text: &str, dir: &Path) -> Vec<std::path::PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| dir.join(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn reads_shards_and_says_what_is_wrong() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 3 / 4 "), Ok(Shard { index: 3, count: 4 }));
        assert_eq!(
            Shard::parse("4/4"),
            Err(ShardError::OutOfRange { index: 4, count: 4 })
        );
        assert!(matches!(
            Shard::parse("1/0"),
            Err(ShardError::OutOfRange { .. })
        ));
        assert!(matches!(Shard::parse("1"), Err(ShardError::Syntax(_))));
        assert!(matches!(Shard::parse("a/4"), Err(ShardError::Syntax(_))));
        assert!(matches!(Shard::parse("-1/4"), Err(ShardError::Syntax(_))));
    }

    #[test]
    fn the_index_comes_from_kubernetes_or_slurm() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            Shard::from_env(8, env(&[("JOB_COMPLETION_INDEX", "5")])),
            Ok(Shard { index: 5, count: 8 })
        );
        assert_eq!(
            Shard::from_env(8, env(&[("SLURM_ARRAY_TASK_ID", "7")])),
            Ok(Shard { index: 7, count: 8 })
        );
        // Kubernetes first when both are set.
        assert_eq!(
            Shard::from_env(
                8,
                env(&[("SLURM_ARRAY_TASK_ID", "7"), ("JOB_COMPLETION_INDEX", "2")])
            ),
            Ok(Shard { index: 2, count: 8 })
        );
        assert_eq!(
            Shard::from_env(8, env(&[])),
            Err(ShardError::NoIndex { count: 8 })
        );
        assert!(matches!(
            Shard::from_env(8, env(&[("SLURM_ARRAY_TASK_ID", "x")])),
            Err(ShardError::BadIndex { .. })
        ));
        assert!(matches!(
            Shard::from_env(8, env(&[("JOB_COMPLETION_INDEX", "8")])),
            Err(ShardError::OutOfRange { .. })
        ));
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("2019/trip-{}/IMG_{i:04}.JPG", i % 7))
            .collect()
    }

    #[test]
    fn every_photo_is_in_exactly_one_shard_and_they_are_even() {
        let count = 4;
        let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
        let keys = keys(2000);
        let mut sizes = [0usize; 4];
        for key in &keys {
            let owners: Vec<usize> = (0..4).filter(|&i| shards[i].contains(key)).collect();
            assert_eq!(owners.len(), 1, "{key}: {owners:?}");
            sizes[owners[0]] += 1;
        }
        // 500 each on average; a hash split stays well within 20 %.
        assert!(sizes.iter().all(|&s| (400..=600).contains(&s)), "{sizes:?}");
    }

    #[test]
    fn manifests_list_one_photo_a_line_keyed_by_the_line() {
        let dir = Path::new("/mnt/archive/lists");
        let paths = manifest_paths("# 2019\n a/IMG_1.JPG \n\n/abs/IMG_2.JPG\r\n", dir);
        assert_eq!(
            paths,
            vec![
                PathBuf::from("/mnt/archive/lists/a/IMG_1.JPG"),
                PathBuf::from("/abs/IMG_2.JPG")
            ]
        );
        assert_eq!(key(&paths[0], &[dir]), "a/IMG_1.JPG");
    }

    #[test]
    fn a_photo_keeps_its_shard_when_others_are_added_or_the_archive_moves() {
        let shard = Shard::new(1, 3).unwrap();
        let before: Vec<bool> = keys(100).iter().map(|k| shard.contains(k)).collect();
        // More photos: the first 100 are where they were.
        let after: Vec<bool> = keys(300)
            .iter()
            .take(100)
            .map(|k| shard.contains(k))
            .collect();
        assert_eq!(before, after);
        // The same archive under two mount points gives the same keys.
        let photo = |root: &str| PathBuf::from(root).join("2019").join("IMG_0001.JPG");
        let a = key(&photo("/mnt/archive"), &[Path::new("/mnt/archive")]);
        let b = key(&photo("/data/photos"), &[Path::new("/data/photos")]);
        assert_eq!(a, "2019/IMG_0001.JPG");
        assert_eq!(a, b);
        // A file given directly (not under a folder given) keys by its path.
        assert_eq!(
            key(Path::new("/x/y.jpg"), &[Path::new("/x/y.jpg")]),
            "/x/y.jpg"
        );
    }
}
