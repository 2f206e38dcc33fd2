//! What the end-to-end benchmarks share (`benches/load.rs`, `benches/streams.rs`): their
//! settings from the environment, the server processes they start, what they read from `/proc`,
//! the machine they ran on, and the generated blocks they write into BENCHMARKS.md.

#![allow(
    dead_code,
    reason = "each bench compiles this module on its own and uses part of it"
)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Send and Sync, so that the async benchmarks can return it from spawned tasks.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A number from the environment variable `name`, or `default` when it is unset.
pub fn env_number(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(value) => Ok(value
            .parse()
            .map_err(|_| format!("{name}={value}: not a number"))?),
        Err(_) => Ok(default),
    }
}

/// `BENCH_OUT`: where the report goes (default BENCHMARKS.md in the crate root; `-`: nowhere).
pub fn bench_out() -> Option<PathBuf> {
    match std::env::var("BENCH_OUT") {
        Ok(value) if value == "-" => None,
        Ok(value) => Some(PathBuf::from(value)),
        Err(_) => Some(crate_root().join("BENCHMARKS.md")),
    }
}

/// `BENCH_NOTE`: a line added under the report, e.g. what else the machine was doing.
pub fn bench_note() -> Option<String> {
    std::env::var("BENCH_NOTE").ok().filter(|n| !n.is_empty())
}

/// The load average line of `/proc/loadavg`.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

/// The crate's root: the servers run there (their confs name paths from it).
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/release/examples`, next to this binary's `target/release/deps`, unless
/// `BENCH_BINARIES` names another directory (to compare two builds).
pub fn examples_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("BENCH_BINARIES") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    Ok(profile.join("examples"))
}

// ---------------------------------------------------------------------------------------------
// Processes

/// The servers under test; killed when dropped, whatever happened.
pub struct Servers {
    pub children: Vec<(String, Child)>,
}

impl Servers {
    /// Starts `bin` with `args` and `env` (and `RUST_LOG=warn`), its output into `log`.
    pub fn spawn(
        &mut self,
        name: &str,
        bin: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<u32, Error> {
        if !bin.exists() {
            return Err(format!(
                "{} is missing: build the examples first (see `make bench`)",
                bin.display()
            )
            .into());
        }
        let log = fs::File::create(log)?;
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .current_dir(crate_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        Ok(pid)
    }

    /// Kills the server `pid` and waits for it to exit.
    pub fn stop(&mut self, pid: u32) -> Result<(), Error> {
        let at = self
            .children
            .iter()
            .position(|(_, child)| child.id() == pid)
            .ok_or("no such server")?;
        let (_, mut child) = self.children.swap_remove(at);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Fails, naming it, if a server has exited.
    pub fn check_alive(&mut self) -> Result<(), Error> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                return Err(format!("{name} exited early ({status}); see its log").into());
            }
        }
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to 20 s until something listens on `addr`, failing early if a server exited.
pub fn wait_for_port(addr: SocketAddr, servers: &mut Servers) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        servers.check_alive()?;
        sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on {addr} after 20 s").into())
}

/// Fails, naming the knob that moves it, when `addr` is taken.
pub fn ensure_free(addr: SocketAddr) -> Result<(), Error> {
    TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| format!("{addr} is taken ({e}); set BENCH_PORT_BASE").into())
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, Error> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at indices 11 and 12.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// The unit of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory of a process, MB: now (VmRSS) and its peak (VmHWM).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_mb: f64,
    pub hwm_mb: f64,
}

/// [`Memory`] of `pid`, from `/proc/<pid>/status`.
pub fn memory(pid: u32) -> Result<Memory, Error> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    Ok(Memory {
        rss_mb: field("VmRSS:"),
        hwm_mb: field("VmHWM:"),
    })
}

/// One counter of the mock's `GET /__mock/counters`.
pub fn mock_counter(mock: SocketAddr, name: &str) -> Result<u64, Error> {
    let mut stream = TcpStream::connect_timeout(&mock, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream
        .write_all(b"GET /__mock/counters HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").ok_or("bad response")?.1;
    let counters: serde_json::Value = serde_json::from_str(body)?;
    counters[name]
        .as_u64()
        .ok_or_else(|| format!("no counter {name}").into())
}

/// A goal's verdict, as the reports print it.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// The first line `program args` prints (stdout, then stderr), or nothing.
pub fn first_line_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|out| {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            text.lines().next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_default()
}

/// The machine, the tools (`rustc` and `tools`, each a version line), the commit and the load
/// average before and after a run, as Markdown list items.
pub fn machine(load_before: &str, load_after: &str, tools: &[String]) -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or("?".to_owned(), |kb| {
            format!("{:.0} GB", kb / 1024.0 / 1024.0)
        });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let loadavg = |text: &str| {
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut versions = vec![first_line_of("rustc", &["-V"])];
    versions.extend(tools.iter().cloned());
    format!(
        "- {model}, {cores} cores, {memory} RAM, Linux {}\n- {}\n- commit {}{}, {}\n- load average (1, 5, 15 min) before: {}, after: {} (other builds share these cores)",
        kernel.trim(),
        versions.join("; "),
        first_line_of("git", &["rev-parse", "--short", "HEAD"]),
        if first_line_of(
            "git",
            &["status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"],
        )
        .is_empty()
        {
            ""
        } else {
            " (with local changes)"
        },
        first_line_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        loadavg(load_before),
        loadavg(load_after),
    )
}

/// Replaces the block of `path` between the lines `<!-- {name}:begin ... -->` and
/// `<!-- {name}:end -->` with `report` (the rest of the file is left alone); appends the block
/// when the markers are missing, or writes a new file around it.
pub fn write_into(path: &Path, name: &str, report: &str) -> Result<(), Error> {
    let begin = format!("<!-- {name}:begin (written by benches/{name}.rs) -->");
    let end = format!("<!-- {name}:end -->");
    let block = format!("{begin}\n{report}\n{end}");
    let text = match fs::read_to_string(path) {
        Ok(old) => match (old.find(&begin), old.find(&end)) {
            (Some(at), Some(to)) if at < to => {
                format!("{}{block}{}", &old[..at], &old[to + end.len()..])
            }
            _ => format!("{old}\n{block}\n"),
        },
        Err(_) => format!("# Benchmarks\n\nProduced by `make bench`.\n\n{block}\n"),
    };
    fs::write(path, text)?;
    Ok(())
}
