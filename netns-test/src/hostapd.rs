//! hostapd as a RADIUS server with its internal EAP server (`driver=none`), for interop tests:
//! a private configuration in a directory (`clients` with the shared secret for 127.0.0.1,
//! `eap_user`, `hostapd.conf`) as a [`Config`] says, then `hostapd -dd` in the current
//! namespace with its output in `<dir>/hostapd.log` and `<dir>/stderr.log` until it logs
//! `Setup of interface done`. Killed when the [`Hostapd`] guard drops (also on a panic, when
//! its log is printed); the directory goes with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon.
pub const PROGRAM: &str = "/usr/sbin/hostapd";
/// How long the daemon may take to become ready.
const READY_LIMIT: Duration = Duration::from_secs(15);

/// Whether hostapd is installed.
#[must_use]
pub fn installed() -> bool {
    Path::new(PROGRAM).exists()
}

/// The private configuration.
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    secret: String,
    eap_user: String,
    port: Option<u16>,
    interface: String,
    server_id: Option<String>,
    extra: String,
}

impl Config {
    /// A configuration in `dir` (made if missing; removed when the daemon's guard drops):
    /// RADIUS clients 127.0.0.1/32 with `secret`, `eap_user` as the EAP user file, on a free
    /// UDP port of 127.0.0.1, `interface=lo`, no `server_id`.
    #[must_use]
    pub fn new(
        dir: impl Into<PathBuf>,
        secret: impl AsRef<[u8]>,
        eap_user: impl Into<String>,
    ) -> Config {
        Config {
            dir: dir.into(),
            secret: String::from_utf8_lossy(secret.as_ref()).into_owned(),
            eap_user: eap_user.into(),
            port: None,
            interface: "lo".into(),
            server_id: None,
            extra: String::new(),
        }
    }

    /// Listens on this RADIUS authentication port instead of a free one.
    #[must_use]
    pub fn port(mut self, port: u16) -> Config {
        self.port = Some(port);
        self
    }

    /// The `interface=` line (with `driver=none` only a name).
    #[must_use]
    pub fn interface(mut self, name: &str) -> Config {
        self.interface = name.into();
        self
    }

    /// Adds `server_id=<id>`.
    #[must_use]
    pub fn server_id(mut self, id: &str) -> Config {
        self.server_id = Some(id.into());
        self
    }

    /// Appends `lines` to `hostapd.conf` (e.g. TLS certificate paths, `fragment_size=`), and a
    /// newline if they do not end with one.
    #[must_use]
    pub fn lines(mut self, lines: &str) -> Config {
        self.extra.push_str(lines);
        if !lines.ends_with('\n') {
            self.extra.push('\n');
        }
        self
    }

    /// Writes the configuration and starts the daemon; returns once it is ready.
    ///
    /// # Panics
    /// When the configuration cannot be written, or the daemon exits or is not ready within
    /// 15 s (with its log): this is a test harness, its failures are test failures.
    #[must_use]
    pub fn start(self) -> Hostapd {
        let dir = self.dir;
        std::fs::create_dir_all(&dir).unwrap();
        // A free port: bind, read it, release it for hostapd.
        let port = self.port.unwrap_or_else(|| {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let p = |name: &str| dir.join(name);
        std::fs::write(p("clients"), format!("127.0.0.1/32 {}\n", self.secret)).unwrap();
        std::fs::write(p("eap_user"), &self.eap_user).unwrap();
        let server_id = self
            .server_id
            .map(|id| format!("server_id={id}\n"))
            .unwrap_or_default();
        std::fs::write(
            p("hostapd.conf"),
            format!(
                "driver=none\ninterface={}\nlogger_stdout=-1\nlogger_stdout_level=0\n\
                 radius_server_clients={}\nradius_server_auth_port={port}\n\
                 eap_server=1\neap_user_file={}\n{server_id}{}",
                self.interface,
                p("clients").display(),
                p("eap_user").display(),
                self.extra
            ),
        )
        .unwrap();

        let child = Command::new(PROGRAM)
            .arg("-dd")
            .arg(p("hostapd.conf"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(p("hostapd.log")).unwrap())
            .stderr(std::fs::File::create(p("stderr.log")).unwrap())
            .spawn()
            .expect("cannot run hostapd");
        let mut h = Hostapd { port, dir, child };
        let started = Instant::now();
        while !h.log().contains("Setup of interface done") {
            if let Some(status) = h.child.try_wait().unwrap() {
                panic!("hostapd exited ({status}); log:\n{}", h.log());
            }
            assert!(
                started.elapsed() < READY_LIMIT,
                "hostapd not ready; log:\n{}",
                h.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        h
    }
}

/// A running `hostapd -dd`; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct Hostapd {
    /// Its RADIUS authentication port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl Hostapd {
    /// What it wrote so far: its standard output (the `-dd` log), then its standard error.
    #[must_use]
    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("hostapd.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default());
        s
    }
}

impl Drop for Hostapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            println!("hostapd log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
