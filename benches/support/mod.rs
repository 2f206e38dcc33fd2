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
use std::os::unix::process::CommandExt as _;
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
#[derive(Default)]
pub struct Servers {
    pub children: Vec<(String, Child)>,
    /// Servers that fork workers (nginx), each the leader of its own process group: the whole
    /// group is killed with it, as its workers outlive a killed master.
    pub groups: Vec<u32>,
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
        let mut command = Command::new(bin);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn");
        self.start(name, command, log)
    }

    /// Starts nginx (a master and its workers) on `listen`, forwarding to `upstream` (see
    /// [`nginx_conf`]), with its conf, logs and temporary files in `dir`; waits until it listens
    /// and its workers run. Returns the pids of the master and of every worker.
    pub fn spawn_nginx(
        &mut self,
        nginx: &Nginx,
        dir: &Path,
        listen: SocketAddr,
        upstream: SocketAddr,
        buffering: bool,
    ) -> Result<Vec<u32>, Error> {
        fs::create_dir_all(dir)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let conf = dir.join("nginx.conf");
        fs::write(&conf, nginx_conf(dir, workers, listen, upstream, buffering))?;
        let mut command = Command::new(&nginx.binary);
        // `-e`: nginx writes to its default error log (under /var/log) before it reads the conf.
        command
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .process_group(0);
        let master = self.start("nginx", command, &dir.join("stderr.log"))?;
        self.groups.push(master);
        wait_for_port(listen, self)?;
        // The master listens before it forks its workers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let children = children_of(master)?;
            if children.len() >= workers {
                return Ok([master].into_iter().chain(children).collect());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nginx started {} of its {workers} workers; see {}",
                    children.len(),
                    dir.join("error.log").display()
                )
                .into());
            }
            self.check_alive()?;
            sleep(Duration::from_millis(50));
        }
    }

    /// Starts `command` in the crate's root, its output into `log`.
    fn start(&mut self, name: &str, mut command: Command, log: &Path) -> Result<u32, Error> {
        let log = fs::File::create(log)?;
        let child = command
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
        self.kill_group(pid);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Kills the process group that `pid` leads, if it was started as one.
    fn kill_group(&mut self, pid: u32) {
        if let Some(at) = self.groups.iter().position(|&leader| leader == pid) {
            self.groups.swap_remove(at);
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
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
        for leader in self.groups.clone() {
            self.kill_group(leader);
        }
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

/// [`cpu_ticks`] of every process of `pids` together.
pub fn total_cpu_ticks(pids: &[u32]) -> Result<u64, Error> {
    pids.iter().map(|&pid| cpu_ticks(pid)).sum()
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Result<Vec<u32>, Error> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Some(child) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Gone since the listing, or not ours to read: not a child of ours either way.
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // After the command name: state, then the parent's pid.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent == Some(pid) {
            children.push(child);
        }
    }
    children.sort_unstable();
    Ok(children)
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

/// [`memory`] of every process of `pids`, added up: for a master and its workers, an upper
/// bound, as the pages they share are counted once per process.
pub fn total_memory(pids: &[u32]) -> Result<Memory, Error> {
    let mut total = Memory::default();
    for &pid in pids {
        let one = memory(pid)?;
        total.rss_mb += one.rss_mb;
        total.hwm_mb += one.hwm_mb;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// nginx

/// The nginx binary of the nginx baseline.
pub struct Nginx {
    pub binary: PathBuf,
}

impl Nginx {
    /// `nginx` on the PATH, or Debian's `/usr/sbin/nginx` (not on a user's PATH); `None`, with
    /// a line saying that the nginx baseline is skipped, when there is neither.
    pub fn find() -> Option<Self> {
        let on_path = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nginx"))
                .find(|bin| bin.is_file())
        });
        let found = on_path.or_else(|| {
            let debian = PathBuf::from("/usr/sbin/nginx");
            debian.is_file().then_some(debian)
        });
        if found.is_none() {
            eprintln!(
                "nginx not found: the nginx baseline is skipped (`make bench-setup` installs it)"
            );
        }
        found.map(|binary| Self { binary })
    }

    /// `nginx -v`'s line, e.g. `nginx version: nginx/1.22.1`.
    pub fn version(&self) -> String {
        first_line_of(&self.binary.to_string_lossy(), &["-v"])
    }
}

/// A plain nginx `proxy_pass` of everything to `upstream`, as an operator would set it up for an
/// API: `workers` worker processes, keep-alive connections to the upstream (HTTP/1.1, up to 64
/// idle), and to callers without a limit on requests per connection (as the other proxies
/// measured), no access log. `buffering`: nginx's default, off to forward streamed events as they
/// come. Logs, pid file and temporary files stay in `dir`.
pub fn nginx_conf(
    dir: &Path,
    workers: usize,
    listen: SocketAddr,
    upstream: SocketAddr,
    buffering: bool,
) -> String {
    let dir = dir.display();
    let buffering = if buffering { "on" } else { "off" };
    format!(
        r#"# Written by benches/support/mod.rs: the nginx baseline.
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 8192;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream bench_upstream {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering {buffering};
        }}
    }}
}}
"#
    )
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
