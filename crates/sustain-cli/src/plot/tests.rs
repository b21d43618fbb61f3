use std::path::{Path, PathBuf};

use super::pvd::Pvd;
use super::*;

const NAMES: [&str; 12] = [
    "Hippocampus",
    "Entorhinal cortex",
    "Ventricles",
    "Precuneus",
    "ADAS-Cog 13",
    "Fusiform",
    "Middle temporal gyrus",
    "CSF amyloid-beta 1-42",
    "Whole brain",
    "Insula",
    "MMSE",
    "Posterior cingulate",
];

/// Biomarker names, events and panels of a synthetic PVD.
type Synthetic = (Vec<String>, Vec<(usize, usize, f64)>, Vec<PvdPanel>);

/// The PVD input of z-score events (the plot module's tests share it).
pub(super) fn z_input<'a>(
    names: &'a [String],
    events: &'a [(usize, usize, f64)],
    panels: &'a [PvdPanel],
) -> PvdInput<'a> {
    PvdInput {
        biomarker_value_names: &[],
        biomarker_names: names,
        events,
        value_name: "z",
        panels,
        per_row: 0,
    }
}

/// A synthetic PVD: `b` biomarkers, biomarker 0 with 2 levels and the others with 3
/// (z = 1, 2, 3), `s` subtypes, each with its own biomarker order and a near-diagonal
/// certainty around its sequence.
fn synthetic(s: usize, b: usize) -> Synthetic {
    let names: Vec<String> = (0..b)
        .map(|i| match NAMES.get(i) {
            Some(n) => n.to_string(),
            None => format!("Region {}", i + 1),
        })
        .collect();
    let mut events = Vec::new();
    for bm in 0..b {
        let levels = if bm == 0 { 2 } else { 3 };
        for l in 0..levels {
            events.push((bm, l, (l + 1) as f64));
        }
    }
    let n = events.len();
    let panels = (0..s)
        .map(|sub| {
            // Biomarker rank: a rotation of a scrambled order, different per subtype.
            let rank = |bm: usize| ((bm * 7 + 3) % b + sub * (b / s.max(1)).max(1)) % b;
            let mut seq: Vec<usize> = (0..n).collect();
            seq.sort_by(|&x, &y| {
                let key = |e: usize| {
                    rank(events[e].0) as f64 + 2.2 * events[e].1 as f64 * (b as f64 / 5.0)
                };
                key(x).total_cmp(&key(y)).then(x.cmp(&y))
            });
            let mut certainty = vec![vec![0.0; n]; n];
            for (pos, &e) in seq.iter().enumerate() {
                // Spread widens along the sequence, as in real fits.
                let spread = 0.35 + 1.2 * pos as f64 / n as f64;
                let w: Vec<f64> = (0..n)
                    .map(|k| (-((k as f64 - pos as f64) / spread).powi(2) / 2.0).exp())
                    .collect();
                let tot: f64 = w.iter().sum();
                for k in 0..n {
                    certainty[e][k] = w[k] / tot;
                }
            }
            PvdPanel {
                title: format!("Subtype {} (f = {:.2})", sub + 1, 1.0 / s as f64),
                certainty,
            }
        })
        .collect();
    (names, events, panels)
}

fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(name).tempdir().unwrap()
}

/// Checks the two files exist, the PNG has `size` (when given) and is not blank (some
/// white, more than `min_coloured` strongly coloured and some dark pixels); returns
/// the PNG's size.
fn check_files(
    paths: &[PathBuf],
    stem: &Path,
    size: Option<(u32, u32)>,
    min_coloured: usize,
) -> (u32, u32) {
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0], with_suffix(stem, "svg"));
    assert_eq!(paths[1], with_suffix(stem, "png"));
    let svg = std::fs::read_to_string(&paths[0]).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "bad SVG"
    );
    let img = image::open(&paths[1]).unwrap().to_rgb8();
    if let Some(size) = size {
        assert_eq!(img.dimensions(), size);
    }
    let total = img.pixels().len();
    let white = img
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c > 240))
        .count();
    let coloured = img
        .pixels()
        .filter(|p| {
            let mx = *p.0.iter().max().unwrap() as i32;
            let mn = *p.0.iter().min().unwrap() as i32;
            mx - mn > 100
        })
        .count();
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
    assert!(
        white > total / 10,
        "too few white pixels: {white} of {total}"
    );
    assert!(
        coloured > min_coloured,
        "too few coloured pixels: {coloured} of {total}"
    );
    assert!(
        dark > 200,
        "too few dark (text, axes) pixels: {dark} of {total}"
    );
    // No temporary file is left behind.
    let dir = paths[1].parent().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp."), "temporary file left: {name}");
    }
    img.dimensions()
}

/// Draws twice (same stem and another folder) and checks the bytes are identical.
fn check_redraw(paths: &[PathBuf], redraw: impl Fn(&Path) -> Vec<PathBuf>) {
    let first: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let again = redraw(&paths[0].with_extension(""));
    assert_eq!(again, paths);
    let other = scratch("plot-redraw");
    let elsewhere = redraw(&other.path().join("fig"));
    for (i, p) in again.iter().chain(elsewhere.iter()).enumerate() {
        assert!(
            std::fs::read(p).unwrap() == first[i % 2],
            "redraw of {} differs",
            p.display()
        );
    }
}

fn pvd_case(s: usize, b: usize) {
    let (names, events, panels) = synthetic(s, b);
    let input = z_input(&names, &events, &panels);
    let dir = scratch("plot-pvd");
    let stem = dir.path().join("pvd");
    let paths = draw_pvd(&stem, &input).unwrap();
    let size = Pvd::new(&input).unwrap().size();
    let (w, h) = check_files(&paths, &stem, Some(size), 2000);
    // Panels side by side (up to 4 a row), each at least 300 px wide; rows at least
    // 19 px high.
    let per_row = s.div_ceil(s.div_ceil(4));
    assert!(w >= 300 * per_row as u32, "{w} px wide for {s} subtypes");
    assert!(
        h >= 19 * b as u32 * s.div_ceil(4) as u32,
        "{h} px high for {b} biomarkers"
    );
    assert!(w <= 2600 && h <= 3000, "figure too large: {w} x {h}");
    check_redraw(&paths, |st| draw_pvd(st, &input).unwrap());
}

#[test]
fn plot_pvd_3_subtypes_5_biomarkers() {
    let (_, events, _) = synthetic(3, 5);
    assert_eq!(events.len(), 14);
    pvd_case(3, 5);
}

#[test]
fn plot_pvd_1_subtype() {
    pvd_case(1, 5);
}

#[test]
fn plot_pvd_8_subtypes() {
    pvd_case(8, 12);
}

#[test]
fn plot_pvd_50_biomarkers() {
    pvd_case(4, 50);
}

#[test]
fn plot_pvd_rejects_bad_shapes() {
    let (names, events, mut panels) = synthetic(2, 5);
    panels[1].certainty.pop();
    let input = z_input(&names, &events, &panels);
    let dir = scratch("plot-bad");
    let stem = dir.path().join("bad");
    let e = draw_pvd(&stem, &input).unwrap_err();
    assert!(e.to_string().contains("bad.svg"), "{e}");
    assert!(e.to_string().contains("panel 2"), "{e}");
    assert!(!with_suffix(&stem, "png").exists());

    let events_bad = vec![(7, 0, 1.0); events.len()];
    let (_, _, panels) = synthetic(2, 5);
    let input = z_input(&names, &events_bad, &panels);
    assert!(draw_pvd(&stem, &input)
        .unwrap_err()
        .to_string()
        .contains("biomarker 7"));
}

#[test]
fn plot_missing_folder_names_file() {
    let dir = scratch("plot-missing");
    let stem = dir.path().join("no/such/folder/trace");
    let e = draw_traces(&stem, "t", &[vec![1.0, 2.0]]).unwrap_err();
    assert!(e.to_string().contains("trace.svg"), "{e}");
}

fn chains(n_chains: usize, len: usize) -> Vec<Vec<f64>> {
    (0..n_chains)
        .map(|c| {
            let mut state = 12345u64 + c as u64 * 977;
            (0..len)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                    let t = i as f64 / len as f64;
                    -2400.0 + 400.0 * (1.0 - (-t * (8.0 + c as f64)).exp()) + 12.0 * noise
                })
                .collect()
        })
        .collect()
}

#[test]
fn plot_traces() {
    let dir = scratch("plot-traces");
    let stem = dir.path().join("trace");
    let ch = chains(4, 3000);
    let paths = draw_traces(&stem, "MCMC trace, 2 subtypes", &ch).unwrap();
    check_files(&paths, &stem, Some((960, 540)), 2000);
    check_redraw(&paths, |st| {
        draw_traces(st, "MCMC trace, 2 subtypes", &ch).unwrap()
    });
}

#[test]
fn plot_traces_long_and_non_finite() {
    let dir = scratch("plot-traces-long");
    let stem = dir.path().join("trace");
    let mut ch = chains(2, 200_000);
    ch[0][0] = f64::NEG_INFINITY;
    ch[1][5] = f64::NAN;
    let paths = draw_traces(&stem, "long", &ch).unwrap();
    check_files(&paths, &stem, Some((960, 540)), 2000);
    // Decimated: the SVG stays small.
    assert!(std::fs::metadata(&paths[0]).unwrap().len() < 1_000_000);
    assert!(draw_traces(&stem, "none", &[]).is_err());
}

fn cvic_data() -> (Vec<f64>, Vec<Vec<f64>>) {
    let cvic = vec![10240.5, 10012.3, 9987.9, 9991.2];
    let folds = (0..10)
        .map(|i| {
            (0..4)
                .map(|s| {
                    -1020.0 + 20.0 * (1.0 - (-(s as f64)).exp()) + ((i * 37 + s * 11) % 17) as f64
                        - 8.0
                })
                .collect()
        })
        .collect();
    (cvic, folds)
}

#[test]
fn plot_cvic() {
    let dir = scratch("plot-cvic");
    let stem = dir.path().join("cvic");
    let (cvic, folds) = cvic_data();
    let paths = draw_cvic(&stem, &cvic, &folds).unwrap();
    check_files(&paths, &stem, Some((1100, 500)), 500);
    check_redraw(&paths, |st| draw_cvic(st, &cvic, &folds).unwrap());
    // One subtype count and one fold also draw.
    let paths = draw_cvic(&stem, &[5.0], &[vec![-3.0]]).unwrap();
    check_files(&paths, &stem, Some((1100, 500)), 40);
}

#[test]
fn plot_fmt_num() {
    assert_eq!(fmt_num(1.0, 2), "1");
    assert_eq!(fmt_num(1.5, 2), "1.5");
    assert_eq!(fmt_num(0.1 + 0.2, 2), "0.3");
    assert_eq!(fmt_num(-0.0001, 2), "0");
}

/// Writes the sample figures to the folder named by `SUSTAIN_PLOT_SAMPLES`, if set.
#[test]
fn plot_samples() {
    let Some(dir) = std::env::var_os("SUSTAIN_PLOT_SAMPLES") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (s, b) in [(3, 5), (1, 5), (8, 12), (4, 50), (2, 20)] {
        let (names, events, panels) = synthetic(s, b);
        let input = z_input(&names, &events, &panels);
        draw_pvd(&dir.join(format!("pvd_{s}x{b}")), &input).unwrap();
    }
    draw_traces(
        &dir.join("traces"),
        "MCMC trace, 2 subtypes",
        &chains(4, 3000),
    )
    .unwrap();
    let (cvic, folds) = cvic_data();
    draw_cvic(&dir.join("cvic"), &cvic, &folds).unwrap();
}
