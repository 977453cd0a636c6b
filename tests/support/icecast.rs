//! The real Icecast 2.4 (Debian's `icecast2`, which scripts/test installs),
//! started on a free 127.0.0.1 port for interoperability tests.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{eventually, raw_exchange, HttpResponse, WAIT};

/// A running Icecast; killed when dropped.
pub struct Icecast {
    child: Child,
    pub http: SocketAddr,
    dir: tempfile::TempDir,
}

impl Icecast {
    /// Icecast with the default passwords (`hackme`), relay password
    /// `r3lay`, and `extra` inside `<icecast>` (relays, master settings).
    pub fn start(extra: &str) -> Icecast {
        let dir = tempfile::tempdir().expect("temp dir");
        // A port Icecast can bind: one the kernel just handed out.
        let http = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let log = dir.path().join("log");
        std::fs::create_dir(&log).expect("log dir");
        let owner = drop_to_unprivileged_user(dir.path(), &log);
        let config = format!(
            r#"<icecast>
    <hostname>127.0.0.1</hostname>
    <limits><sources>10</sources><header-timeout>5</header-timeout><source-timeout>5</source-timeout></limits>
    <authentication>
        <source-password>hackme</source-password>
        <relay-user>relay</relay-user>
        <relay-password>r3lay</relay-password>
        <admin-user>admin</admin-user>
        <admin-password>hackme</admin-password>
    </authentication>
    <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
    {extra}
    <paths>
        <basedir>{base}</basedir>
        <logdir>{logs}</logdir>
        <webroot>/usr/share/icecast2/web</webroot>
        <adminroot>/usr/share/icecast2/admin</adminroot>
    </paths>
    <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
    <security><chroot>0</chroot>{owner}</security>
</icecast>
"#,
            port = http.port(),
            base = dir.path().display(),
            logs = log.display(),
        );
        let path = dir.path().join("icecast.xml");
        std::fs::write(&path, config).expect("write icecast.xml");
        let child = Command::new("icecast2")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log"))
            .spawn()
            .expect("icecast2 is installed (scripts/test installs it)");
        let icecast = Icecast { child, http, dir };
        eventually("Icecast answers", WAIT, || icecast.get("/status-json.xsl").status == 200);
        icecast
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request(path, &[])
    }

    /// A GET with the admin credentials.
    pub fn admin(&self, path: &str) -> HttpResponse {
        self.request(path, &[("Authorization", &super::basic("admin", "hackme"))])
    }

    fn request(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let mut head = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", self.http);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // Icecast may not be listening yet: a refused connection is status 0.
        match std::net::TcpStream::connect(self.http) {
            Ok(_) => raw_exchange(self.http, head.as_bytes()),
            Err(_) => HttpResponse { status: 0, head: String::new(), body: Vec::new() },
        }
    }

    /// The `source` entry of `mount` in Icecast's status JSON, if listed.
    pub fn source(&self, mount: &str) -> Option<serde_json::Value> {
        let status: serde_json::Value = serde_json::from_slice(&self.get("/status-json.xsl").body).ok()?;
        let sources = match &status["icestats"]["source"] {
            serde_json::Value::Array(items) => items.clone(),
            one @ serde_json::Value::Object(_) => vec![one.clone()],
            _ => Vec::new(),
        };
        sources.into_iter().find(|s| s["listenurl"].as_str().is_some_and(|u| u.ends_with(mount)))
    }

    /// The title Icecast shows for `mount` (empty when none or not listed).
    pub fn title(&self, mount: &str) -> String {
        self.source(mount).and_then(|s| s["title"].as_str().map(String::from)).unwrap_or_default()
    }

    /// Icecast's error log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/error.log")).unwrap_or_default()
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Icecast refuses to run as root: started as root, it binds and then drops
/// to the `icecast2` user (Debian's package makes it), which must be able
/// to reach its directory and write its logs. Returns the `<changeowner>`.
fn drop_to_unprivileged_user(dir: &Path, log: &Path) -> String {
    if !rustix::process::geteuid().is_root() {
        return String::new();
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.first() == Some(&"icecast2"));
    let Some([_, _, uid, gid, ..]) = user.as_deref() else {
        panic!("no icecast2 user: is the icecast2 package installed?")
    };
    let (uid, gid): (u32, u32) = (uid.parse().unwrap(), gid.parse().unwrap());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod the icecast dir");
    std::os::unix::fs::chown(log, Some(uid), Some(gid)).expect("chown the log dir");
    let group = std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split(':').nth(2) == Some(gid.to_string().as_str()))
        .and_then(|l| l.split(':').next().map(String::from))
        .expect("the icecast2 user's group");
    format!("<changeowner><user>icecast2</user><group>{group}</group></changeowner>")
}
