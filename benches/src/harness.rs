//! Alternating rounds, medians, the table and `target/bench/results.json`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quick,
    Full,
}

/// Whether bigger is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

pub struct Row {
    pub workload: String,
    pub unit: &'static str,
    pub reseau: f64,
    pub peer_name: &'static str,
    pub peer: Option<f64>,
    /// Median of the per-round reseau ÷ peer ratios; the target's
    /// direction says which way is good.
    pub ratio: Option<f64>,
    pub target: Option<(f64, Better)>,
}

impl Row {
    fn met(&self) -> Option<bool> {
        let (t, better) = self.target?;
        let v = self.ratio.unwrap_or(self.reseau);
        Some(match better {
            Better::Higher => v >= t,
            Better::Lower => v <= t,
        })
    }
}

pub struct Bench {
    pub mode: Mode,
    only: Vec<String>,
    rows: Vec<Row>,
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Bench {
    pub fn new(mode: Mode, only: Vec<String>) -> Bench {
        Bench { mode, only, rows: Vec::new() }
    }

    pub fn rounds(&self) -> usize {
        match self.mode {
            Mode::Quick => 5,
            Mode::Full => 9,
        }
    }

    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    pub fn header(&self) {
        println!("reseau-bench ({:?} mode) on {}", self.mode, machine());
        println!();
    }

    pub fn progress(&self, what: &str) {
        eprint!("\r\x1b[2K  running {what} ...");
        let _ = std::io::stderr().flush();
    }

    /// Run `ours` and `theirs` alternately for `rounds()` rounds; each
    /// returns one figure. Records medians and the median per-round ratio.
    #[allow(clippy::too_many_arguments)]
    pub fn compare(
        &mut self,
        workload: &str,
        unit: &'static str,
        peer_name: &'static str,
        target: Option<(f64, Better)>,
        ours: impl FnMut() -> f64,
        theirs: impl FnMut() -> f64,
    ) {
        let rounds = self.rounds();
        self.compare_in(rounds, workload, unit, peer_name, target, ours, theirs);
    }

    /// [`compare`](Bench::compare) over `rounds` rounds: more, shorter
    /// rounds for a workload whose single rounds are noisy, so that the
    /// median ratio settles.
    #[allow(clippy::too_many_arguments)]
    pub fn compare_in(
        &mut self,
        rounds: usize,
        workload: &str,
        unit: &'static str,
        peer_name: &'static str,
        target: Option<(f64, Better)>,
        mut ours: impl FnMut() -> f64,
        mut theirs: impl FnMut() -> f64,
    ) {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut ratios = Vec::new();
        for round in 0..rounds {
            self.progress(&format!("{workload} (round {}/{rounds})", round + 1));
            // Alternate which goes first, so neither always runs warm.
            let (x, y) = if round % 2 == 0 {
                let x = ours();
                (x, theirs())
            } else {
                let y = theirs();
                (ours(), y)
            };
            a.push(x);
            b.push(y);
            ratios.push(x / y);
        }
        let row = Row {
            workload: workload.to_string(),
            unit,
            reseau: median(&mut a),
            peer_name,
            peer: Some(median(&mut b)),
            ratio: Some(median(&mut ratios)),
            target,
        };
        self.print_row(&row);
        self.rows.push(row);
    }

    /// A figure with no peer (e.g. operations per second).
    pub fn solo(
        &mut self,
        workload: &str,
        unit: &'static str,
        target: Option<(f64, Better)>,
        mut run: impl FnMut() -> f64,
    ) {
        let mut a = Vec::new();
        for round in 0..self.rounds() {
            self.progress(&format!("{workload} (round {}/{})", round + 1, self.rounds()));
            a.push(run());
        }
        let row = Row {
            workload: workload.to_string(),
            unit,
            reseau: median(&mut a),
            peer_name: "-",
            peer: None,
            ratio: None,
            target,
        };
        self.print_row(&row);
        self.rows.push(row);
    }

    /// Record a row measured by the workload itself.
    pub fn record(&mut self, row: Row) {
        self.print_row(&row);
        self.rows.push(row);
    }

    fn print_row(&self, r: &Row) {
        eprint!("\r\x1b[2K");
        if self.rows.is_empty() {
            println!(
                "{:<44} {:>12} {:>12} {:<8} {:<14} {:>7} {:>9} {:>4}",
                "workload", "reseau", "peer", "unit", "peer is", "ratio", "target", "met"
            );
        }
        let target = r.target.map_or("-".to_string(), |(t, b)| {
            format!("{}{}", if b == Better::Higher { ">=" } else { "<=" }, fmt_num(t))
        });
        println!(
            "{:<44} {:>12} {:>12} {:<8} {:<14} {:>7} {:>9} {:>4}",
            r.workload,
            fmt_num(r.reseau),
            r.peer.map_or("-".into(), fmt_num),
            r.unit,
            r.peer_name,
            r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
            target,
            match r.met() {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        );
    }

    /// Write `target/bench/results.json`; returns how many targets were missed.
    pub fn finish(&self) -> usize {
        let mut json = String::from("{\n");
        let _ = writeln!(json, "  \"machine\": {:?},", machine());
        let _ = writeln!(json, "  \"mode\": \"{:?}\",", self.mode);
        json.push_str("  \"results\": [\n");
        for (i, r) in self.rows.iter().enumerate() {
            let num = |x: Option<f64>| {
                x.map_or("null".to_string(), |v| if v.is_finite() { format!("{v}") } else { "null".into() })
            };
            let _ = write!(
                json,
                "    {{\"workload\": {:?}, \"unit\": {:?}, \"reseau\": {}, \"peer\": {:?}, \"peer_value\": {}, \"ratio\": {}, \"target\": {}, \"target_direction\": {}, \"met\": {}}}",
                r.workload,
                r.unit,
                num(Some(r.reseau)),
                r.peer_name,
                num(r.peer),
                num(r.ratio),
                num(r.target.map(|t| t.0)),
                r.target
                    .map_or("null".to_string(), |t| format!("{:?}", if t.1 == Better::Higher { ">=" } else { "<=" })),
                r.met().map_or("null".to_string(), |m| m.to_string()),
            );
            json.push_str(if i + 1 < self.rows.len() { ",\n" } else { "\n" });
        }
        json.push_str("  ]\n}\n");
        let dir = target_dir().join("bench");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("results.json");
        match std::fs::write(&path, json) {
            Ok(()) => println!("\nresults: {}", path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        }
        let svg_path = dir.join("ratios.svg");
        let title = format!("reseau vs peers, {:?} mode: {}", self.mode, machine());
        match std::fs::write(&svg_path, crate::chart::svg(&self.rows, &title)) {
            Ok(()) => println!("chart:   {}", svg_path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", svg_path.display()),
        }
        self.rows.iter().filter(|r| r.met() == Some(false)).count()
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        // benches/ lives one level below the workspace root.
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target")
    })
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 1e7 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Cores, CPU, kernel and OpenSSL version, for the record.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}, {}", kernel.trim(), tls::openssl_version())
}

/// Thousands of connections need thousands of descriptors.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write/read one rlimit struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
