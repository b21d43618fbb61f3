//! What a command may write over: never a file it reads, a finished fit, or a file
//! it did not make itself, unless `--force` says so.
//!
//! Paths are compared after resolving links and `..` (see [`resolved`]), so
//! `--out ./x/../data.csv` or a link to the input is recognised as the input.

use std::path::{Component, Path, PathBuf};

use crate::error::CliError;

/// `path` with links and `..` resolved: the file itself when it exists, otherwise its
/// nearest existing ancestor resolved and the rest appended (with `.` and `..`
/// applied lexically), so a file that does not exist yet compares too.
pub fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut base = absolute.as_path();
    loop {
        if let Ok(p) = std::fs::canonicalize(base) {
            let mut out = p;
            for c in rest.iter().rev() {
                push_component(&mut out, *c);
            }
            return out;
        }
        match (base.parent(), base.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                base = parent;
            }
            _ => return absolute,
        }
    }
}

fn push_component(out: &mut PathBuf, c: Component<'_>) {
    match c {
        Component::CurDir => {}
        Component::ParentDir => {
            out.pop();
        }
        other => out.push(other.as_os_str()),
    }
}

/// Whether `a` and `b` name the same file once links and `..` are resolved.
pub fn same_file(a: &Path, b: &Path) -> bool {
    resolved(a) == resolved(b)
}

/// Refuses `--out OUT` when it is one of `inputs` (the option that names it, and
/// its path), unless `force`.
pub fn refuse_inputs(out: &Path, inputs: &[(&str, &Path)], force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    match inputs.iter().find(|(_, input)| same_file(out, input)) {
        Some((option, input)) => Err(CliError::new(format!(
            "--out {} is the file that {option} reads ({}); choose another --out, or pass --force to write over it",
            out.display(),
            input.display()
        ))),
        None => Ok(()),
    }
}

/// Refuses an existing `--out` file whose first line is not `header` (the header
/// this command writes, so the file is not one it made), unless `force`.
pub fn refuse_foreign_file(
    out: &Path,
    header: &str,
    command: &str,
    force: bool,
) -> Result<(), CliError> {
    if force || !out.exists() {
        return Ok(());
    }
    if out.is_dir() {
        return Err(CliError::new(format!(
            "--out {} is a folder; give a file name",
            out.display()
        )));
    }
    let first_line = first_line(out);
    if first_line.as_deref() == Some(header) {
        return Ok(());
    }
    Err(CliError::new(format!(
        "--out {} already exists and was not written by `sustain {command}`; choose another --out, or pass --force to replace it",
        out.display()
    )))
}

/// Refuses a single-file `--out` that is a file of a finished fit (results.json, a
/// subjects CSV or a figure in a folder holding results.json), unless `force`.
pub fn refuse_fit_results(out: &Path, force: bool) -> Result<(), CliError> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_fit = resolved(out)
        .parent()
        .is_some_and(|d| d.join("results.json").is_file());
    if force || !out.exists() || !in_fit || !(name == "results.json" || is_fit_output(&name)) {
        return Ok(());
    }
    Err(CliError::new(format!(
        "--out {} is a file of a finished fit; choose another --out, or pass --force to replace it",
        out.display()
    )))
}

/// Refuses a folder `out` whose samples.npz a fit would replace but no fit wrote
/// (sustain's end with its mark), unless `force`.
pub fn refuse_foreign_samples(out: &Path, force: bool) -> Result<(), CliError> {
    use sustain::samples_file::{MARK, SAMPLES_FILE};
    let path = out.join(SAMPLES_FILE);
    if force || !path.exists() {
        return Ok(());
    }
    let ours = (|| {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&path).ok()?;
        f.seek(SeekFrom::End(-(MARK.len() as i64))).ok()?;
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).ok()?;
        Some(tail == MARK.as_bytes())
    })()
    .unwrap_or(false);
    if ours {
        return Ok(());
    }
    Err(CliError::new(format!(
        "{} was not written by sustain and a fit would replace it; move it, choose another --out, or pass --force to replace it",
        path.display()
    )))
}

/// Whether `name` is an output of a fit folder besides results.json: its samples
/// (samples.npz), or a per-model output: subjects_k{K}.csv, pvd_k{K}.svg/.png,
/// pvd_chains_k{K}.svg/.png, trace_k{K}.svg/.png.
fn is_fit_output(name: &str) -> bool {
    if name == sustain::samples_file::SAMPLES_FILE {
        return true;
    }
    let model_file = |prefix: &str, exts: &[&str]| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            exts.iter().any(|ext| {
                rest.strip_suffix(ext)
                    .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
            })
        })
    };
    model_file("subjects_k", &[".csv"])
        || model_file("pvd_k", &[".svg", ".png"])
        || model_file("pvd_chains_k", &[".svg", ".png"])
        || model_file("trace_k", &[".svg", ".png"])
}

/// Removes the outputs of a fit from `out` (for `--force`): results.json first (so
/// the folder stops looking finished), then the subjects CSVs, figures and
/// checkpoints. Other files are left alone.
pub fn clear_fit_outputs(out: &Path) -> Result<(), CliError> {
    remove_if_present(&out.join("results.json"))?;
    for dir in [out.to_path_buf(), out.join("checkpoints")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let checkpoint = dir != out
                && name.starts_with("checkpoint_")
                && (name.ends_with(".json") || name.ends_with(".npz"));
            if (dir == out && is_fit_output(&name)) || checkpoint {
                remove_if_present(&entry.path())?;
            }
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), CliError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::new(format!(
            "cannot remove {} (--force): {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// The first line of a text file (without the line break); `None` when it cannot
/// be read. Reads at most 64 KiB.
fn first_line(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?;
    Some(line.trim_start_matches('\u{feff}').trim_end().to_string())
}

/// Whether the JSON file `path` carries the `"written_by": by` mark of the command
/// that wrote it (so that command may replace it).
pub fn json_written_by(path: &Path, by: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Mark {
        written_by: Option<String>,
    }
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Mark>(&t).ok())
        .and_then(|m| m.written_by)
        .is_some_and(|w| w == by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_dotdot_name_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.csv");
        std::fs::write(&f, "a\n1\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&f, &dir.path().join("sub/../data.csv")));
        assert!(same_file(&f, &dir.path().join("./data.csv")));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&f, &link).unwrap();
            assert!(same_file(&f, &link));
            let dir_link = dir.path().join("dl");
            std::os::unix::fs::symlink(dir.path(), &dir_link).unwrap();
            assert!(same_file(&f, &dir_link.join("data.csv")));
        }
        // Files that do not exist yet compare through their existing parent.
        let new = dir.path().join("sub/new.csv");
        assert!(same_file(&new, &dir.path().join("sub/x/../new.csv")));
        assert!(!same_file(&new, &f));
    }

    #[test]
    fn refusals_name_the_file_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("raw.csv");
        std::fs::write(&f, "a,b\n1,2\n").unwrap();
        let e = refuse_inputs(&f, &[("--raw", &f)], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("raw.csv") && e.contains("--force"), "{e}");
        assert!(refuse_inputs(&f, &[("--raw", &f)], true).is_ok());
        let e = refuse_foreign_file(&f, "id,x", "stage", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("raw.csv") && e.contains("--force"), "{e}");
        assert!(refuse_foreign_file(&f, "a,b", "stage", false).is_ok());
        assert!(refuse_foreign_file(&dir.path().join("none.csv"), "x", "stage", false).is_ok());
    }
}
