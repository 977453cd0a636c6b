//! `floe import-icecast icecast.xml`: an Icecast 2.4 (or Icecast-KH, as
//! AzuraCast writes it) configuration as Floe's TOML, with a warning for
//! every element Floe cannot map, so a station can move over and see what
//! it loses.

pub(crate) mod xml;

use std::path::Path;

use toml::{Table, Value};

use xml::Node;

/// The TOML and what did not come across.
pub struct Imported {
    pub toml: String,
    pub warnings: Vec<String>,
}

/// Convert an icecast.xml. `dir` resolves relative paths inside it (the
/// IP and user-agent list files).
pub fn import(text: &str, dir: &Path) -> Result<Imported, String> {
    let root = xml::parse(text)?;
    if root.name != "icecast" {
        return Err(format!("the root element is <{}>, not <icecast>", root.name));
    }
    let mut out = Out::default();
    for node in &root.children {
        match node.name.as_str() {
            "location" | "admin" | "hostname" => out.server_text(node),
            "limits" => out.limits(node),
            "authentication" => out.authentication(node),
            "listen-socket" => out.listen_socket(node),
            "shoutcast-mount" => out.shoutcast_mount(node.text.trim(), None),
            "mount" => out.mount(node),
            "paths" => out.paths(node, dir),
            "logging" => out.logging(node),
            "fileserve" => out.warn("<fileserve>: Floe serves its own pages, not files from a webroot"),
            "http-headers" => {
                out.warn("<http-headers>: custom response headers are not supported (Floe sends CORS headers itself)")
            }
            "security" => out.warn(
                "<security>: chroot and changeowner are not supported; run Floe under the systemd unit in contrib/",
            ),
            "relay" => out.relay(node),
            "master-server"
            | "master-server-port"
            | "master-username"
            | "master-password"
            | "master-update-interval"
            | "relays-on-demand" => out.master.push((node.name.clone(), node.text.trim().to_string())),
            "directory" => out.directory(node),
            other => out.warn(&format!("<{other}>: not known to Floe; ignored")),
        }
    }
    out.finish()
}

#[derive(Default)]
struct Out {
    server: Table,
    listen: Vec<String>,
    tls_listen: Vec<String>,
    limits: Table,
    auth: Table,
    shoutcast: Table,
    tls: Table,
    access: Table,
    mounts: Vec<Value>,
    relays: Vec<Value>,
    directories: Vec<Value>,
    /// `<master-*>` and `<relays-on-demand>`, by element name, for `[master]`.
    master: Vec<(String, String)>,
    log_dir: Option<String>,
    access_log: Option<String>,
    warnings: Vec<String>,
}

fn int(node: &Node, name: &str) -> Option<i64> {
    node.text_of(name).and_then(|t| t.parse().ok())
}

fn flag(node: &Node, name: &str) -> Option<bool> {
    int(node, name).map(|n| n != 0)
}

impl Out {
    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }

    fn server_text(&mut self, node: &Node) {
        let key = match node.name.as_str() {
            "admin" => "admin_email",
            other => other,
        };
        if !node.text.trim().is_empty() {
            self.server.insert(key.into(), node.text.trim().into());
        }
    }

    fn limits(&mut self, node: &Node) {
        for child in &node.children {
            let value = child.text.trim().parse::<i64>().ok().filter(|n| *n >= 0);
            let key = match child.name.as_str() {
                "clients" => "clients",
                "sources" => "sources",
                "queue-size" => "queue_size",
                "burst-size" => "burst_size",
                "header-timeout" => "header_timeout",
                "source-timeout" => "source_timeout",
                "client-timeout" => "client_timeout",
                "burst-on-connect" => {
                    if value == Some(0) {
                        self.limits.insert("burst_size".into(), 0.into());
                    }
                    continue;
                }
                other => {
                    self.warn(&format!("<limits><{other}>: not used by Floe"));
                    continue;
                }
            };
            match value {
                // A burst of 0 set by burst-on-connect stays.
                Some(n) if !(key == "burst_size" && self.limits.contains_key("burst_size")) => {
                    self.limits.insert(key.into(), n.into());
                }
                Some(_) => {}
                None => self.warn(&format!("<limits><{}>: {:?} is not a number", child.name, child.text.trim())),
            }
        }
    }

    fn authentication(&mut self, node: &Node) {
        for child in &node.children {
            let value = child.text.trim();
            match child.name.as_str() {
                "source-password" => drop(self.auth.insert("source_password".into(), value.into())),
                "admin-user" => drop(self.auth.insert("admin_user".into(), value.into())),
                "admin-password" => drop(self.auth.insert("admin_password".into(), value.into())),
                "relay-user" => drop(self.auth.insert("relay_user".into(), value.into())),
                "relay-password" => drop(self.auth.insert("relay_password".into(), value.into())),
                other => self.warn(&format!("<authentication><{other}>: not known to Floe; ignored")),
            }
        }
    }

    fn listen_socket(&mut self, node: &Node) {
        let Some(port) = int(node, "port") else {
            self.warn("<listen-socket> without a <port>: skipped");
            return;
        };
        let ip = node.text_of("bind-address").unwrap_or("0.0.0.0");
        let addr = if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
        if flag(node, "ssl") == Some(true) {
            self.tls_listen.push(addr);
        } else {
            self.listen.push(addr);
        }
        if let Some(mount) = node.text_of("shoutcast-mount") {
            self.shoutcast_mount(mount, Some(port));
        } else if flag(node, "shoutcast-compat") == Some(true) {
            self.warn(&format!("<listen-socket> on {port}: shoutcast-compat without a mount; SHOUTcast sources use port+1 of the first listen address in Floe"));
        }
    }

    fn shoutcast_mount(&mut self, mount: &str, port: Option<i64>) {
        if self.shoutcast.contains_key("mount") {
            self.warn(&format!(
                "<shoutcast-mount> {mount}: Floe has one SHOUTcast source port; only the first is kept"
            ));
            return;
        }
        self.shoutcast.insert("mount".into(), mount.into());
        if let Some(port) = port {
            // Icecast listens for SHOUTcast sources on the port after it.
            self.shoutcast.insert("port".into(), (port + 1).into());
        }
    }

    fn paths(&mut self, node: &Node, dir: &Path) {
        for child in &node.children {
            let value = child.text.trim();
            match child.name.as_str() {
                "logdir" => self.log_dir = Some(value.to_string()),
                "ssl-certificate" => {
                    // Icecast's PEM holds the certificate and the key together.
                    self.tls.insert("cert".into(), value.into());
                    self.tls.insert("key".into(), value.into());
                }
                "x-forwarded-for" => self.push_list("access", "trusted_proxies", value),
                "deny-ip" | "allow-ip" | "deny-agents" => self.list_file(&child.name, value, dir),
                "basedir"
                | "webroot"
                | "adminroot"
                | "pidfile"
                | "alias"
                | "ssl-allowed-ciphers"
                | "all-x-forwarded-for" => self.warn(&format!("<paths><{}>: not needed by Floe; ignored", child.name)),
                other => self.warn(&format!("<paths><{other}>: not known to Floe; ignored")),
            }
        }
    }

    fn push_list(&mut self, section: &str, key: &str, value: &str) {
        let table = match section {
            "access" => &mut self.access,
            _ => return,
        };
        let entry = table.entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            items.push(value.into());
        }
    }

    /// Icecast's deny-ip / allow-ip / deny-agents files: one entry a line.
    fn list_file(&mut self, element: &str, path: &str, dir: &Path) {
        let key = match element {
            "deny-ip" => "deny",
            "allow-ip" => "allow",
            _ => "deny_user_agents",
        };
        let text = match std::fs::read_to_string(dir.join(path)) {
            Ok(text) => text,
            Err(error) => {
                self.warn(&format!(
                    "<paths><{element}> {path}: cannot read it ({error}); add its entries to [access] {key}"
                ));
                return;
            }
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if key != "deny_user_agents" && line.parse::<crate::access::Cidr>().is_err() {
                self.warn(&format!("<paths><{element}> {path}: {line:?} is not an address; skipped"));
                continue;
            }
            self.push_list("access", key, line);
        }
    }

    fn logging(&mut self, node: &Node) {
        for child in &node.children {
            match child.name.as_str() {
                "accesslog" => self.access_log = Some(child.text.trim().to_string()),
                "errorlog" | "loglevel" | "logsize" | "logarchive" | "playlistlog" => self.warn(&format!(
                    "<logging><{}>: Floe logs to stderr (the journal under systemd; RUST_LOG sets the level)",
                    child.name
                )),
                other => self.warn(&format!("<logging><{other}>: not known to Floe; ignored")),
            }
        }
    }

    fn mount(&mut self, node: &Node) {
        if node.attr("type") == Some("default") {
            self.warn("<mount type=\"default\">: settings for every mount are not supported; set them per mount or in [limits]");
            return;
        }
        let Some(name) = node.text_of("mount-name") else {
            self.warn("<mount> without <mount-name>: skipped");
            return;
        };
        let mut mount = Table::new();
        mount.insert("name".into(), name.into());
        for child in &node.children {
            let text = child.text.trim();
            let number = text.parse::<i64>().ok();
            let key = match child.name.as_str() {
                "mount-name" => continue,
                "username" | "password" | "fallback-mount" => child.name.replace('-', "_"),
                "stream-name" | "stream-description" | "stream-url" => child.name.replace('-', "_"),
                "genre" => "stream_genre".into(),
                "max-listeners" => match number {
                    Some(n) if n >= 0 => {
                        mount.insert("max_listeners".into(), n.into());
                        continue;
                    }
                    _ => continue,
                },
                "burst-size" | "queue-size" | "mp3-metadata-interval" => {
                    let key = match child.name.as_str() {
                        "mp3-metadata-interval" => "metaint".to_string(),
                        other => other.replace('-', "_"),
                    };
                    if let Some(n) = number {
                        mount.insert(key, n.into());
                    }
                    continue;
                }
                "fallback-override" | "hidden" | "public" => {
                    if let Some(n) = number.filter(|n| *n >= 0) {
                        mount.insert(child.name.replace('-', "_"), (n != 0).into());
                    }
                    continue;
                }
                "authentication" => {
                    if let Some(auth) = self.mount_auth(name, child) {
                        mount.insert("listener_auth".into(), Value::Table(auth));
                    }
                    continue;
                }
                "intro" => "intro".into(),
                "dump-file" => "dump_file".into(),
                other => {
                    self.warn(&format!("mount {name}: <{other}> is not supported; ignored"));
                    continue;
                }
            };
            mount.insert(key, text.into());
        }
        self.mounts.push(Value::Table(mount));
    }

    /// `<relay>`: a `[[relay]]` from `<server>`, `<port>` and `<mount>` into
    /// `<local-mount>` (the same mount when absent), with the credentials.
    /// Icecast asks for titles only with `<relay-shoutcast-metadata>` 1.
    fn relay(&mut self, node: &Node) {
        let (Some(server), Some(mount)) = (node.text_of("server"), node.text_of("mount")) else {
            self.warn("<relay> without <server> and <mount>: skipped");
            return;
        };
        let port = int(node, "port").unwrap_or(8000);
        let host = if server.contains(':') { format!("[{server}]") } else { server.to_string() };
        let mut relay = Table::new();
        relay.insert("url".into(), format!("http://{host}:{port}{mount}").into());
        relay.insert("mount".into(), node.text_of("local-mount").unwrap_or(mount).into());
        for (element, key) in [("username", "username"), ("password", "password")] {
            if let Some(value) = node.text_of(element) {
                relay.insert(key.into(), value.into());
            }
        }
        relay.insert("metadata".into(), flag(node, "relay-shoutcast-metadata").unwrap_or(false).into());
        if flag(node, "on-demand") == Some(true) {
            relay.insert("on_demand".into(), true.into());
        }
        self.relays.push(Value::Table(relay));
    }

    /// `<directory>`: a `[[directory]]` per `<yp-url>`, with its timeout.
    fn directory(&mut self, node: &Node) {
        let timeout = int(node, "yp-url-timeout");
        for child in node.children.iter().filter(|c| c.name == "yp-url") {
            let mut directory = Table::new();
            directory.insert("url".into(), child.text.trim().into());
            if let Some(timeout) = timeout {
                directory.insert("timeout".into(), timeout.max(1).into());
            }
            self.directories.push(Value::Table(directory));
        }
        if self.directories.is_empty() {
            self.warn("<directory> without <yp-url>: skipped");
        }
    }

    /// `[master]` from Icecast's top-level `<master-server>` and friends
    /// (empty when there is no master).
    fn master_table(&mut self) -> Table {
        let text = |name: &str| self.master.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut master = Table::new();
        let Some(server) = text("master-server").filter(|s| !s.is_empty()) else {
            if !self.master.is_empty() {
                self.warn("<master-*> without <master-server>: no [master]");
            }
            return master;
        };
        let Some(password) = text("master-password").filter(|p| !p.is_empty()) else {
            self.warn("<master-server> without <master-password>: no [master] (Floe's needs the relay password)");
            return master;
        };
        let port = text("master-server-port").and_then(|p| p.parse::<u16>().ok()).unwrap_or(8000);
        let host = if server.contains(':') { format!("[{server}]") } else { server };
        master.insert("url".into(), format!("http://{host}:{port}").into());
        master.insert("username".into(), text("master-username").unwrap_or_else(|| "relay".into()).into());
        master.insert("password".into(), password.into());
        if let Some(interval) = text("master-update-interval").and_then(|i| i.parse::<i64>().ok()) {
            master.insert("interval".into(), interval.max(1).into());
        }
        if text("relays-on-demand").is_some_and(|v| v != "0") {
            master.insert("on_demand".into(), true.into());
        }
        master
    }

    /// `<authentication type="htpasswd|url">` with its `<option>`s.
    fn mount_auth(&mut self, mount: &str, node: &Node) -> Option<Table> {
        let options: Vec<(&str, &str)> =
            node.all("option").filter_map(|o| Some((o.attr("name")?, o.attr("value").unwrap_or("")))).collect();
        let mut auth = Table::new();
        match node.attr("type") {
            Some("htpasswd") => {
                auth.insert("type".into(), "htpasswd".into());
                let file = options.iter().find(|(k, _)| *k == "filename").map(|(_, v)| *v);
                let Some(file) = file else {
                    self.warn(&format!("mount {mount}: htpasswd authentication without a filename; skipped"));
                    return None;
                };
                auth.insert("file".into(), file.into());
                for (key, _) in options.iter().filter(|(k, _)| *k != "filename") {
                    self.warn(&format!("mount {mount}: htpasswd option {key:?} is not supported"));
                }
            }
            Some("url") => {
                auth.insert("type".into(), "url".into());
                for (key, value) in options {
                    match key {
                        "listener_add" | "listener_remove" | "mount_add" | "mount_remove" | "stream_auth"
                        | "username" | "password" | "auth_header" | "timelimit_header" | "header_prefix" => {
                            drop(auth.insert(key.into(), value.into()))
                        }
                        "headers" => {
                            let names: Vec<&str> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
                            drop(auth.insert(key.into(), names.into()))
                        }
                        other => self.warn(&format!("mount {mount}: URL auth option {other:?} is not supported")),
                    }
                }
            }
            other => {
                self.warn(&format!("mount {mount}: authentication type {other:?} is not supported; the mount is open"));
                return None;
            }
        }
        Some(auth)
    }

    fn finish(mut self) -> Result<Imported, String> {
        if let Some(log) = self.access_log.take() {
            let path = match &self.log_dir {
                Some(dir) if !log.starts_with('/') => format!("{}/{log}", dir.trim_end_matches('/')),
                _ => log,
            };
            self.server.insert("access_log".into(), path.into());
        }
        if self.listen.is_empty() {
            self.warn("no plain <listen-socket>: Floe listens on 0.0.0.0:8000 for HTTP");
        } else {
            self.server.insert(
                "listen".into(),
                self.listen.iter().map(|a| Value::from(a.as_str())).collect::<Vec<_>>().into(),
            );
        }
        if !self.tls_listen.is_empty() {
            if self.tls.is_empty() {
                self.warn("an <ssl> listen socket but no <ssl-certificate>: add [tls] cert and key");
            }
            let addrs: Vec<Value> = self.tls_listen.iter().map(|a| Value::from(a.as_str())).collect();
            self.server.insert("tls_listen".into(), addrs.into());
        } else if !self.tls.is_empty() {
            self.warn("<ssl-certificate> without an <ssl> listen socket: [tls] left out");
            self.tls.clear();
        }
        if self.shoutcast.is_empty() {
            // Icecast has no SHOUTcast source port unless a socket names a mount.
            self.shoutcast.insert("enabled".into(), false.into());
        }
        let master = self.master_table();
        let mut doc = Table::new();
        for (name, table) in [
            ("server", self.server),
            ("limits", self.limits),
            ("auth", self.auth),
            ("access", self.access),
            ("shoutcast", self.shoutcast),
            ("tls", self.tls),
            ("master", master),
        ] {
            if !table.is_empty() {
                doc.insert(name.into(), Value::Table(table));
            }
        }
        if !self.mounts.is_empty() {
            doc.insert("mount".into(), Value::Array(self.mounts));
        }
        if !self.relays.is_empty() {
            doc.insert("relay".into(), Value::Array(self.relays));
        }
        if !self.directories.is_empty() {
            doc.insert("directory".into(), Value::Array(self.directories));
        }
        let body = toml::to_string(&doc).map_err(|e| e.to_string())?;
        let toml = format!(
            "# Converted from icecast.xml by `floe import-icecast`; check it with `floe check-config`.\n\n{body}"
        );
        Ok(Imported { toml, warnings: self.warnings })
    }
}
