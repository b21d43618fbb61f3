//! Cluster runs: chain shards (`fit --chain-shard`, `merge`) equal a single fit,
//! `merge` refuses mixed or incomplete shards, `slurm fit|cv` write the expected
//! batch scripts, and (with `SUSTAIN_SLURM_TEST=1` and `sbatch` on PATH) a real
//! SLURM cross-validation equals a local one, also after a lost fold is resubmitted.

mod common;
use common::{ok, read_json, small, sustain, user_error};

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `sub --data --model TINY --out OUT EXTRA...` with tiny settings and 4 chains.
fn args(sub: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        sub,
        "--data",
        &small("data.csv"),
        "--model",
        &small("model.json"),
        "--subtypes",
        "2",
        "--startpoints",
        "2",
        "--iterations",
        "400",
        "--tuning-iterations",
        "200",
        "--chains",
        "4",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `slurm` then [`args`]: the command line of `sustain slurm SUB ...`.
fn slurm(sub: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = args(sub, out, extra);
    a.insert(0, "slurm".into());
    a
}

/// The `#SBATCH` header every script of the dry run below starts with: job name,
/// logs `<log>.out` and `<log>.err` in `logs`, partition, time and CPUs.
fn header(job: &str, log: &str, logs: &Path) -> Vec<String> {
    vec![
        format!("#SBATCH --job-name={job}"),
        format!("#SBATCH --output={}/{log}.out", logs.display()),
        format!("#SBATCH --error={}/{log}.err", logs.display()),
        "#SBATCH --partition=debug".to_string(),
        "#SBATCH --time=00:10:00".to_string(),
        "#SBATCH --cpus-per-task=2".to_string(),
    ]
}

/// Asserts that `dir/cv.json` equals that of a local 2-fold cv (run in `tmp/local`).
fn assert_eq_local_cv(tmp: &Path, dir: &Path) {
    let local = tmp.join("local");
    ok(&run(&args("cv", &local, &["--folds", "2"])));
    assert_eq!(
        std::fs::read(local.join("cv.json")).unwrap(),
        std::fs::read(dir.join("cv.json")).unwrap()
    );
}

fn run(v: &[String]) -> Output {
    let refs: Vec<&str> = v.iter().map(String::as_str).collect();
    sustain(&refs)
}

/// results.json without what legitimately differs between runs: the wall times
/// (`timing` of every model and `wall_s` of every chain).
fn results_without_timing(dir: &Path) -> Value {
    let mut v: Value = common::results_with_samples(dir);
    for m in v["models"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("timing").unwrap();
        for c in m["samples"]["chains"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("wall_s").unwrap();
        }
    }
    v
}

#[test]
fn chain_shards_merge_to_the_single_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    let sharded = tmp.path().join("sharded");
    ok(&run(&args("fit", &single, &[])));
    for i in 0..2 {
        let spec = format!("{i}/2");
        let out = ok(&run(&args("fit", &sharded, &["--chain-shard", &spec])));
        assert!(out.contains(&format!("shards/shard_{i}of2.json")), "{out}");
    }
    // A shard that already ran is reused, not recomputed.
    let again = ok(&run(&args("fit", &sharded, &["--chain-shard", "1/2"])));
    assert!(again.contains("already done"), "{again}");
    ok(&sustain(&["merge", "--out", sharded.to_str().unwrap()]));

    assert_eq!(
        results_without_timing(&single),
        results_without_timing(&sharded)
    );
    for k in 1..=2 {
        for name in [
            format!("subjects_k{k}.csv"),
            format!("pvd_k{k}.svg"),
            format!("trace_k{k}.svg"),
        ] {
            common::assert_same_file(&single, &sharded, &name, &format!("{name} differs"));
        }
    }
    // The shard holds the raw chains of its range and the E-M optimum.
    let shard = read_json(sharded.join("shards/shard_1of2.json"));
    assert_eq!(shard["chains"], serde_json::json!([2, 4]));
    let runs = shard["models"][1]["runs"].as_array().unwrap();
    let idx: Vec<u64> = runs.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, [2, 3]);
    // Their traces are in the .npz beside it, not in the JSON; merged, the samples
    // file is the single fit's, byte for byte.
    assert!(sharded.join("shards/shard_1of2.npz").is_file());
    assert!(runs.iter().all(|r| r.get("trace").is_none()), "{runs:?}");
    assert!(
        std::fs::read(single.join("samples.npz")).unwrap()
            == std::fs::read(sharded.join("samples.npz")).unwrap(),
        "samples.npz differs"
    );
}

#[test]
fn merge_refuses_mixed_and_incomplete_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mixed");
    let d = dir.to_str().unwrap();
    user_error(&sustain(&["merge", "--out", d]), &["no shards"]);
    ok(&run(&args("fit", &dir, &["--chain-shard", "0/2"])));
    user_error(&sustain(&["merge", "--out", d]), &["missing shard 1 of 2"]);
    ok(&run(&args(
        "fit",
        &dir,
        &["--chain-shard", "1/2", "--seed", "7"],
    )));
    user_error(
        &sustain(&["merge", "--out", d]),
        &["different data, settings or seed"],
    );
    // A shard file of other settings is not overwritten.
    user_error(
        &run(&args("fit", &dir, &["--chain-shard", "1/2"])),
        &["shard_1of2.json was made from different data"],
    );

    let three = tmp.path().join("three");
    ok(&run(&args("fit", &three, &["--chain-shard", "1/3"])));
    user_error(
        &sustain(&["merge", "--out", three.to_str().unwrap()]),
        &["missing shards 0, 2 of 3"],
    );
    user_error(
        &run(&args("fit", &three, &["--chain-shard", "3/3"])),
        &["--chain-shard 3/3"],
    );
    user_error(
        &run(&args("fit", &three, &["--chain-shard", "0/5"])),
        &["5 shards of 4 chain(s)"],
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a batch script with plain bash (any scheduler), as array task `task`.
fn bash(script: &Path, task: Option<&str>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script);
    if let Some(t) = task {
        cmd.env("SLURM_ARRAY_TASK_ID", t);
    }
    cmd.output().expect("bash runs")
}

fn sbatch_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|l| l.starts_with("#SBATCH"))
        .collect()
}

#[test]
fn slurm_fit_dry_run_writes_the_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    let a = slurm(
        "fit",
        &out,
        &[
            "--partition",
            "debug",
            "--time=00:10:00",
            "--cpus-per-task",
            "2",
            "--dry-run",
        ],
    );
    let stdout = ok(&run(&a));
    assert!(stdout.contains("dry run"), "{stdout}");
    let out = std::fs::canonicalize(&out).unwrap();
    let shards = read(&out.join("slurm/shards.sbatch"));
    let logs = out.join("slurm/logs");
    assert!(logs.is_dir());
    assert_eq!(
        sbatch_lines(&shards),
        [
            header("sustain-fit", "shard_%A_%a", &logs),
            vec!["#SBATCH --array=0-3".to_string()]
        ]
        .concat()
    );
    let exec = shards.lines().find(|l| l.starts_with("exec ")).unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_sustain")).unwrap();
    assert!(
        exec.starts_with(&format!("exec {} fit --data ", exe.display())),
        "{exec}"
    );
    assert!(
        exec.ends_with("--threads 2 --chain-shard \"${SLURM_ARRAY_TASK_ID}/4\""),
        "{exec}"
    );
    for own in ["--partition", "--time", "--dry-run", "--cpus-per-task"] {
        assert!(!exec.contains(own), "{exec}");
    }
    let combine = read(&out.join("slurm/combine.sbatch"));
    assert_eq!(
        sbatch_lines(&combine),
        header("sustain-fit-combine", "combine_%j", &logs)
    );
    assert!(combine.contains(&format!(
        "exec {} merge --out {} --threads 2",
        exe.display(),
        out.display()
    )));

    // --shards 2: two tasks of two chains; a shard file already there is left out.
    std::fs::create_dir_all(out.join("shards")).unwrap();
    std::fs::write(out.join("shards/shard_0of2.json"), "{}").unwrap();
    let a = slurm("fit", &out, &["--shards", "2", "--dry-run"]);
    let stdout = ok(&run(&a));
    assert!(
        stdout.contains("1 of 2 chain shards to run: array 1"),
        "{stdout}"
    );
    let shards = read(&out.join("slurm/shards.sbatch"));
    assert!(shards.contains("#SBATCH --array=1\n"), "{shards}");
    assert!(shards.contains("--chain-shard \"${SLURM_ARRAY_TASK_ID}/2\""));
    let a = slurm("fit", &out, &["--shards", "5", "--dry-run"]);
    user_error(&run(&a), &["--shards 5"]);
}

#[test]
fn slurm_cv_scripts_run_under_any_scheduler() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    let a = slurm("cv", &out, &["--folds", "2", "--dry-run"]);
    ok(&run(&a));
    let dir = std::fs::canonicalize(&out).unwrap();
    let shards = read(&dir.join("slurm/shards.sbatch"));
    assert!(
        shards.contains("#SBATCH --job-name=sustain-cv\n"),
        "{shards}"
    );
    assert!(shards.contains("#SBATCH --array=0-1\n"), "{shards}");
    assert!(!shards.contains("--partition"), "{shards}");
    let exec = shards.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(exec.contains(" cv --data "), "{exec}");
    assert!(
        exec.ends_with("--fold \"${SLURM_ARRAY_TASK_ID}\""),
        "{exec}"
    );
    let combine = read(&dir.join("slurm/combine.sbatch"));
    assert!(combine.contains(&format!(" cv-combine --out {}\n", dir.display())));
    let a = slurm("cv", &out, &["--folds", "2", "--fold", "1", "--dry-run"]);
    user_error(
        &run(&a),
        &["--fold and --subtype-count are set by the job array"],
    );

    // The same scripts run by plain bash (any scheduler) equal a local cv.
    for task in ["0", "1"] {
        ok(&bash(&dir.join("slurm/shards.sbatch"), Some(task)));
    }
    ok(&bash(&dir.join("slurm/combine.sbatch"), None));
    assert_eq_local_cv(tmp.path(), &dir);
    // Every fold file there: a resubmission has nothing to run but the combine job.
    let a = slurm("cv", &out, &["--folds", "2", "--dry-run"]);
    let stdout = ok(&run(&a));
    assert!(stdout.contains("0 of 2 folds to run"), "{stdout}");
}

#[test]
fn slurm_cv_per_subtype_count_equals_a_local_cv() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("parts");
    // The dry run of `slurm cv --per-subtype-count`: its stdout.
    let dry_run = || {
        let a = slurm(
            "cv",
            &out,
            &["--folds", "2", "--per-subtype-count", "--dry-run"],
        );
        ok(&run(&a))
    };
    let stdout = dry_run();
    assert!(
        stdout.contains("4 of 4 fold parts to run: array 0-3"),
        "{stdout}"
    );
    let dir = std::fs::canonicalize(&out).unwrap();
    let shards = read(&dir.join("slurm/shards.sbatch"));
    let exec = shards.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        exec.ends_with(
            "--fold \"$((SLURM_ARRAY_TASK_ID / 2))\" --subtype-count \"$((SLURM_ARRAY_TASK_ID % 2 + 1))\""
        ),
        "{exec}"
    );
    assert!(!exec.contains("--per-subtype-count"), "{exec}");

    // Run tasks 0, 1 and 3 under plain bash; the combine names the missing part.
    let task = |t: &str| {
        ok(&bash(&dir.join("slurm/shards.sbatch"), Some(t)));
    };
    for t in ["0", "1", "3"] {
        task(t);
    }
    assert!(dir.join("fold_1_k2.json").exists());
    let combine = bash(&dir.join("slurm/combine.sbatch"), None);
    user_error(&combine, &["fold 1: missing subtype count(s) 1 of 1..=2"]);
    // A resubmission runs only the missing part; then the combine equals a local cv.
    let stdout = dry_run();
    assert!(
        stdout.contains("1 of 4 fold parts to run: array 2"),
        "{stdout}"
    );
    task("2");
    ok(&bash(&dir.join("slurm/combine.sbatch"), None));
    assert_eq_local_cv(tmp.path(), &dir);

    // Bad part requests.
    user_error(
        &run(&args(
            "cv",
            &out,
            &["--folds", "2", "--fold", "0", "--subtype-count", "3"],
        )),
        &["--subtype-count 3 is out of range 1..=2"],
    );
    let o = run(&args("cv", &out, &["--folds", "2", "--subtype-count", "1"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fold"));
}

/// The job id after `prefix` in `sustain slurm`'s output.
fn job_id(stdout: &str, prefix: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' in: {stdout}"));
    line[prefix.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Waits until none of `jobs` is queued or running (10 minutes at most); fails
/// early when a job waits on a dependency that can never be satisfied.
fn wait_for(jobs: &[&str]) {
    let t0 = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%i %T %r", "-j", &jobs.join(",")])
            .output()
            .expect("squeue runs");
        let text = String::from_utf8_lossy(&q.stdout).into_owned();
        if !q.status.success() || text.trim().is_empty() {
            return;
        }
        if text.contains("DependencyNeverSatisfied") {
            let _ = Command::new("scancel").args(jobs).status();
            panic!("a job failed, so its dependent will never run:\n{text}");
        }
        if t0.elapsed() > Duration::from_secs(600) {
            let _ = Command::new("scancel").args(jobs).status();
            panic!("SLURM jobs {jobs:?} still queued after 10 minutes:\n{text}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Array task indices that wrote a log for array job `id`.
fn logged_tasks(logs: &Path, id: &str) -> Vec<usize> {
    let prefix = format!("shard_{id}_");
    let mut tasks: Vec<usize> = std::fs::read_dir(logs)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix(&prefix)?
                .strip_suffix(".out")?
                .parse()
                .ok()
        })
        .collect();
    tasks.sort_unstable();
    tasks
}

#[test]
fn real_slurm_cv_equals_a_local_run_and_resumes() {
    let have_sbatch = Command::new("sbatch").arg("--version").output().is_ok();
    if std::env::var("SUSTAIN_SLURM_TEST").as_deref() != Ok("1") || !have_sbatch {
        println!(
            "NOTICE: real SLURM test skipped (needs sbatch on PATH and SUSTAIN_SLURM_TEST=1; \
             .ci/run starts a single-node cluster)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("slurm_cv");
    let mut submit = args(
        "cv",
        &out,
        &["--folds", "4", "--cpus-per-task", "1", "--time", "00:10:00"],
    );
    submit.insert(0, "slurm".into());
    let stdout = ok(&run(&submit));
    let array = job_id(&stdout, "submitted array job ");
    let combine = job_id(&stdout, "submitted combine job ");
    assert!(
        stdout.contains(&format!("squeue -j {array},{combine}")),
        "{stdout}"
    );
    let local = tmp.path().join("local");
    ok(&run(&args("cv", &local, &["--folds", "4"])));
    wait_for(&[&array, &combine]);
    let logs = out.join("slurm/logs");
    assert_eq!(logged_tasks(&logs, &array), [0, 1, 2, 3]);
    let expected = std::fs::read(local.join("cv.json")).unwrap();
    let got = std::fs::read(out.join("cv.json")).unwrap_or_else(|e| {
        panic!(
            "no cv.json ({e}); combine log: {}",
            std::fs::read_to_string(logs.join(format!("combine_{combine}.err")))
                .unwrap_or_default()
        )
    });
    assert_eq!(expected, got, "SLURM cv.json differs from the local run");

    // A lost fold (a killed task): resubmission runs only that fold.
    std::fs::remove_file(out.join("fold_2.json")).unwrap();
    std::fs::remove_file(out.join("cv.json")).unwrap();
    let stdout = ok(&run(&submit));
    let array2 = job_id(&stdout, "submitted array job ");
    let combine2 = job_id(&stdout, "submitted combine job ");
    assert!(stdout.contains("(tasks 2)"), "{stdout}");
    assert!(read(&out.join("slurm/shards.sbatch")).contains("#SBATCH --array=2\n"));
    wait_for(&[&array2, &combine2]);
    assert_eq!(logged_tasks(&logs, &array2), [2]);
    assert_eq!(std::fs::read(out.join("cv.json")).unwrap(), expected);

    // Nothing missing: only the combine job is submitted.
    let stdout = ok(&run(&submit));
    assert!(
        stdout.contains("submitting only the combine job"),
        "{stdout}"
    );
    assert!(!stdout.contains("submitted array job"), "{stdout}");
    wait_for(&[&job_id(&stdout, "submitted combine job ")]);
    assert_eq!(std::fs::read(out.join("cv.json")).unwrap(), expected);

    // One task per subtype count of a fold, and a task really killed (scancel
    // right after submission, while it waits for a CPU): its combine job can never
    // run; resubmission runs only the killed part, and the result is unchanged.
    let parts = tmp.path().join("slurm_parts");
    let mut submit = args(
        "cv",
        &parts,
        &[
            "--folds",
            "4",
            "--per-subtype-count",
            "--cpus-per-task",
            "1",
            "--time",
            "00:10:00",
        ],
    );
    submit.insert(0, "slurm".into());
    let stdout = ok(&run(&submit));
    let array = job_id(&stdout, "submitted array job ");
    let combine = job_id(&stdout, "submitted combine job ");
    let killed = Command::new("scancel")
        .arg(format!("{array}_5"))
        .status()
        .expect("scancel runs");
    assert!(killed.success());
    wait_until_gone(&array);
    let _ = Command::new("scancel").arg(&combine).status();
    assert!(
        !parts.join("fold_2_k2.json").exists(),
        "task 5 (fold 2, 2 subtypes) ran before it could be killed"
    );
    assert!(!parts.join("cv.json").exists());
    let stdout = ok(&run(&submit));
    assert!(
        stdout.contains("1 of 8 fold parts to run: array 5"),
        "{stdout}"
    );
    let array2 = job_id(&stdout, "submitted array job ");
    let combine2 = job_id(&stdout, "submitted combine job ");
    wait_for(&[&array2, &combine2]);
    assert_eq!(logged_tasks(&parts.join("slurm/logs"), &array2), [5]);
    assert_eq!(std::fs::read(parts.join("cv.json")).unwrap(), expected);
}

/// Waits until job `id` (all its array tasks) has left the queue (10 minutes at
/// most).
fn wait_until_gone(id: &str) {
    let t0 = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", id])
            .output()
            .expect("squeue runs");
        if !q.status.success() || String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "job {id} still queued"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
