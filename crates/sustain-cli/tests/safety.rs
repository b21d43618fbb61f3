//! Nothing a user has is ever lost (issue 26): every row of the table as a
//! test. A refused command leaves the input or the finished fit unchanged, exits
//! with status 2 and one line that says what to do; a legitimate use succeeds.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    names_in, ok, read_json, run, s, small, snapshot, stage_args, sustain, tiny, user_error, write,
};

/// A finished 2-subtype fit shared by the tests (read-only; copy it to change it).
fn fitted() -> &'static (tempfile::TempDir, PathBuf) {
    static FIT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    FIT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fit");
        ok(&run(&tiny("fit", &["--out", s(&dir)])));
        (tmp, dir)
    })
}

/// A copy of the shared fit in `dir/name`.
fn fit_copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    for (path, bytes) in snapshot(&fitted().1) {
        let rel = path.strip_prefix(&fitted().1).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::write(to.join(rel), bytes).unwrap();
    }
    to
}

/// The raw table of a `zscore` run: controls and patients, a covariate.
const RAW: &str = "\
id,group,age,up
c1,ctrl,60,3
c2,ctrl,61,4
c3,ctrl,70,7
c4,ctrl,75,12
p1,case,66,34
p2,case,71,9
";

fn zscore_args<'a>(raw: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "zscore",
        "--raw",
        raw,
        "--control-column",
        "group",
        "--control-value",
        "ctrl",
        "--covariates",
        "age",
        "--id-column",
        "id",
        "--out",
        out,
    ];
    v.extend(extra);
    v
}

#[test]
fn zscore_refuses_to_write_over_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = write(tmp.path(), "raw.csv", RAW);
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let dotdot = tmp.path().join("sub/../raw.csv");
    let link = tmp.path().join("link.csv");
    std::os::unix::fs::symlink(&raw, &link).unwrap();
    for out in [&raw, &dotdot, &link] {
        user_error(
            &sustain(&zscore_args(s(&raw), s(out), &[])),
            &["raw.csv", "--raw", "--force"],
        );
        assert_eq!(std::fs::read_to_string(&raw).unwrap(), RAW);
    }
    // Another file that zscore did not write is refused too; its own output is
    // written again.
    let other = write(tmp.path(), "notes.csv", "a,b\n1,2\n");
    user_error(
        &sustain(&zscore_args(s(&raw), s(&other), &[])),
        &["notes.csv", "--force"],
    );
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "a,b\n1,2\n");
    let z = tmp.path().join("z.csv");
    ok(&sustain(&zscore_args(s(&raw), s(&z), &[])));
    ok(&sustain(&zscore_args(s(&raw), s(&z), &[])));
    // --force says so.
    ok(&sustain(&zscore_args(s(&raw), s(&other), &["--force"])));
    assert!(std::fs::read_to_string(&other)
        .unwrap()
        .starts_with("id,up"));
}

#[test]
fn zscore_refuses_missing_control_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("z.csv");
    let no_age = write(
        tmp.path(),
        "a.csv",
        &RAW.replace("c2,ctrl,61,4", "c2,ctrl,,4"),
    );
    user_error(
        &sustain(&zscore_args(s(&no_age), s(&out), &[])),
        &["a.csv", "row 2", "'age'", "missing covariate"],
    );
    let no_group = write(tmp.path(), "g.csv", &RAW.replace("p2,case,", "p2,,"));
    user_error(
        &sustain(&zscore_args(s(&no_group), s(&out), &[])),
        &["g.csv", "row 6", "'group'", "empty"],
    );
    assert!(!out.exists());
}

#[test]
fn stage_refuses_to_write_over_its_data_or_the_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let fit = fit_copy(tmp.path(), "fit");
    let before = snapshot(&fit);
    let data = tmp.path().join("data.csv");
    std::fs::copy(small("data.csv"), &data).unwrap();
    let data_text = std::fs::read(&data).unwrap();
    user_error(
        &sustain(&stage_args(s(&fit), s(&data), s(&data))),
        &["data.csv", "--data", "--force"],
    );
    assert_eq!(std::fs::read(&data).unwrap(), data_text);
    let results = fit.join("results.json");
    user_error(
        &sustain(&stage_args(s(&fit), s(&data), s(&results))),
        &["results.json", "--force"],
    );
    let subjects = fit.join("subjects_k2.csv");
    user_error(
        &sustain(&stage_args(s(&fit), s(&data), s(&subjects))),
        &["subjects_k2.csv", "a file of a finished fit", "--force"],
    );
    assert_eq!(snapshot(&fit), before, "the fit folder changed");
    // A stage output is written again.
    let staged = tmp.path().join("staged.csv");
    ok(&sustain(&stage_args(s(&fit), s(&data), s(&staged))));
    ok(&sustain(&stage_args(s(&fit), s(&data), s(&staged))));
}

/// `fit --chain-shard I/2` into `out` with `extra` settings.
fn shard(out: &Path, i: usize, extra: &[&str]) -> std::process::Output {
    let spec = format!("{i}/2");
    let mut e = vec!["--out", s(out), "--chain-shard", &spec];
    e.extend(extra);
    run(&tiny("fit", &e))
}

#[test]
fn shards_and_merge_leave_another_fit_alone() {
    let tmp = tempfile::tempdir().unwrap();
    // A finished fit, then chain shards of another seed into its folder.
    let fit = fit_copy(tmp.path(), "fit");
    let before = snapshot(&fit);
    user_error(
        &shard(&fit, 0, &["--seed", "7"]),
        &["holds a finished fit", "results.json", "--force"],
    );
    assert_eq!(snapshot(&fit), before);
    // With --force the shards run beside it, and merge still refuses without it.
    ok(&shard(&fit, 0, &["--seed", "7", "--force"]));
    ok(&shard(&fit, 1, &["--seed", "7", "--force"]));
    let results = std::fs::read(fit.join("results.json")).unwrap();
    user_error(
        &sustain(&["merge", "--out", s(&fit)]),
        &["holds a finished fit", "--force"],
    );
    assert_eq!(std::fs::read(fit.join("results.json")).unwrap(), results);

    // Shards of the same settings as the fit merge to the same fit: allowed.
    let same = fit_copy(tmp.path(), "same");
    ok(&shard(&same, 0, &[]));
    ok(&shard(&same, 1, &[]));
    ok(&sustain(&["merge", "--out", s(&same)]));

    // merge --force replaces the other fit, stale checkpoints included.
    ok(&sustain(&["merge", "--out", s(&fit), "--force"]));
    assert_ne!(std::fs::read(fit.join("results.json")).unwrap(), results);
    assert!(names_in(&fit.join("checkpoints")).is_empty());
    assert!(!fit.join(".sustain.lock").exists());
}

#[test]
fn merge_refuses_a_results_json_of_another_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shards");
    ok(&shard(&out, 0, &["--seed", "9"]));
    ok(&shard(&out, 1, &["--seed", "9"]));
    std::fs::copy(fitted().1.join("results.json"), out.join("results.json")).unwrap();
    let other = std::fs::read(out.join("results.json")).unwrap();
    user_error(
        &sustain(&["merge", "--out", s(&out)]),
        &["results.json", "--force"],
    );
    assert_eq!(std::fs::read(out.join("results.json")).unwrap(), other);
    ok(&sustain(&["merge", "--out", s(&out), "--force"]));
    // Merging again over its own merge is fine.
    ok(&sustain(&["merge", "--out", s(&out)]));
}

#[test]
fn demo_leaves_the_users_input_files_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let input = out.join("input");
    std::fs::create_dir_all(&input).unwrap();
    write(&input, "data.csv", "my,own\n1,2\n");
    write(&input, "model.json", "{\"mine\": true}");
    let before = snapshot(&out);
    user_error(
        &sustain(&["demo", "--out", s(&out), "--quiet"]),
        &["data.csv", "not the demo's", "--force"],
    );
    assert_eq!(snapshot(&out), before);
}

/// The host name, as the lock file records it.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[test]
fn one_writer_per_output_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    let first_args = tiny("fit", &["--out", s(&out), "--iterations", "40000"]);
    let first = Command::new(env!("CARGO_BIN_EXE_sustain"))
        .args(&first_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = out.join(".sustain.lock");
    let start = Instant::now();
    while !lock.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lock.exists(), "the first fit took no lock");
    let second = run(&tiny("fit", &["--out", s(&out), "--seed", "5"]));
    let line = user_error(&second, &["is in use by process", &host()]);
    assert!(line.contains(&first.id().to_string()), "{line}");
    let first = first.wait_with_output().unwrap();
    ok(&first);
    assert!(!lock.exists(), "the lock was not released");
    // The folder holds the first fit's seed only.
    let results = read_json(out.join("results.json"));
    assert_eq!(results["settings"]["seed"], 42);
}

#[test]
fn a_lock_of_an_ended_process_is_taken_over_and_released_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    std::fs::create_dir_all(&out).unwrap();
    // No process has an id above the kernel's largest (2^22).
    write(
        &out,
        ".sustain.lock",
        &format!("pid 4194311\nhost {}\n", host()),
    );
    let done = run(&tiny("fit", &["--out", s(&out)]));
    ok(&done);
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("taking over the lock"), "{err}");
    assert!(!out.join(".sustain.lock").exists());
    // A lock of another host is not taken over.
    write(
        &out,
        ".sustain.lock",
        "pid 4194311\nhost elsewhere.example\n",
    );
    user_error(
        &run(&tiny("fit", &["--out", s(&out), "--resume"])),
        &["in use by process 4194311 on elsewhere.example"],
    );
    std::fs::remove_file(out.join(".sustain.lock")).unwrap();
    // An error after the lock is taken releases it.
    user_error(
        &run(&tiny("fit", &["--out", s(&out)])),
        &["already holds a fit"],
    );
    assert!(!out.join(".sustain.lock").exists());
}

#[test]
fn huge_counts_are_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    for (option, value) in [
        ("--chains", "4294967295"),
        ("--chains", "1000000"),
        ("--startpoints", "4294967295"),
        ("--iterations", "18446744073709551615"),
        ("--tuning-iterations", "18446744073709551615"),
        ("--threads", "4294967295"),
    ] {
        user_error(
            &run(&tiny("fit", &["--out", s(&out), option, value])),
            &[option, value, "supported"],
        );
        assert!(!out.exists(), "{option}: an output folder was made");
    }
    // Within the bounds but beyond any memory: the estimate and what to lower.
    if std::fs::read_to_string("/proc/meminfo").is_ok() {
        user_error(
            &run(&tiny(
                "fit",
                &[
                    "--out",
                    s(&out),
                    "--iterations",
                    "1000000000",
                    "--chains",
                    "4096",
                    "--subtypes",
                    "8",
                ],
            )),
            &["memory", "lower --iterations"],
        );
        assert!(!out.exists());
    }
}

#[test]
fn a_figure_that_cannot_be_written_leaves_no_finished_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    // A folder where a figure goes: the figure cannot be written.
    std::fs::create_dir_all(out.join("pvd_k2.svg")).unwrap();
    user_error(&run(&tiny("fit", &["--out", s(&out)])), &["pvd_k2.svg"]);
    assert!(!out.join("results.json").exists());
    std::fs::remove_dir(out.join("pvd_k2.svg")).unwrap();
    ok(&run(&tiny("fit", &["--out", s(&out), "--resume"])));
    assert!(out.join("results.json").exists() && out.join("pvd_k2.svg").is_file());
}

#[test]
fn temporary_files_of_an_ended_process_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    std::fs::create_dir_all(out.join("checkpoints")).unwrap();
    let dead = 4_194_313;
    let temps = [
        out.join(format!(".results.json.{dead}-2.tmp")),
        out.join(format!(".trace_k3.png.{dead}-0.tmp.png")),
        out.join(format!("checkpoints/.checkpoint_k1.json.tmp{dead}")),
    ];
    for t in &temps {
        std::fs::write(t, "").unwrap();
    }
    // A fresh run cleans them up (they do not make the folder "hold a fit").
    ok(&run(&tiny("fit", &["--out", s(&out)])));
    for t in &temps {
        assert!(!t.exists(), "{} left", t.display());
    }
    // And so does --resume.
    for t in &temps {
        std::fs::write(t, "").unwrap();
    }
    ok(&run(&tiny("fit", &["--out", s(&out), "--resume"])));
    for t in &temps {
        assert!(!t.exists(), "{} left", t.display());
    }
    let hidden: Vec<String> = names_in(&out)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn slurm_strings_stay_one_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("X");
    let touch = format!("touch {}", marker.display());
    let out = tmp.path().join("fit");
    for (option, value) in [
        ("--partition", format!("p\n{touch}")),
        ("--partition", format!("$({touch})")),
        ("--time", format!("`{touch}`")),
        ("--partition", "a b".to_string()),
        ("--time", "1:00\"".to_string()),
        ("--partition", "it's".to_string()),
    ] {
        let mut a = tiny("fit", &["--out", s(&out), "--dry-run"]);
        a.insert(0, "slurm".into());
        a.extend([option.to_string(), value.clone()]);
        let line = user_error(&run(&a), &[option, "only letters"]);
        assert!(!line.trim_end().contains('\n'), "{line:?}");
        assert!(!out.join("slurm").exists(), "{value:?}: scripts written");
    }
    // Paths with quotes, `$()`, backticks and a line break are quoted in the job
    // line: the script runs the fit on exactly that file and runs nothing else.
    // (The script runs in the folder it was made from: the temporary folder, where
    // `touch pwned` would leave its file.)
    let odd = tmp
        .path()
        .join("d a't\"a $(touch pwned) `touch pwned`\n.csv");
    std::fs::copy(small("data.csv"), &odd).unwrap();
    let mut a: Vec<String> = tiny("fit", &["--out", s(&out), "--dry-run", "--chains", "2"]);
    a[2] = odd.display().to_string();
    a.insert(0, "slurm".into());
    ok(&Command::new(env!("CARGO_BIN_EXE_sustain"))
        .args(&a)
        .current_dir(tmp.path())
        .output()
        .unwrap());
    let script = out.join("slurm/shards.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    let ran = Command::new("bash")
        .arg(&script)
        .env("SLURM_ARRAY_TASK_ID", "0")
        .output()
        .unwrap();
    ok(&ran);
    assert!(
        !marker.exists(),
        "the script ran a command from a path: {text}"
    );
    assert!(
        !tmp.path().join("pwned").exists(),
        "the script ran a command from a path: {text}"
    );
    assert!(out.join("shards/shard_0of2.json").exists());
    // An output folder with a line break cannot go into a comment or #SBATCH line.
    let bad_out = tmp.path().join("o\nut");
    let mut a = tiny("fit", &["--out", s(&bad_out), "--dry-run"]);
    a.insert(0, "slurm".into());
    user_error(&run(&a), &["line break"]);
}

/// A model file of the small example's biomarkers with these z_vals and z_max.
fn model(dir: &Path, name: &str, z_vals: &str, z_max: &str) -> PathBuf {
    write(
        dir,
        name,
        &format!(
            "{{\"biomarkers\": [\"bm0\", \"bm1\", \"bm2\", \"bm3\"], \"z_vals\": {z_vals}, \"z_max\": {z_max}}}"
        ),
    )
}

/// `fit` on `data` with `model` (a path, or `--zvals ...`) into a fresh folder.
fn fit_with(tmp: &Path, data: &str, model_args: &[&str]) -> (std::process::Output, PathBuf) {
    let out = tmp.join("out");
    let mut a = tiny("fit", &["--out", s(&out)]);
    a[2] = data.to_string();
    a.drain(3..5);
    a.splice(3..3, model_args.iter().map(|m| m.to_string()));
    (run(&a), out)
}

#[test]
fn z_max_must_exceed_the_top_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small("data.csv");
    let equal = model(
        tmp.path(),
        "equal.json",
        "[[1, 2, 0], [1, 2, 3], [1, 2, 3], [1, 2, 3]]",
        "[4, 5, 3, 6]",
    );
    let (out, dir) = fit_with(tmp.path(), &data, &["--model", s(&equal)]);
    user_error(&out, &["equal.json", "z_max 3", "'bm2'", "top threshold 3"]);
    assert!(!dir.exists());
    let mut a = tiny("fit", &["--out", s(&dir)]);
    a.drain(3..5);
    a.extend(["--zvals", "1,2,3", "--zmax", "2"].map(String::from));
    user_error(&run(&a), &["--zmax 2", "--zvals"]);
    assert!(!dir.exists());
}

#[test]
fn column_names_and_subject_ids_must_be_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(small("data.csv")).unwrap();
    // A comma at the end of the header line (and of every row).
    let trailing: String = text.lines().map(|l| format!("{l},\n")).collect();
    let p = write(tmp.path(), "trailing.csv", &trailing);
    let (out, dir) = fit_with(tmp.path(), s(&p), &["--zvals", "1,2", "--zmax", "5"]);
    user_error(
        &out,
        &["trailing.csv", "column 6 of the header has no name"],
    );
    assert!(!dir.exists());
    let dup = write(
        tmp.path(),
        "dup.csv",
        &text.replacen("id,bm0,bm1,bm2,bm3", "id,bm0,bm1,bm2,bm0", 1),
    );
    let (out, _) = fit_with(tmp.path(), s(&dup), &["--zvals", "1,2", "--zmax", "5"]);
    user_error(&out, &["dup.csv", "'bm0' appears more than once"]);
    let ids = write(tmp.path(), "ids.csv", &text.replacen("s002,", "s001,", 1));
    let (out, _) = fit_with(tmp.path(), s(&ids), &["--model", &small("model.json")]);
    user_error(&out, &["ids.csv", "row 2", "'s001'", "row 1", "unique"]);
}

#[test]
fn an_edited_checkpoint_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fit_copy(tmp.path(), "fit");
    let cp = out.join("checkpoints/checkpoint_k1.json");
    let mut v = read_json(&cp);
    v["em_sequences"][0][0] = serde_json::json!(999);
    std::fs::write(&cp, v.to_string()).unwrap();
    user_error(
        &run(&tiny("fit", &["--out", s(&out), "--resume"])),
        &["checkpoint_k1.json"],
    );
    std::fs::write(&cp, "{ not json").unwrap();
    user_error(
        &run(&tiny("fit", &["--out", s(&out), "--resume"])),
        &["checkpoint_k1.json"],
    );
    // Edits of the saved model (which once gave a fit, or figures, from nonsense).
    let out = fit_copy(tmp.path(), "fit2");
    let cp = out.join("checkpoints/checkpoint_k2.json");
    let saved = read_json(&cp);
    let edits: [(&str, serde_json::Value); 4] = [
        ("n_subtypes", serde_json::json!(5)),
        ("mean_f", serde_json::json!([])),
        ("ml_sequences", serde_json::json!([[0]])),
        ("pvd", serde_json::json!([])),
    ];
    let results = std::fs::read(out.join("results.json")).unwrap();
    for (field, value) in edits {
        let mut v = saved.clone();
        v["model"][field] = value;
        std::fs::write(&cp, v.to_string()).unwrap();
        user_error(
            &run(&tiny("fit", &["--out", s(&out), "--resume"])),
            &["checkpoint_k2.json", "not a valid checkpoint"],
        );
        assert_eq!(std::fs::read(out.join("results.json")).unwrap(), results);
    }
}

#[test]
fn messages_name_only_flags_that_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    let mut a = tiny(
        "cv",
        &["--out", s(&out), "--subtype-count", "5", "--fold", "0"],
    );
    a.extend(["--folds", "2"].map(String::from));
    let line = user_error(&run(&a), &["--subtype-count 5", "--subtypes"]);
    assert!(!line.contains("--max-subtypes"), "{line}");
}

#[test]
fn a_byte_order_mark_is_accepted_and_a_nul_byte_is_shown_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let bom = |from: &str, name: &str| {
        let mut bytes = "\u{feff}".as_bytes().to_vec();
        bytes.extend(std::fs::read(small(from)).unwrap());
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let m = bom("model.json", "model.json");
    let d = bom("data.csv", "data.csv");
    let seq = small("sequences.json");
    let out = sustain(&[
        "evaluate",
        "--data",
        s(&d),
        "--model",
        s(&m),
        "--sequences",
        &seq,
    ]);
    ok(&out);
    let text = std::fs::read_to_string(small("data.csv")).unwrap();
    let nul = write(
        tmp.path(),
        "nul.csv",
        &text.replacen("0.6528", "0.65\u{0}28", 1),
    );
    let out = sustain(&[
        "evaluate",
        "--data",
        s(&nul),
        "--model",
        &small("model.json"),
        "--sequences",
        &seq,
    ]);
    let line = user_error(&out, &["nul.csv", "row 1", "'bm0'", "0.65\\028"]);
    assert!(!line.contains('\u{0}'));
}

/// Runs `stage` of the shared fit on `data` bytes: no panic; exit 0 with the
/// output written, or exit 2 with one line and no output.
fn stage_survives(dir: &Path, data: &[u8]) {
    let input = dir.join("in.csv");
    let out = dir.join("staged.csv");
    let _ = std::fs::remove_file(&out);
    std::fs::write(&input, data).unwrap();
    let fit = &fitted().1;
    let o = sustain(&[
        "stage",
        "--fit",
        s(fit),
        "--data",
        s(&input),
        "--out",
        s(&out),
        "--threads",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    match o.status.code() {
        Some(0) => assert!(out.exists()),
        Some(2) => {
            assert_eq!(err.lines().count(), 1, "{err:?}");
            assert!(!out.exists(), "output written on error: {err}");
        }
        other => panic!("status {other:?}: {err}"),
    }
}

/// Runs `evaluate` with `model` bytes: no panic; exit 0, or 2 with one line.
fn evaluate_survives(dir: &Path, model: &[u8]) {
    let path = dir.join("model.json");
    std::fs::write(&path, model).unwrap();
    let o = sustain(&[
        "evaluate",
        "--data",
        &small("data.csv"),
        "--model",
        s(&path),
        "--sequences",
        &small("sequences.json"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    match o.status.code() {
        Some(0) => {}
        Some(2) => assert_eq!(err.lines().count(), 1, "{err:?}"),
        other => panic!("status {other:?}: {err}"),
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// A few bytes changed in a valid file: replaced, inserted or deleted, with
    /// bytes that matter to CSV and JSON readers.
    fn mutate(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let n = base.len();
        let byte = prop_oneof![
            Just(b','),
            Just(b'"'),
            Just(b'\n'),
            Just(b'\r'),
            Just(0u8),
            Just(b'{'),
            Just(b']'),
            Just(b'-'),
            Just(b'e'),
            Just(0xff),
            Just(0xef),
            any::<u8>()
        ];
        proptest::collection::vec((0..n.max(1), 0..3u8, byte), 1..6).prop_map(move |edits| {
            let mut b = base.clone();
            for (at, kind, byte) in edits {
                let at = at.min(b.len());
                match kind {
                    0 if at < b.len() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => b.push(byte),
                }
            }
            b
        })
    }

    fn small_data() -> Vec<u8> {
        // The first rows of the example keep each run short.
        let text = std::fs::read_to_string(small("data.csv")).unwrap();
        text.lines()
            .take(12)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 50, ..ProptestConfig::default() })]

        #[test]
        fn csv_reader_never_panics(data in mutate(small_data())) {
            let tmp = tempfile::tempdir().unwrap();
            stage_survives(tmp.path(), &data);
        }

        #[test]
        fn json_reader_never_panics(model in mutate(std::fs::read(small("model.json")).unwrap())) {
            let tmp = tempfile::tempdir().unwrap();
            evaluate_survives(tmp.path(), &model);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let tmp = tempfile::tempdir().unwrap();
            stage_survives(tmp.path(), &bytes);
            evaluate_survives(tmp.path(), &bytes);
        }
    }
}

#[test]
fn force_replaces_a_finished_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fit_copy(tmp.path(), "fit");
    user_error(
        &run(&tiny("fit", &["--out", s(&out), "--seed", "3"])),
        &["already holds a fit", "--force"],
    );
    ok(&run(&tiny(
        "fit",
        &[
            "--out",
            s(&out),
            "--seed",
            "3",
            "--subtypes",
            "1",
            "--force",
        ],
    )));
    let results = read_json(out.join("results.json"));
    assert_eq!(results["settings"]["seed"], 3);
    // The replaced fit's files of two subtypes are gone with it.
    let names = names_in(&out);
    assert!(!names.iter().any(|n| n.contains("_k2")), "{names:?}");
    // Two checkpoint files of one subtype count (each finished one keeps its
    // samples in a checkpoint_k{K}.npz beside them).
    let checkpoints = names_in(&out.join("checkpoints"));
    let json: Vec<&String> = checkpoints
        .iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(json.len(), 2, "{checkpoints:?}");
    assert!(
        !checkpoints.iter().any(|n| n.contains("_k2")),
        "{checkpoints:?}"
    );
}

/// results.json without the wall times (they differ between runs).
fn results_without_timing(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = common::results_with_samples(dir);
    for m in v["models"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("timing");
        for c in m["samples"]["chains"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("wall_s");
        }
    }
    v
}

/// Every file under `dir` whose name starts with a dot (temporary files, locks).
fn hidden_files(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect()
}

#[test]
fn kill_at_random_moments_then_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = ["--iterations", "2000", "--threads", "2"];
    let reference = tmp.path().join("reference");
    let with = |extra: &[&str]| {
        let mut e = settings.to_vec();
        e.extend(extra);
        tiny("fit", &e)
    };
    let a = with(&["--out", s(&reference)]);
    let start = Instant::now();
    ok(&run(&a));
    let whole = start.elapsed();
    let expect = results_without_timing(&reference);
    // 20 moments spread over the run (a fixed sequence: the test is reproducible
    // up to the machine's timing), each followed by --resume; at most ~40 s.
    let budget = Instant::now();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20 {
        if budget.elapsed() > Duration::from_secs(40) {
            eprintln!("kill test: stopped after {i} moments (time bound)");
            break;
        }
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = whole.mul_f64((state >> 11) as f64 / (1u64 << 53) as f64);
        let out = tmp.path().join(format!("killed{i}"));
        let a = with(&["--out", s(&out)]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sustain"))
            .args(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        ok(&run(&with(&["--out", s(&out), "--resume"])));
        assert_eq!(hidden_files(&out), Vec::<PathBuf>::new(), "moment {i}");
        assert_eq!(results_without_timing(&out), expect, "moment {i}: {at:?}");
        for k in 1..=2 {
            let name = format!("subjects_k{k}.csv");
            let what = format!("moment {i}: {name}");
            common::assert_same_file(&out, &reference, &name, &what);
        }
    }
}

#[test]
fn cv_folds_lock_their_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    std::fs::create_dir_all(&out).unwrap();
    // This test's own process: alive, on this host.
    let me = format!("pid {}\nhost {}\n", std::process::id(), host());
    write(&out, ".fold_0.lock", &me);
    let cv = |extra: &[&str]| {
        let mut e = vec!["--out", s(&out), "--folds", "2"];
        e.extend(extra);
        run(&tiny("cv", &e))
    };
    user_error(
        &cv(&["--fold", "0"]),
        &[&format!("in use by process {}", std::process::id())],
    );
    // Another fold runs beside it.
    ok(&cv(&["--fold", "1", "--subtypes", "1"]));
    assert!(
        out.join(".fold_0.lock").exists(),
        "another run's lock was removed"
    );
    assert!(!out.join(".fold_1.lock").exists());
    write(&out, ".sustain.lock", &me);
    user_error(
        &sustain(&["cv-combine", "--out", s(&out)]),
        &["in use by process"],
    );
}

/// A samples.npz in `--out` that sustain did not write is not replaced without
/// `--force` (one line naming it); one a fit wrote is.
#[test]
fn a_foreign_samples_file_is_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    std::fs::create_dir(&out).unwrap();
    let mine = b"my own arrays".to_vec();
    std::fs::write(out.join("samples.npz"), &mine).unwrap();
    user_error(
        &run(&tiny("fit", &["--out", s(&out), "--subtypes", "1"])),
        &["samples.npz", "not written by sustain", "--force"],
    );
    assert_eq!(std::fs::read(out.join("samples.npz")).unwrap(), mine);
    ok(&run(&tiny(
        "fit",
        &["--out", s(&out), "--subtypes", "1", "--force"],
    )));
    assert_ne!(std::fs::read(out.join("samples.npz")).unwrap(), mine);
    // A fit's own samples file, left without results.json (an interrupted write):
    // a new fit replaces it.
    std::fs::remove_file(out.join("results.json")).unwrap();
    std::fs::remove_dir_all(out.join("checkpoints")).unwrap();
    ok(&run(&tiny("fit", &["--out", s(&out), "--subtypes", "1"])));
}
