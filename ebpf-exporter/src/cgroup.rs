//! Cgroups: the cgroup v2 id the BPF programs report is the inode number
//! of the cgroup's directory; this module maps it back to a path and parses
//! the container id and Kubernetes pod uid out of that path.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones (from /proc/self/mountinfo).
pub fn cgroup2_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in info.lines() {
        // "... mount_point options - fstype source superopts"
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next() == Some("cgroup2") {
            return left.split_whitespace().nth(4).map(PathBuf::from);
        }
    }
    None
}

/// Resolves cgroup ids to paths relative to the cgroup2 root, rescanning
/// the tree (bounded) at most once a second when an id is unknown.
pub struct Resolver {
    root: Option<PathBuf>,
    by_id: HashMap<u64, String>,
    last_scan: Option<Instant>,
}

const MAX_CGROUPS: usize = 100_000;

impl Resolver {
    /// `root`: the cgroup v2 mount to walk; `None`: the first cgroup2
    /// mount in /proc/self/mountinfo.
    pub fn new(root: Option<PathBuf>) -> Self {
        let mut r = Resolver {
            root: root.or_else(cgroup2_root),
            by_id: HashMap::new(),
            last_scan: None,
        };
        r.scan();
        r
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some(root) = self.root.clone() else {
            return;
        };
        self.by_id.clear();
        let mut stack = vec![(root.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            if self.by_id.len() >= MAX_CGROUPS {
                break;
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let rel = dir.strip_prefix(&root).unwrap_or(Path::new(""));
            self.by_id
                .insert(meta.ino(), format!("/{}", rel.to_string_lossy()));
            if depth >= 16 {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push((e.path(), depth + 1));
                    }
                }
            }
        }
    }

    /// The path of cgroup `id`, e.g. `/kubepods.slice/.../cri-containerd-<id>.scope`.
    pub fn path(&mut self, id: u64) -> Option<String> {
        if let Some(p) = self.by_id.get(&id) {
            return Some(p.clone());
        }
        if self
            .last_scan
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            self.scan();
        }
        self.by_id.get(&id).cloned()
    }

    /// The id of a cgroup given by path (absolute, or relative to the root).
    pub fn id_of(&self, path: &str) -> Option<u64> {
        let p = Path::new(path);
        let full = if p.is_absolute() && p.exists() {
            p.to_path_buf()
        } else {
            self.root.as_ref()?.join(path.trim_start_matches('/'))
        };
        std::fs::metadata(full).ok().map(|m| m.ino())
    }
}

/// Container id and Kubernetes pod uid from a cgroup path, for the layouts
/// of the systemd and cgroupfs drivers of containerd, CRI-O and Docker:
/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/cri-containerd-<64 hex>.scope`,
/// `/kubepods/besteffort/pod<uid>/<64 hex>`, `/system.slice/docker-<64 hex>.scope`, `/docker/<64 hex>`.
pub fn parse_ids(path: &str) -> (Option<String>, Option<String>) {
    let mut container = None;
    let mut pod = None;
    for seg in path.split('/') {
        let seg = seg
            .strip_suffix(".scope")
            .or_else(|| seg.strip_suffix(".slice"))
            .unwrap_or(seg);
        if let Some(i) = seg.rfind("pod") {
            let uid = seg[i + 3..].replace('_', "-");
            if is_uuid(&uid) {
                pod = Some(uid);
            }
        }
        let tail = seg.rsplit(['-', ':']).next().unwrap_or(seg);
        if tail.len() == 64 && tail.bytes().all(|b| b.is_ascii_hexdigit()) {
            container = Some(tail.to_string());
        }
    }
    (container, pod)
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "3f1c9f0e5b2a4d6c8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";

    #[test]
    fn systemd_driver_containerd() {
        let p = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_4a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-{CID}.scope"
        );
        let (c, pod) = parse_ids(&p);
        assert_eq!(c.as_deref(), Some(CID));
        assert_eq!(pod.as_deref(), Some("1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"));
    }

    #[test]
    fn cgroupfs_driver_and_docker() {
        let p = format!("/kubepods/besteffort/pod1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d/{CID}");
        let (c, pod) = parse_ids(&p);
        assert_eq!(c.as_deref(), Some(CID));
        assert_eq!(pod.as_deref(), Some("1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"));
        assert_eq!(
            parse_ids(&format!("/system.slice/docker-{CID}.scope")),
            (Some(CID.to_string()), None)
        );
        assert_eq!(
            parse_ids(&format!("/system.slice/crio-conmon-{CID}.scope"))
                .0
                .as_deref(),
            Some(CID)
        );
        assert_eq!(
            parse_ids("/user.slice/user-0.slice/session-1.scope"),
            (None, None)
        );
        assert_eq!(parse_ids("/"), (None, None));
    }
}
