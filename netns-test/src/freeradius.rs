//! `freeradius -X` with a private configuration, for interop tests: a copy (`cp -a`, which keeps
//! the symlinks of `mods-enabled/` and `sites-enabled/` and the ownership) of
//! [`SYSTEM_CONFIG`] in `<dir>/raddb`, changed as a [`Config`] says (lines of `radiusd.conf`
//! replaced, `sites-enabled/` emptied, files written or appended to), then run in the current
//! namespace with its output in `<dir>/radiusd.log` and `<dir>/stderr.log` until it logs
//! `Ready to process requests`. Killed when the [`FreeRadius`] guard drops (also on a panic,
//! when its log is printed); the directory goes with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon.
pub const PROGRAM: &str = "/usr/sbin/freeradius";
/// The system configuration the private one is copied from.
pub const SYSTEM_CONFIG: &str = "/etc/freeradius/3.0";
/// How long the daemon may take to become ready.
const READY_LIMIT: Duration = Duration::from_secs(15);

/// Whether FreeRADIUS (the program and its system configuration) is installed.
#[must_use]
pub fn installed() -> bool {
    Path::new(SYSTEM_CONFIG).join("radiusd.conf").exists() && Path::new(PROGRAM).exists()
}

/// A fresh, empty directory `<temp>/<prefix>-<pid>-<name>`: not a 0700 temporary one, as
/// freeradius drops to its own user.
///
/// # Panics
/// When it cannot be made.
#[must_use]
pub fn work_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How the private configuration differs from the system one.
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    lines: Vec<(String, String)>,
    clear_sites: bool,
    files: Vec<(PathBuf, String, bool)>,
}

impl Config {
    /// A configuration in `dir` (which must exist; it is removed when the daemon's guard
    /// drops) with `proxy_requests = no` (no proxy listener on random ports).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            lines: vec![("proxy_requests".into(), "proxy_requests = no".into())],
            clear_sites: false,
            files: Vec::new(),
        }
    }

    /// Replaces each line of `radiusd.conf` that starts with `key` (after its indentation)
    /// by `line`.
    #[must_use]
    pub fn radiusd_line(mut self, key: &str, line: &str) -> Config {
        self.lines.push((key.into(), line.into()));
        self
    }

    /// Removes every site from `sites-enabled/` (the test writes its own).
    #[must_use]
    pub fn clear_sites_enabled(mut self) -> Config {
        self.clear_sites = true;
        self
    }

    /// Writes `contents` to `path` (relative to the configuration directory, e.g.
    /// `mods-enabled/eap` or `clients.conf`); a symlink there is replaced by the file.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>, contents: impl Into<String>) -> Config {
        self.files.push((path.into(), contents.into(), false));
        self
    }

    /// Appends `contents` to the file at `path` (relative to the configuration directory).
    #[must_use]
    pub fn append(mut self, path: impl Into<PathBuf>, contents: impl Into<String>) -> Config {
        self.files.push((path.into(), contents.into(), true));
        self
    }

    /// Writes the configuration and starts the daemon; returns once it is ready.
    ///
    /// # Panics
    /// When the configuration cannot be written, or the daemon exits or is not ready within
    /// 15 s (with its log): this is a test harness, its failures are test failures.
    #[must_use]
    pub fn start(self) -> FreeRadius {
        let dir = self.dir;
        let raddb = dir.join("raddb");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(SYSTEM_CONFIG)
            .arg(&raddb)
            .status()
            .unwrap();
        assert!(ok.success(), "copying {SYSTEM_CONFIG} failed");

        let conf = raddb.join("radiusd.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        let text: Vec<&str> = text
            .lines()
            .map(|l| {
                self.lines
                    .iter()
                    .find(|(key, _)| l.trim_start().starts_with(key.as_str()))
                    .map_or(l, |(_, line)| line.as_str())
            })
            .collect();
        std::fs::write(&conf, text.join("\n")).unwrap();

        if self.clear_sites {
            for entry in std::fs::read_dir(raddb.join("sites-enabled")).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        for (path, contents, append) in &self.files {
            let path = raddb.join(path);
            if *append {
                let mut text = std::fs::read_to_string(&path).unwrap();
                text.push_str(contents);
                std::fs::write(&path, text).unwrap();
            } else {
                // Not through a symlink into the copy's mods-available/ or sites-available/.
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                    std::fs::remove_file(&path).unwrap();
                }
                std::fs::write(&path, contents).unwrap();
            }
        }

        let child = Command::new(PROGRAM)
            .arg("-X")
            .arg("-d")
            .arg(&raddb)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("radiusd.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("cannot run freeradius");
        let mut fr = FreeRadius { dir, child };
        let started = Instant::now();
        while !fr.log().contains("Ready to process requests") {
            if let Some(status) = fr.child.try_wait().unwrap() {
                panic!("freeradius exited ({status}); log:\n{}", fr.log());
            }
            assert!(
                started.elapsed() < READY_LIMIT,
                "freeradius not ready; log:\n{}",
                fr.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        fr
    }
}

/// A running `freeradius -X`; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct FreeRadius {
    dir: PathBuf,
    child: Child,
}

impl FreeRadius {
    /// What it wrote so far: its standard output, then its standard error.
    #[must_use]
    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("radiusd.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default());
        s
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            println!("freeradius log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
