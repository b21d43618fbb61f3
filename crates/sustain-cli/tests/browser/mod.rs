//! A real browser for the report tests: Debian's `chromium`, headless. Opens a
//! page, takes a screenshot and collects every console message (the report has no
//! scripts, so any message means something went wrong: a script error, a resource
//! it tried to load, a blocked request).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The chromium binary on PATH, if any.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// What the browser made of a page.
pub struct Visit {
    /// The screenshot (PNG), `size` pixels.
    pub screenshot: PathBuf,
    /// Console messages (one line each).
    pub console: Vec<String>,
    /// All of chromium's stderr, for failure messages.
    pub log: String,
}

/// Opens `page` in headless chromium at `size` (width, height); the screenshot goes
/// to `work/NAME.png`.
pub fn visit(browser: &Path, page: &Path, size: (u32, u32), work: &Path, name: &str) -> Visit {
    let screenshot = work.join(format!("{name}.png"));
    let profile = work.join(format!("{name}-profile"));
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Read stderr on a thread so a full pipe never blocks the browser.
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = reader.join().unwrap();
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    Visit {
        screenshot,
        console,
        log,
    }
}

/// The screenshot's pixels: (width, height, RGB triples).
pub fn pixels(png: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let img = image::open(png)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", png.display()))
        .to_rgb8();
    let (w, h) = img.dimensions();
    (w, h, img.pixels().map(|p| p.0).collect())
}

/// Number of distinct colours.
pub fn distinct_colours(px: &[[u8; 3]]) -> usize {
    px.iter().collect::<std::collections::HashSet<_>>().len()
}

/// Pixels within `tolerance` (per channel) of `colour`.
pub fn near(px: &[[u8; 3]], colour: [u8; 3], tolerance: u8) -> usize {
    px.iter()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= tolerance))
        .count()
}
