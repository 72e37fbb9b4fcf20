//! A real control plane for the integration tests, envtest-style: etcd and kube-apiserver
//! on free loopback ports in a temporary directory, one per test binary.
//!
//! Binaries come from `KUBEBUILDER_ASSETS` (`make test` sets it from `hack/envtest.sh`).
//! Without them the tests fail and say how to get them; they never skip.
//!
//! Both processes die with the test process, also on panic or Ctrl-C: they are started
//! from one long-lived owner thread with `PR_SET_PDEATHSIG`, so the kernel kills them when
//! that thread (and so the process) goes away.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub const ADMIN_TOKEN: &str = "tfdrift-envtest-admin-token";

/// The shared control plane of this test binary.
pub struct ControlPlane {
    pub url: String,
    pub dir: PathBuf,
    /// A kubeconfig with admin rights (for kubectl and the operator under test).
    pub kubeconfig: PathBuf,
    owner: std::sync::Mutex<mpsc::Sender<OwnerCmd>>,
    /// PID of the running kube-apiserver (0 while stopped), for benchmarks.
    apiserver_pid: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

enum OwnerCmd {
    StopApiserver(mpsc::Sender<()>),
    StartApiserver(mpsc::Sender<Result<(), String>>),
}

/// The control plane, started on first use.
pub fn control_plane() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(|| {
        ControlPlane::start().unwrap_or_else(|e| panic!("cannot start the test control plane: {e}"))
    })
}

fn assets() -> Result<PathBuf, String> {
    let how = "set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd: \
               `export KUBEBUILDER_ASSETS=$(hack/envtest.sh)` (builds them on Debian/Ubuntu), \
               or use setup-envtest; `make test` does this for you";
    let dir = std::env::var_os("KUBEBUILDER_ASSETS")
        .ok_or_else(|| format!("KUBEBUILDER_ASSETS is not set: {how}"))?;
    let dir = PathBuf::from(dir);
    for bin in ["kube-apiserver", "etcd"] {
        if !dir.join(bin).is_file() {
            return Err(format!("{} has no {bin}: {how}", dir.display()));
        }
    }
    Ok(dir)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Kills the child when the spawning thread dies: no orphans whatever ends the tests.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    std::fs::File::create(dir.join(name))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// The minor version of a kube-apiserver binary (`Kubernetes v1.20.2` → 20).
fn apiserver_minor(bin: &Path) -> Result<u32, String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("v1."))
        .and_then(|rest| rest.split('.').next())
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot read the version of {}: {text:?}", bin.display()))
}

struct Layout {
    assets: PathBuf,
    minor: u32,
    dir: PathBuf,
    etcd_url: String,
    apiserver_port: u16,
}

impl Layout {
    fn apiserver(&self) -> Command {
        let d = &self.dir;
        let mut cmd = Command::new(self.assets.join("kube-apiserver"));
        cmd.args([
            format!("--etcd-servers={}", self.etcd_url),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", self.apiserver_port),
            format!("--cert-dir={}", d.join("certs").display()),
            format!("--token-auth-file={}", d.join("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", d.join("sa.pub").display()),
            format!(
                "--service-account-signing-key-file={}",
                d.join("sa.key").display()
            ),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--endpoint-reconciler-type=none".into(),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ])
        .stdin(Stdio::null())
        .stdout(log_file(d, "kube-apiserver.stdout"))
        // Before 1.24 an unauthenticated HTTP port listened on 8080 unless disabled.
        .args(if self.minor < 24 {
            vec!["--insecure-port=0"]
        } else {
            vec![]
        })
        .stderr(log_file(d, "kube-apiserver.log"));
        cmd
    }
}

impl ControlPlane {
    fn start() -> Result<ControlPlane, String> {
        let assets = assets()?;
        let dir = tempfile::Builder::new()
            .prefix("tfdrift-envtest-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            // The control plane lives as long as the process; the OS temp cleaner owns it after.
            .keep();
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin,\"system:masters\"\n"),
        )
        .map_err(|e| format!("tokens.csv: {e}"))?;
        let key = dir.join("sa.key");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("openssl (apt-get install openssl): {e}"))?;
        if !status.success() {
            return Err("openssl genrsa failed".into());
        }
        let status = Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(dir.join("sa.pub"))
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("openssl: {e}"))?;
        if !status.success() {
            return Err("openssl rsa -pubout failed".into());
        }

        let etcd_port = free_port();
        let peer_port = free_port();
        let layout = Layout {
            minor: apiserver_minor(&assets.join("kube-apiserver"))?,
            assets: assets.clone(),
            dir: dir.clone(),
            etcd_url: format!("http://127.0.0.1:{etcd_port}"),
            apiserver_port: free_port(),
        };
        let url = format!("https://127.0.0.1:{}", layout.apiserver_port);
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, admin_kubeconfig(&url, ADMIN_TOKEN))
            .map_err(|e| format!("kubeconfig: {e}"))?;

        let (tx, rx) = mpsc::channel::<OwnerCmd>();
        let apiserver_pid = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let pid_slot = apiserver_pid.clone();
        let set_pid = move |c: &Option<Child>| {
            pid_slot.store(
                c.as_ref().map_or(0, Child::id),
                std::sync::atomic::Ordering::Relaxed,
            )
        };
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("envtest-owner".into())
            .spawn(move || {
                let mut etcd_cmd = Command::new(layout.assets.join("etcd"));
                etcd_cmd
                    .args([
                        "--data-dir".into(),
                        layout.dir.join("etcd").display().to_string(),
                        "--listen-client-urls".into(),
                        layout.etcd_url.clone(),
                        "--advertise-client-urls".into(),
                        layout.etcd_url.clone(),
                        "--listen-peer-urls".into(),
                        format!("http://127.0.0.1:{peer_port}"),
                        "--initial-advertise-peer-urls".into(),
                        format!("http://127.0.0.1:{peer_port}"),
                        "--initial-cluster".into(),
                        format!("default=http://127.0.0.1:{peer_port}"),
                        "--log-level".into(),
                        "warn".into(),
                    ])
                    .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH)
                    .stdin(Stdio::null())
                    .stdout(log_file(&layout.dir, "etcd.stdout"))
                    .stderr(log_file(&layout.dir, "etcd.log"));
                let spawn = |cmd: &mut Command, what: &str| {
                    die_with_parent(cmd)
                        .spawn()
                        .map_err(|e| format!("cannot start {what}: {e}"))
                };
                let mut etcd: Child = match spawn(&mut etcd_cmd, "etcd") {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut apiserver: Option<Child> =
                    match spawn(&mut layout.apiserver(), "kube-apiserver") {
                        Ok(c) => Some(c),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            let _ = etcd.kill();
                            return;
                        }
                    };
                set_pid(&apiserver);
                let _ = ready_tx.send(Ok(()));
                // Serve stop/restart requests for the life of the process.
                while let Ok(cmd) = rx.recv() {
                    match cmd {
                        OwnerCmd::StopApiserver(done) => {
                            if let Some(mut c) = apiserver.take() {
                                let _ = c.kill();
                                let _ = c.wait();
                            }
                            set_pid(&apiserver);
                            let _ = done.send(());
                        }
                        OwnerCmd::StartApiserver(done) => {
                            let result = if apiserver.is_some() {
                                Ok(())
                            } else {
                                spawn(&mut layout.apiserver(), "kube-apiserver")
                                    .map(|c| apiserver = Some(c))
                            };
                            set_pid(&apiserver);
                            let _ = done.send(result);
                        }
                    }
                }
                // Unreachable in practice (the sender is static); if it happens, clean up.
                if let Some(mut c) = apiserver {
                    let _ = c.kill();
                }
                let _ = etcd.kill();
            })
            .map_err(|e| format!("owner thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "owner thread died".to_string())??;

        let cp = ControlPlane {
            url,
            dir,
            kubeconfig,
            owner: std::sync::Mutex::new(tx),
            apiserver_pid,
        };
        cp.wait_ready(Duration::from_secs(90))?;
        Ok(cp)
    }

    /// Polls `/readyz` until it answers 200 or the deadline passes. Blocking; callable from
    /// inside a test's runtime (it polls from a thread of its own).
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        std::thread::scope(|s| s.spawn(|| self.wait_ready_blocking(timeout)).join())
            .map_err(|_| "readiness poller panicked".to_string())?
    }

    fn wait_ready_blocking(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            let attempt = rt.block_on(async {
                let client = self.client().await.map_err(|e| e.to_string())?;
                let req = http::Request::get("/readyz")
                    .body(Vec::new())
                    .map_err(|e| e.to_string())?;
                tokio::time::timeout(Duration::from_secs(5), client.request_text(req))
                    .await
                    .map_err(|_| "timeout".to_string())?
                    .map_err(|e| e.to_string())
            });
            match attempt {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => last = body,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.join("kube-apiserver.log")).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(format!(
            "kube-apiserver not ready after {timeout:?}: {last}\n--- kube-apiserver.log (tail) ---\n{tail}"
        ))
    }

    /// An admin client, bound to the caller's tokio runtime.
    pub async fn client(&self) -> kube::Result<Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    pub fn apiserver_pid(&self) -> u32 {
        self.apiserver_pid
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Kills kube-apiserver; etcd keeps running.
    pub fn stop_apiserver(&self) {
        let (tx, rx) = mpsc::channel();
        self.owner
            .lock()
            .unwrap()
            .send(OwnerCmd::StopApiserver(tx))
            .unwrap();
        rx.recv().unwrap();
    }

    /// Starts kube-apiserver again on the same port and etcd, and waits until ready.
    pub fn start_apiserver(&self) {
        let (tx, rx) = mpsc::channel();
        self.owner
            .lock()
            .unwrap()
            .send(OwnerCmd::StartApiserver(tx))
            .unwrap();
        rx.recv().unwrap().unwrap();
        self.wait_ready(Duration::from_secs(90)).unwrap();
    }

    /// Runs kubectl against this control plane; panics with its output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_output(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl on PATH")
    }

    /// A kubeconfig for `token` (a ServiceAccount's, say) on this control plane.
    pub fn kubeconfig_for_token(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.join(format!("kubeconfig-{name}"));
        std::fs::write(&path, admin_kubeconfig(&self.url, token)).unwrap();
        path
    }
}

fn admin_kubeconfig(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: user\n    namespace: default\ncurrent-context: envtest\n"
    )
}

pub async fn client_from_kubeconfig(path: &Path) -> kube::Result<Client> {
    let kc = Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(kube::Error::InferKubeconfig)?;
    config.read_timeout = Some(Duration::from_secs(60));
    Client::try_from(config)
}

/// A fresh namespace for one test; deleted (best effort) when dropped. There is no
/// namespace controller here, so a deleted namespace stays Terminating: names are unique.
pub struct TestNamespace {
    pub name: String,
}

pub async fn namespace(client: &Client, prefix: &str) -> TestNamespace {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{prefix}-{}-{n}", std::process::id());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    TestNamespace { name }
}

impl TestNamespace {
    pub async fn delete(self, client: &Client) {
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await;
    }
}

/// Waits until the wall clock enters the next second. managedFields times have
/// one-second resolution; a change made in the very second of the operator's own last
/// write cannot be told apart from one before it.
pub async fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    };
    let start = now();
    while now() == start {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes; the panic says what was awaited.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tests that stop kube-apiserver take this exclusively; every other test shares it.
pub static APISERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// `tfdrift run` as a child process against the control plane; SIGKILLed on drop.
pub struct Operator {
    child: Option<Child>,
    pub identity: String,
    pub metrics_port: u16,
    pub probe_port: u16,
    pub log: PathBuf,
}

impl Operator {
    /// Starts the operator with `args` after the defaults (kubeconfig, free ports).
    pub fn start(cp: &ControlPlane, identity: &str, args: &[&str]) -> Operator {
        Self::start_with_kubeconfig(cp, &cp.kubeconfig, identity, args)
    }

    pub fn start_with_kubeconfig(
        cp: &ControlPlane,
        kubeconfig: &Path,
        identity: &str,
        args: &[&str],
    ) -> Operator {
        let metrics_port = free_port();
        let probe_port = free_port();
        let log = cp.dir.join(format!("operator-{identity}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfdrift"));
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--metrics-bind-address",
                &format!("127.0.0.1:{metrics_port}"),
                "--health-probe-bind-address",
                &format!("127.0.0.1:{probe_port}"),
                "--identity",
                identity,
                "--log-format",
                "json",
            ])
            .args(args)
            .env("RUST_LOG", "info,tfdrift=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(&log)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        let child = die_with_parent(&mut cmd)
            .spawn()
            .expect("start tfdrift run");
        Operator {
            child: Some(child),
            identity: identity.to_owned(),
            metrics_port,
            probe_port,
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits for the process to exit (polling, bounded) and returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!(
                    "operator {} did not exit within {timeout:?}\n{}",
                    self.identity,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        http_get(port, path).await
    }

    /// The value of one metric series, e.g. `tfdrift_leader` or
    /// `tfdrift_reconcile_total{group="apps",kind="Deployment",result="drifted"}`; None if absent.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = http_get(self.metrics_port, "/metrics").await?;
        body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    pub async fn metrics_text(&self) -> String {
        http_get(self.metrics_port, "/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    pub async fn ready(&self) -> bool {
        matches!(http_get(self.probe_port, "/readyz").await, Some((200, _)))
    }

    /// Sum of `tfdrift_reconcile_total` over results for `kind`: reconciles completed.
    pub async fn reconciles(&self, kind: &str) -> f64 {
        let text = self.metrics_text().await;
        let of_kind = format!(",kind=\"{kind}\",");
        text.lines()
            .filter(|l| l.starts_with("tfdrift_reconcile_total{") && l.contains(&of_kind))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn wait_ready(&self) {
        let id = self.identity.clone();
        eventually(
            &format!("operator {id} ready"),
            Duration::from_secs(30),
            || async { self.ready().await.then_some(()) },
        )
        .await;
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A failing test shows what the operator said (its last lines).
        if std::thread::panicking() {
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- last lines of operator {}'s log ---\n{}",
                self.identity,
                tail.join("\n")
            );
        }
    }
}

/// A minimal HTTP/1.0 GET on loopback: (status, body), None if nothing answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

impl ControlPlane {
    /// Runs kubectl with `input` on stdin; panics with its output on failure.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl on PATH");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A token of `namespace/name` from the TokenRequest API.
    pub async fn service_account_token(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> String {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let tr: TokenRequest = serde_json::from_value(
            serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 3600}}),
        )
        .unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), namespace)
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                name,
                &PostParams::default(),
                &tr,
            )
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"))
            .status
            .expect("token status")
            .token
    }
}
