//! The real binary as a process: `serve` on fresh loopback ports with its log in a file,
//! killed when its handle is dropped, so that no server outlives a failed test.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ipamclaim_webhook::certs::{self, DevCerts};

use super::{plain_client, PATIENCE};

/// The binary under test: `cargo test`'s build, or `IPAMCLAIM_WEBHOOK_BIN` (to measure a
/// release build).
pub fn bin() -> PathBuf {
    match std::env::var_os("IPAMCLAIM_WEBHOOK_BIN") {
        Some(path) => PathBuf::from(path),
        None => assert_cmd::cargo::cargo_bin("ipamclaim-webhook"),
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A `serve` command being put together: its ports are chosen, its log file named.
pub struct Launch {
    /// The command; add flags and environment to it.
    pub cmd: Command,
    /// The port `--listen` is given (or that the caller gives it some other way).
    pub port: u16,
    /// The port `--probe-listen` is given (or ...).
    pub probe_port: u16,
    log: PathBuf,
}

impl Launch {
    /// `serve` with nothing but its log (`dir/server.log`) and a clean environment (no
    /// `RUST_LOG`, no `KUBECONFIG`, no `IPAMCLAIM_WEBHOOK_FIELD_VALIDATION`): the caller says
    /// where it listens.
    pub fn bare(dir: &Path) -> Launch {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .env_remove("RUST_LOG")
            .env_remove("KUBECONFIG")
            .env_remove("IPAMCLAIM_WEBHOOK_FIELD_VALIDATION");
        Launch {
            cmd,
            port: free_port(),
            probe_port: free_port(),
            log: dir.join("server.log"),
        }
    }

    /// [`Launch::bare`] listening on 127.0.0.1, serving `certs` (written into `dir`).
    pub fn serving(dir: &Path, certs: &DevCerts) -> Launch {
        certs.write_to(dir).expect("write certs");
        let mut launch = Launch::bare(dir);
        let (port, probe_port) = (launch.port, launch.probe_port);
        launch
            .cmd
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--probe-listen", &format!("127.0.0.1:{probe_port}")])
            .arg("--tls-cert")
            .arg(dir.join(certs::CERT_FILE))
            .arg("--tls-key")
            .arg(dir.join(certs::KEY_FILE));
        launch
    }

    /// Adds flags.
    pub fn args(mut self, args: &[&str]) -> Launch {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable (`RUST_LOG`, say).
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.cmd.env(key, value);
        self
    }

    /// Starts the process, without waiting for anything.
    pub fn spawn(mut self) -> Serving {
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&self.log).expect("log file"))
            .spawn()
            .expect("spawn the server");
        Serving {
            child,
            port: self.port,
            probe_port: self.probe_port,
            log: self.log,
        }
    }

    /// Starts the process and waits until `/healthz` answers on the probe port.
    pub async fn start(self) -> Serving {
        let mut serving = self.spawn();
        serving.wait_healthy().await;
        serving
    }
}

/// A running `serve`, killed when dropped.
pub struct Serving {
    child: Child,
    /// Where it serves reviews (on 127.0.0.1).
    pub port: u16,
    /// Where its probes and metrics answer (on 127.0.0.1).
    pub probe_port: u16,
    log: PathBuf,
}

impl Serving {
    /// Its address for reviews.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A URL on the probe port.
    pub fn probe_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.probe_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether `/healthz` answers 200; panics, with the log, if the process has exited.
    pub async fn healthy(&mut self) -> bool {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("the server exited ({status}):\n{}", self.log());
        }
        let url = self.probe_url("/healthz");
        matches!(plain_client().get(url).send().await, Ok(r) if r.status() == 200)
    }

    /// Polls `/healthz` until it answers 200, for at most [`PATIENCE`].
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while !self.healthy().await {
            assert!(Instant::now() < deadline, "never healthy:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `GET /metrics` on the probe port.
    pub async fn metrics(&self) -> String {
        super::get_metrics(&self.probe_url("/metrics")).await
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let pid = self.pid().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(kill.expect("run kill").success(), "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit, for at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM; asserts a clean exit within [`PATIENCE`].
    pub async fn stop(mut self) {
        self.sigterm();
        let status = self
            .wait_exit(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("still running:\n{}", self.log()));
        assert!(status.success(), "exit status {status}:\n{}", self.log());
    }

    /// Kills the process now and waits for it.
    pub fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.kill();
    }
}
