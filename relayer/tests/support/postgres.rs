//! A private Postgres cluster (initdb into a temp dir, trust auth, a free port) that a test can
//! stop and start under a running relayer; stopped and removed on drop. The shared server the
//! other tests use is never touched.
use std::{os::unix::fs::MetadataExt, path::PathBuf, process::Stdio};

use super::node::free_port;

pub struct PrivatePostgres {
    /// Data directory, log and socket all live here.
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    /// initdb refuses to run as root (CI containers and this machine run tests as root): then
    /// the cluster belongs to the `postgres` user, as the packaged server does.
    owner: Option<&'static str>,
}

impl PrivatePostgres {
    /// initdb, then start. Binaries: `PG_BIN`, else `pg_config --bindir`, else `PATH`.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        let owner = root.then_some("postgres");
        if let Some(owner) = owner {
            let chown = std::process::Command::new("chown")
                .arg(owner)
                .arg(&dir)
                .status()
                .unwrap();
            assert!(chown.success(), "chown {owner} {}", dir.display());
        }
        let pg = Self {
            dir,
            port: free_port(),
            bin: bin_dir(),
            owner,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .await;
        pg.start_again().await;
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m fast`: sessions are terminated, in-flight transactions roll back, the
    /// server checkpoints and exits; connections are refused until `start_again`.
    pub async fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        )
        .await;
    }

    /// Starts the cluster on its port (again), waiting until it accepts connections.
    pub async fn start_again(&self) {
        let (data, log) = (self.data(), self.dir.join("postgres.log"));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "120",
                "start",
            ],
        )
        .await;
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> std::process::Command {
        let program = self.bin.join(program);
        let mut cmd = match self.owner {
            Some(owner) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(program);
                c
            }
            None => std::process::Command::new(program),
        };
        // The postgres user may not be able to enter the test's working directory.
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    async fn run(&self, program: &str, args: &[&str]) {
        let mut cmd = self.command(program);
        cmd.args(args);
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}): set PG_BIN to Postgres's bin directory")
            });
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return dir.into();
    }
    let has_initdb = |dir: &PathBuf| dir.join("initdb").exists();
    let pg_config = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(has_initdb);
    // Debian keeps the server's binaries off PATH, one directory per major version.
    let newest_debian = || {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
            .map(|(version, dir)| (version, dir.join("bin")))
            .filter(|(_, bin)| has_initdb(bin))
            .max_by_key(|(version, _)| *version)
            .map(|(_, bin)| bin)
    };
    pg_config.or_else(newest_debian).unwrap_or_default()
}
