//! One writer per output folder: a lock file holding the process id and host, made
//! atomically before anything is written and removed when the command ends (also
//! on errors: the lock is released when [`FolderLock`] is dropped).
//!
//! A lock whose process is gone (same host, no such process) is taken over with a
//! one-line note; a lock from another host is never taken over (its process cannot
//! be checked from here).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The lock file of a fit folder (also taken by `merge`, `plot` and `demo`).
pub const FOLDER_LOCK: &str = ".sustain.lock";

/// A held lock; dropping it removes the lock file.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

/// Who holds a lock, as written in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    host: String,
}

impl Holder {
    fn me() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
        }
    }

    fn text(&self) -> String {
        format!("pid {}\nhost {}\n", self.pid, self.host)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut pid = None;
        let mut host = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("pid ") {
                pid = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("host ") {
                host = Some(v.trim().to_string());
            }
        }
        Some(Self {
            pid: pid?,
            host: host?,
        })
    }
}

impl FolderLock {
    /// Takes the lock `dir/name` for the folder `dir` (which must exist). Errors:
    /// "DIR is in use by process N on HOST", or the lock cannot be made.
    pub fn take(dir: &Path, name: &str) -> Result<Self, CliError> {
        let path = dir.join(name);
        let me = Holder::me();
        for _ in 0..3 {
            match create_with(&path, &me.text()) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(CliError::new(format!(
                        "cannot lock {} (lock file {}): {e}",
                        dir.display(),
                        path.display()
                    )))
                }
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Some(holder) = Holder::parse(&text) else {
                if !path.exists() {
                    continue; // released meanwhile
                }
                return Err(CliError::new(format!(
                    "{} is locked by {}, which does not say which process holds it; delete it if no sustain command runs in {}",
                    dir.display(),
                    path.display(),
                    dir.display()
                )));
            };
            if holder.host != me.host || process_alive(holder.pid) {
                return Err(CliError::new(format!(
                    "{} is in use by process {} on {} (lock file {}); wait for it to end, or use another folder",
                    dir.display(),
                    holder.pid,
                    holder.host,
                    path.display()
                )));
            }
            // The holder is gone: take the lock over, unless another process did so
            // meanwhile (then its lock is left alone and the next round sees it).
            if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
                let _ = std::fs::remove_file(&path);
                crate::bars::eprint_line(&format!(
                    "note: taking over the lock of {} left by process {}, which has ended",
                    dir.display(),
                    holder.pid
                ));
            }
        }
        Err(CliError::new(format!(
            "cannot lock {}: {} keeps changing; is another sustain command starting there?",
            dir.display(),
            path.display()
        )))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Only our own lock is removed (a takeover after a stale detection could in
        // principle have replaced it).
        let mine = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| Holder::parse(&t))
            .is_some_and(|h| h == Holder::me());
        if mine {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Makes `path` holding `text`, failing with `AlreadyExists` if it exists. The text
/// is written to a temporary file first and hard-linked into place, so the lock
/// never exists without its holder; where links are not supported, the file is
/// made with `create_new` and written.
fn create_with(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.{}-0.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            f.write_all(text.as_bytes())
        }
        other => other,
    }
}

/// This machine's name (for lock files); "unknown" when it cannot be read.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Whether process `pid` runs on this machine. Where that cannot be told (no
/// /proc), every process counts as running, so no lock is taken over wrongly.
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// The process id in the name of a temporary file written by this program:
/// `.NAME.PID-N.tmp` (outputs), `.NAME.PID-N.tmp.EXT` (figures), `.NAME.tmpPID`
/// (checkpoints), `NAME.PID-N.tmp` (lock files).
pub fn temp_file_pid(name: &str) -> Option<u32> {
    let pid_of = |stem: &str| {
        let (_, pid_n) = stem.rsplit_once('.')?;
        let (pid, n) = pid_n.split_once('-')?;
        n.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
        pid.parse().ok()
    };
    if let Some(stem) = name.strip_suffix(".tmp") {
        return pid_of(stem);
    }
    if let Some((stem, ext)) = name.rsplit_once(".tmp.") {
        if !ext.contains('.') {
            return pid_of(stem);
        }
    }
    let (stem, pid) = name.rsplit_once(".tmp")?;
    if stem.starts_with('.') && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
        return pid.parse().ok();
    }
    None
}

/// Removes the temporary files in `dir` (whose names start with `prefix`) left by
/// other processes that have ended; with the folder's lock held, no running process
/// writes them. Returns how many were removed.
pub fn remove_dead_temps(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(prefix) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(pid) = temp_file_pid(name) else {
            continue;
        };
        if pid != std::process::id()
            && !process_alive(pid)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_give_their_process() {
        assert_eq!(temp_file_pid(".results.json.123-4.tmp"), Some(123));
        assert_eq!(temp_file_pid(".trace_k3.png.77-0.tmp.png"), Some(77));
        assert_eq!(temp_file_pid(".checkpoint_k2.json.tmp991"), Some(991));
        assert_eq!(temp_file_pid(".sustain.lock.5-0.tmp"), Some(5));
        assert_eq!(temp_file_pid("results.json"), None);
        assert_eq!(temp_file_pid("data.tmp"), None);
        assert_eq!(temp_file_pid("my.tmp.csv"), None);
        assert_eq!(temp_file_pid("notes.tmp123"), None);
    }

    #[test]
    fn a_second_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FolderLock::take(dir.path(), FOLDER_LOCK).unwrap();
        let text = std::fs::read_to_string(dir.path().join(FOLDER_LOCK)).unwrap();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        let e = FolderLock::take(dir.path(), FOLDER_LOCK)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is in use by process") && e.contains(&host_name()),
            "{e}"
        );
        drop(lock);
        assert!(!dir.path().join(FOLDER_LOCK).exists());
        let only: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(only.is_empty(), "files left: {only:?}");
    }

    #[test]
    fn stale_locks_are_taken_over_and_other_hosts_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FOLDER_LOCK);
        // A process id above the kernel's largest: certainly not running.
        let gone = Holder {
            pid: 4_194_304 + 7,
            host: host_name(),
        };
        std::fs::write(&path, gone.text()).unwrap();
        let lock = FolderLock::take(dir.path(), FOLDER_LOCK).unwrap();
        drop(lock);
        let elsewhere = Holder {
            pid: 4_194_304 + 7,
            host: format!("{}-elsewhere", host_name()),
        };
        std::fs::write(&path, elsewhere.text()).unwrap();
        let e = FolderLock::take(dir.path(), FOLDER_LOCK)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-elsewhere"), "{e}");
    }

    #[test]
    fn dead_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dead = 4_194_304 + 9;
        let names = [
            format!(".results.json.{dead}-0.tmp"),
            format!(".pvd_k1.png.{dead}-3.tmp.png"),
            format!(".checkpoint_k1.json.tmp{dead}"),
            format!(".results.json.{}-0.tmp", std::process::id()),
            "results.json".to_string(),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        assert_eq!(remove_dead_temps(dir.path(), ""), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [names[3].clone(), names[4].clone()]);
    }
}
