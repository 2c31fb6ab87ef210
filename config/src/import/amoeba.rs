//! `rwsplit import-amoeba amoeba.xml dbServers.xml`: turns an Amoeba 2.x configuration into
//! rwsplit TOML. The two XML files are read with `roxmltree` (every element keeps its line);
//! the service's port and ipAddress become `[proxy] listen`, its authenticator's user the one
//! `[[users]]` entry, the queryRouter's writePool and readPool (virtual pools expanded, a server
//! named twice in `poolNames` weighing twice) the `[[servers]]`, the dbServers' inherited
//! factoryConfig user and password `[backend]`, and their connection pool sizes, idle eviction
//! time and the runtime's queryTimeout the matching `[backend]` limits. The result is validated
//! by rwsplit's own validation, each problem pointing back at the Amoeba line it came from, and
//! the rendered TOML is parsed again before it is returned. What rwsplit has no use for (thread
//! pools, socket buffers, sharding rules, the IP access file, servers in no pool) is listed as
//! ignored with its file and line, never dropped silently.
//!
//! Amoeba has no monitor account: `[monitor] user` and `password` are written as
//! [`PLACEHOLDER`] with a warning, so the file validates and the value a forgotten edit leaves
//! is one no server accepts (the monitor then reports every server down, saying why, instead
//! of rwsplit guessing an account). The same goes for `[backend] user` when no dbServer has one.
//!
//! Files are usually declared `encoding="gbk"`: bytes that are not UTF-8 (Chinese comments) are
//! replaced while reading, which XML markup never contains in that encoding, and a value rwsplit
//! would use that held such bytes is an error naming its line.

use super::toml_out::{int, Section, TomlOut};
use crate::schema::{Config, ServerConfig, UserConfig};
use crate::{ConfigError, Secret};
use roxmltree::{Document, Node, ParsingOptions};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The value written where Amoeba has nothing to import from (`[monitor]` user and password,
/// `[backend] user` when no dbServer names one): valid TOML that the operator must replace.
pub const PLACEHOLDER: &str = "CHANGE_ME";

/// Amoeba's defaults where a file leaves a value out.
const AMOEBA_PORT: u16 = 8066;
const MYSQL_PORT: u16 = 3306;

/// Something the operator should read, located in one of the imported files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// What an Amoeba import produced.
#[derive(Debug, Clone, PartialEq)]
pub struct AmoebaOutput {
    /// A whole rwsplit.toml (it loads and validates as it is).
    pub toml: String,
    /// Parts of the files that have no rwsplit meaning, amoeba.xml's first, by line.
    pub ignored: Vec<Notice>,
    /// Things imported with a change, or left for the operator to fill in.
    pub warnings: Vec<Notice>,
}

/// Imports `amoeba` (amoeba.xml) and `servers` (dbServers.xml), each given as its path (which
/// only labels messages) and its bytes. Fails with every error found (XML syntax, pools naming
/// unknown servers, values rwsplit's validation refuses), each with its file and line.
pub fn import_amoeba(
    amoeba_path: &Path,
    amoeba: &[u8],
    servers_path: &Path,
    servers: &[u8],
) -> Result<AmoebaOutput, Vec<ConfigError>> {
    let paths = [amoeba_path, servers_path];
    let amoeba_text = decode(amoeba);
    let servers_text = decode(servers);
    let amoeba_doc = parse_xml(amoeba_path, &amoeba_text);
    let servers_doc = parse_xml(servers_path, &servers_text);
    let (amoeba_doc, servers_doc) = match (amoeba_doc, servers_doc) {
        (Ok(a), Ok(s)) => (a, s),
        (a, s) => return Err(a.err().into_iter().chain(s.err()).collect()),
    };
    let mut imp = Importer::new(paths);
    let front = imp.amoeba_xml(&Xml { file: File::Amoeba, doc: &amoeba_doc });
    let db = imp.servers_xml(&Xml { file: File::Servers, doc: &servers_doc });
    imp.build(&front, &db);

    if imp.errors.is_empty() {
        for p in imp.config.validate() {
            let origin = imp.origin_of(&p.path);
            imp.errors.push((origin.at, origin.label, p.reason));
        }
    }
    if !imp.errors.is_empty() {
        imp.errors.sort_by_key(|e| e.0);
        return Err(imp.errors.into_iter().map(|(at, path, reason)| imp_error(&paths, at, path, reason)).collect());
    }
    let toml = imp.render(&front);
    // The renderer and the schema must agree: what is returned is what `rwsplit check` reads.
    if let Err(e) = crate::parse(Path::new("imported.toml"), &toml) {
        let at = At { file: File::Amoeba, line: front.root_line };
        return Err(vec![imp_error(&paths, at, String::new(), format!("the generated TOML does not load: {e}"))]);
    }
    let notices = |mut v: Vec<(At, String)>| {
        v.sort_by_key(|n| n.0);
        v.into_iter().map(|(at, what)| Notice { file: at.file.of(&paths).to_path_buf(), line: at.line, what }).collect()
    };
    Ok(AmoebaOutput { toml, ignored: notices(imp.ignored), warnings: notices(imp.warnings) })
}

fn imp_error(paths: &[&Path; 2], at: At, path: String, reason: String) -> ConfigError {
    ConfigError { file: at.file.of(paths).to_path_buf(), line: Some(at.line), path, reason }
}

/// The text of a file: UTF-8 as it is, anything else with the bytes that are not UTF-8
/// replaced by U+FFFD (checked for in the values used); a byte order mark is dropped.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_xml<'i>(path: &Path, text: &'i str) -> Result<Document<'i>, ConfigError> {
    // DTDs are allowed (Amoeba's files declare amoeba.dtd, which is never fetched); the node
    // limit bounds what a hostile file can make us build.
    let options = ParsingOptions { allow_dtd: true, nodes_limit: 1_000_000, ..ParsingOptions::default() };
    Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        let reason = e.to_string().replace(&format!(" at {pos}"), "");
        ConfigError {
            file: path.to_path_buf(),
            line: Some(pos.row as usize),
            path: String::new(),
            reason: format!("not well-formed XML: {reason} (column {})", pos.col),
        }
    })
}

// ---- reading the files -----------------------------------------------------------------------

/// Which of the two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum File {
    #[default]
    Amoeba,
    Servers,
}

impl File {
    /// This file's path among `[amoeba.xml, dbServers.xml]`.
    fn of<'p>(self, paths: &[&'p Path; 2]) -> &'p Path {
        let [amoeba, servers] = *paths;
        match self {
            File::Amoeba => amoeba,
            File::Servers => servers,
        }
    }
}

/// A place in one of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct At {
    file: File,
    line: usize,
}

struct Xml<'a, 'i> {
    file: File,
    doc: &'a Document<'i>,
}

impl<'a, 'i> Xml<'a, 'i> {
    fn at(&self, node: Node) -> At {
        At { file: self.file, line: self.doc.text_pos_at(node.range().start).row as usize }
    }
}

/// The child elements of `node`.
fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// `<property name="…">value</property>` or `<property name="…"><bean …>…</bean></property>`.
#[derive(Debug, Clone)]
struct Prop {
    name: String,
    /// The text inside, trimmed (empty for a bean).
    value: String,
    at: At,
}

/// A value Amoeba gave, with where it was.
#[derive(Debug, Clone, Default)]
struct Given {
    value: String,
    at: At,
}

/// What amoeba.xml says.
#[derive(Debug, Default)]
struct Front {
    root_line: usize,
    service: Option<(String, At)>,
    port: Option<Given>,
    ip: Option<Given>,
    user: Option<Given>,
    password: Option<Given>,
    query_timeout: Option<Given>,
    default_pool: Option<Given>,
    write_pool: Option<Given>,
    read_pool: Option<Given>,
    need_parse: Option<Given>,
    router: Option<At>,
}

/// One `<dbServer>` of dbServers.xml with the properties rwsplit uses (from its factoryConfig
/// and poolConfig, not yet merged with its parent's).
#[derive(Debug, Default)]
struct DbServer {
    at: At,
    parent: Option<String>,
    abstractive: bool,
    virtual_pool: bool,
    props: HashMap<String, Given>,
}

/// What dbServers.xml says.
#[derive(Debug, Default)]
struct Db {
    root: At,
    servers: BTreeMap<String, DbServer>,
}

impl Db {
    /// `key` of server `name` or of the nearest ancestor that sets it, with the server it came
    /// from. Parent loops were reported when the file was read; they end the search here.
    fn lookup(&self, name: &str, key: &str) -> Option<(&Given, &str)> {
        let mut current = name;
        for _ in 0..=self.servers.len() {
            let (n, s) = self.servers.get_key_value(current)?;
            if let Some(g) = s.props.get(key) {
                return Some((g, n.as_str()));
            }
            current = s.parent.as_deref()?;
        }
        None
    }
}

/// Where a key of the generated TOML came from: for errors (`label`) and comments (`note`).
#[derive(Debug, Clone, Default)]
struct Origin {
    at: At,
    label: String,
    note: String,
}

struct Importer<'p> {
    paths: [&'p Path; 2],
    ignored: Vec<(At, String)>,
    warnings: Vec<(At, String)>,
    errors: Vec<(At, String, String)>,
    config: Config,
    /// TOML path (`servers[1].address`) → where its value came from.
    origins: BTreeMap<String, Origin>,
    /// `[[servers]]` entry index → the comment lines above it.
    server_notes: Vec<Vec<String>>,
}

impl<'p> Importer<'p> {
    fn new(paths: [&'p Path; 2]) -> Self {
        Importer {
            paths,
            ignored: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            config: Config::default(),
            origins: BTreeMap::new(),
            server_notes: Vec::new(),
        }
    }

    fn ignore(&mut self, at: At, what: impl Into<String>) {
        self.ignored.push((at, what.into()));
    }

    fn warn(&mut self, at: At, what: impl Into<String>) {
        self.warnings.push((at, what.into()));
    }

    fn error(&mut self, at: At, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push((at, path.into(), reason.into()));
    }

    fn place(&self, at: At) -> String {
        let name = at
            .file
            .of(&self.paths)
            .file_name()
            .map_or_else(|| at.file.of(&self.paths).display().to_string(), |n| n.to_string_lossy().into_owned());
        format!("{name}:{}", at.line)
    }

    fn record(&mut self, path: impl Into<String>, at: At, label: impl Into<String>, note: impl Into<String>) {
        self.origins.insert(path.into(), Origin { at, label: label.into(), note: note.into() });
    }

    /// Where a validation problem's path came from: the key itself, else the nearest recorded
    /// parent (`servers[1]`), else amoeba.xml's first element.
    fn origin_of(&self, path: &str) -> Origin {
        let mut p = path;
        loop {
            if let Some(o) = self.origins.get(p) {
                return o.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Origin { label: path.to_string(), ..Origin::default() },
            }
        }
    }

    /// The properties of `el`; any other child element is reported as ignored.
    fn props(&mut self, xml: &Xml, el: Node, at: &str) -> Vec<Prop> {
        let mut out = Vec::new();
        for c in elements(el) {
            if c.tag_name().name() != "property" {
                self.ignore(xml.at(c), format!("{at}: <{}> (not an Amoeba property)", c.tag_name().name()));
                continue;
            }
            let Some(name) = c.attribute("name") else {
                self.ignore(xml.at(c), format!("{at}: <property> without a name"));
                continue;
            };
            let value: String = c.children().filter(Node::is_text).filter_map(|t| t.text()).collect();
            out.push(Prop { name: name.to_string(), value: value.trim().to_string(), at: xml.at(c) });
        }
        out
    }

    /// A property's value for use in the TOML: an error when it held bytes that are not UTF-8.
    fn given(&mut self, p: &Prop, at: &str) -> Option<Given> {
        if p.value.contains('\u{fffd}') {
            self.error(
                p.at,
                format!("{at} {}", p.name),
                "the value is not UTF-8 (a gbk file?): convert the file with iconv -f gbk -t utf-8",
            );
            return None;
        }
        Some(Given { value: p.value.clone(), at: p.at })
    }

    // ---- amoeba.xml ----

    fn amoeba_xml(&mut self, xml: &Xml) -> Front {
        let root = xml.doc.root_element();
        let mut front = Front { root_line: xml.at(root).line, ..Front::default() };
        if root.tag_name().name() != "configuration" {
            self.warn(
                xml.at(root),
                format!("the root element is <{}>, not Amoeba's <amoeba:configuration>", root.tag_name().name()),
            );
        }
        for el in elements(root) {
            let at = xml.at(el);
            match el.tag_name().name() {
                "proxy" => self.proxy(xml, el, &mut front),
                "connectionManagerList" => {
                    self.ignore(at, "connectionManagerList (Amoeba's network managers: rwsplit has none to set up)")
                }
                "dbServerLoader" => self.db_server_loader(xml, el),
                "queryRouter" => self.query_router(xml, el, &mut front),
                other => self.ignore(at, format!("<{other}> (no rwsplit equivalent)")),
            }
        }
        front
    }

    fn proxy(&mut self, xml: &Xml, proxy: Node, front: &mut Front) {
        for el in elements(proxy) {
            let at = xml.at(el);
            match el.tag_name().name() {
                "service" => {
                    let name = el.attribute("name").unwrap_or("").to_string();
                    let class = el.attribute("class").unwrap_or("");
                    if !class.is_empty() && !class.contains("MysqlClientConnectionManager") {
                        self.ignore(at, format!("service {name:?} {class} (not the MySQL service)"));
                    } else if let Some((first, first_at)) = &front.service {
                        let line = first_at.line;
                        self.ignore(
                            at,
                            format!(
                                "service {name:?} (rwsplit has one listener: {first:?} at line {line} was imported)"
                            ),
                        );
                    } else {
                        front.service = Some((name.clone(), at));
                        self.service(xml, el, &name, front);
                    }
                }
                "runtime" => self.runtime(xml, el, front),
                other => self.ignore(at, format!("proxy <{other}> (no rwsplit equivalent)")),
            }
        }
    }

    fn service(&mut self, xml: &Xml, service: Node, name: &str, front: &mut Front) {
        let at = format!("service {name:?}");
        for p in self.props(xml, service, &at) {
            match p.name.as_str() {
                "port" => front.port = self.given(&p, &at),
                "ipAddress" => front.ip = self.given(&p, &at),
                "manager" => self.ignore(p.at, format!("{at}: manager {} (Amoeba's connection manager)", p.value)),
                "connectionFactory" => self.ignore(
                    p.at,
                    format!("{at}: connectionFactory (client socket buffer sizes: rwsplit leaves them to the kernel)"),
                ),
                "authenticator" => self.authenticator(xml, service, &p, &at, front),
                other => self.ignore(p.at, format!("{at}: {other} {} (no rwsplit equivalent)", p.value)),
            }
        }
    }

    /// The authenticator bean: its user and password are the application's login.
    fn authenticator(&mut self, xml: &Xml, service: Node, prop: &Prop, at: &str, front: &mut Front) {
        let Some(bean) = property_bean(service, "authenticator") else {
            self.ignore(prop.at, format!("{at}: authenticator without a <bean>"));
            return;
        };
        for p in self.props(xml, bean, &format!("{at} authenticator")) {
            match p.name.as_str() {
                "user" => front.user = self.given(&p, at),
                "password" => front.password = self.given(&p, at),
                "filter" => self.ignore(
                    p.at,
                    format!(
                        "{at}: authenticator filter{} (client IP access list: rwsplit has none, use a firewall)",
                        property_bean(bean, "filter")
                            .and_then(|b| property_bean_value(b, "ipFile"))
                            .map(|f| format!(" ipFile {f}"))
                            .unwrap_or_default()
                    ),
                ),
                other => self.ignore(p.at, format!("{at}: authenticator {other} (no rwsplit equivalent)")),
            }
        }
    }

    fn runtime(&mut self, xml: &Xml, runtime: Node, front: &mut Front) {
        for p in self.props(xml, runtime, "runtime") {
            let what = format!("runtime {} {}", p.name, p.value);
            match p.name.as_str() {
                "queryTimeout" => front.query_timeout = self.given(&p, "runtime"),
                "readThreadPoolSize" | "clientSideThreadPoolSize" | "serverSideThreadPoolSize" => self.ignore(
                    p.at,
                    format!("{what} (rwsplit's threads: proxy.worker_threads, half the CPUs by default)"),
                ),
                "statementCacheSize" => self.ignore(
                    p.at,
                    format!(
                        "{what} (rwsplit prepares a statement on the connection that runs it; \
                         proxy.max_prepared_statements bounds a session's)"
                    ),
                ),
                _ => self.ignore(p.at, format!("{what} (no rwsplit equivalent)")),
            }
        }
    }

    fn db_server_loader(&mut self, xml: &Xml, loader: Node) {
        let file = property_bean_value(loader, "configFile").unwrap_or_default();
        self.ignore(
            xml.at(loader),
            format!("dbServerLoader {file} (rwsplit lists its servers in rwsplit.toml: the dbServers.xml given on the command line was imported)"),
        );
        let given = File::Servers.of(&self.paths).file_name();
        let named = Path::new(&file).file_name();
        if let (Some(given), Some(named)) = (given, named) {
            if given != named {
                self.warn(
                    xml.at(loader),
                    format!(
                        "dbServerLoader reads {file}, but {} was given on the command line",
                        File::Servers.of(&self.paths).display()
                    ),
                );
            }
        }
    }

    fn query_router(&mut self, xml: &Xml, router: Node, front: &mut Front) {
        front.router = Some(xml.at(router));
        for p in self.props(xml, router, "queryRouter") {
            let what = format!("queryRouter {} {}", p.name, p.value);
            match p.name.as_str() {
                "defaultPool" => front.default_pool = self.given(&p, "queryRouter"),
                "writePool" => front.write_pool = self.given(&p, "queryRouter"),
                "readPool" => front.read_pool = self.given(&p, "queryRouter"),
                "needParse" => front.need_parse = self.given(&p, "queryRouter"),
                "ruleLoader" => {
                    let files: Vec<String> = property_bean(router, "ruleLoader")
                        .map(|b| {
                            ["ruleFile", "functionFile"].iter().filter_map(|k| property_bean_value(b, k)).collect()
                        })
                        .unwrap_or_default();
                    self.ignore(
                        p.at,
                        format!(
                            "queryRouter ruleLoader {} (sharding rules: rwsplit does not shard, every server holds every table)",
                            files.join(" ")
                        ),
                    );
                }
                "sqlFunctionFile" => {
                    self.ignore(p.at, format!("{what} (rwsplit's classifier knows SQL functions itself)"))
                }
                "LRUMapSize" => {
                    self.ignore(p.at, format!("{what} (cache of parsed statements: rwsplit classifies without one)"))
                }
                _ => self.ignore(p.at, format!("{what} (no rwsplit equivalent)")),
            }
        }
    }

    // ---- dbServers.xml ----

    fn servers_xml(&mut self, xml: &Xml) -> Db {
        let root = xml.doc.root_element();
        let mut db = Db { root: xml.at(root), servers: BTreeMap::new() };
        if root.tag_name().name() != "dbServers" {
            self.warn(
                xml.at(root),
                format!("the root element is <{}>, not Amoeba's <amoeba:dbServers>", root.tag_name().name()),
            );
        }
        for el in elements(root) {
            let at = xml.at(el);
            if el.tag_name().name() != "dbServer" {
                self.ignore(at, format!("<{}> (no rwsplit equivalent)", el.tag_name().name()));
                continue;
            }
            let Some(name) = el.attribute("name") else {
                self.error(at, "dbServer", "a dbServer needs a name");
                continue;
            };
            let server = self.db_server(xml, el, name);
            if let Some(first) = db.servers.get(name) {
                let line = first.at.line;
                self.error(
                    at,
                    format!("dbServer {name}"),
                    format!("dbServer {name:?} is already defined at line {line}"),
                );
                continue;
            }
            db.servers.insert(name.to_string(), server);
        }
        // Parents must exist and not loop.
        for (name, s) in &db.servers {
            let mut seen = vec![name.as_str()];
            let mut parent = s.parent.as_deref();
            while let Some(p) = parent {
                if seen.contains(&p) {
                    seen.push(p);
                    self.error(s.at, format!("dbServer {name}"), format!("parents loop: {}", seen.join(" -> ")));
                    break;
                }
                seen.push(p);
                match db.servers.get(p) {
                    Some(ps) => parent = ps.parent.as_deref(),
                    None => {
                        self.error(s.at, format!("dbServer {name}"), format!("parent {p:?} is not defined"));
                        break;
                    }
                }
            }
        }
        db
    }

    fn db_server(&mut self, xml: &Xml, el: Node, name: &str) -> DbServer {
        let yes = |attr: &str| el.attribute(attr).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let mut s = DbServer {
            at: xml.at(el),
            parent: el.attribute("parent").map(|p| p.trim().to_string()),
            abstractive: yes("abstractive"),
            virtual_pool: yes("virtual"),
            props: HashMap::new(),
        };
        let at = format!("dbServer {name}");
        for part in elements(el) {
            let part_name = part.tag_name().name();
            if part_name != "factoryConfig" && part_name != "poolConfig" {
                self.ignore(xml.at(part), format!("{at}: <{part_name}> (no rwsplit equivalent)"));
                continue;
            }
            for p in self.props(xml, part, &at) {
                let what = format!("{at}: {} {}", p.name, p.value);
                let reason = match (part_name, p.name.as_str()) {
                    ("factoryConfig", "port" | "ipAddress" | "user" | "password")
                    | (
                        "poolConfig",
                        "maxActive" | "maxIdle" | "minEvictableIdleTimeMillis" | "loadbalance" | "poolNames",
                    ) => {
                        if let Some(g) = self.given(&p, &at) {
                            s.props.insert(p.name.clone(), g);
                        }
                        continue;
                    }
                    (_, "connectionManager") => "Amoeba's connection manager",
                    (_, "sendBufferSize" | "receiveBufferSize") => {
                        "socket buffer sizes: rwsplit leaves them to the kernel"
                    }
                    (_, "schema") => "rwsplit opens no default schema: each client's own database is used",
                    (_, "minIdle") => "rwsplit opens server connections when they are needed",
                    (_, "timeBetweenEvictionRunsMillis") => "rwsplit checks idle connections' age when it reuses them",
                    (_, "testOnBorrow" | "testOnReturn" | "testWhileIdle") => {
                        "rwsplit probes a reused connection before a write, and its monitor checks every server"
                    }
                    _ => "no rwsplit equivalent",
                };
                self.ignore(p.at, format!("{what} ({reason})"));
            }
        }
        s
    }

    // ---- building the config ----

    fn build(&mut self, front: &Front, db: &Db) {
        self.listen(front);
        self.users(front);
        self.pools(front, db);
        self.backend(front, db);
        // Amoeba has no monitor account.
        self.config.monitor.user = PLACEHOLDER.into();
        self.config.monitor.password = Secret::new(PLACEHOLDER);
        self.warn(
            db.root,
            format!(
                "[monitor] user and password are {PLACEHOLDER:?}: Amoeba has no monitor account; create one \
                 (GRANT SLAVE MONITOR, PROCESS ON *.* on MariaDB 10.5+, REPLICATION CLIENT, PROCESS before) \
                 and fill it in before starting rwsplit"
            ),
        );
        let note = "Amoeba has no monitor account: TODO fill in";
        self.record("monitor.user", db.root, "[monitor] user", note);
    }

    fn listen(&mut self, front: &Front) {
        if front.port.is_none() && front.ip.is_none() {
            return;
        }
        let mut notes = Vec::new();
        let mut at = front.service.as_ref().map(|s| s.1).unwrap_or_default();
        let port = match &front.port {
            Some(g) => {
                at = g.at;
                notes.push(format!("port {}", self.place(g.at)));
                match g.value.parse::<u16>() {
                    Ok(p) if p != 0 => p,
                    _ => {
                        self.error(g.at, "service port", format!("{:?} is not a TCP port", g.value));
                        AMOEBA_PORT
                    }
                }
            }
            None => {
                notes.push(format!("no port: Amoeba's default {AMOEBA_PORT}"));
                AMOEBA_PORT
            }
        };
        let host = match &front.ip {
            Some(g) => {
                at = g.at;
                notes.push(format!("ipAddress {}", self.place(g.at)));
                g.value.clone()
            }
            None => {
                notes.push("no ipAddress: every address, as Amoeba".into());
                "0.0.0.0".into()
            }
        };
        self.config.proxy.listen = host_port(&host, port);
        self.record("proxy.listen", at, "service port/ipAddress", notes.join(", "));
    }

    fn users(&mut self, front: &Front) {
        let service_at =
            front.service.as_ref().map(|s| s.1).unwrap_or(At { file: File::Amoeba, line: front.root_line });
        let Some(user) = &front.user else {
            self.error(
                service_at,
                "service authenticator",
                "no authenticator user: it is the login applications use, and rwsplit needs it for [[users]]",
            );
            return;
        };
        let password = front.password.clone().unwrap_or(Given { value: String::new(), at: user.at });
        self.config.users.push(UserConfig {
            name: user.value.clone(),
            password: Some(Secret::new(password.value.clone())),
            ..UserConfig::default()
        });
        self.record(
            "users[0].name",
            user.at,
            "authenticator user",
            format!("authenticator user, {}", self.place(user.at)),
        );
        let note = match &front.password {
            Some(p) => format!("authenticator password, {}", self.place(p.at)),
            None => "no authenticator password: none, as Amoeba".into(),
        };
        self.record("users[0].password", password.at, "authenticator password", note);
    }

    /// writePool and readPool → `[[servers]]` with weights (and `routing.master_accepts_reads`
    /// when the writer is in the read pool too).
    fn pools(&mut self, front: &Front, db: &Db) {
        let router_at = front.router.unwrap_or(At { file: File::Amoeba, line: front.root_line });
        let Some(write) = front.write_pool.as_ref().or(front.default_pool.as_ref()) else {
            self.error(router_at, "queryRouter", "neither writePool nor defaultPool is set: no server to import");
            return;
        };
        if let Some(d) = &front.default_pool {
            if d.value != write.value && front.read_pool.as_ref().is_some_and(|r| r.value != d.value) {
                self.warn(
                    d.at,
                    format!(
                        "defaultPool {} is neither writePool nor readPool: Amoeba sent statements no rule placed \
                         there; rwsplit sends what it cannot classify to the writer",
                        d.value
                    ),
                );
            }
        }
        if let Some(n) = &front.need_parse {
            if n.value.eq_ignore_ascii_case("false") {
                self.warn(
                    n.at,
                    "needParse false: Amoeba sent every statement to defaultPool; rwsplit splits reads from writes",
                );
            }
        }
        // Without readPool, Amoeba reads from defaultPool (also when it is the writePool).
        let read = front.read_pool.as_ref().or(front.default_pool.as_ref());
        let write_label = if front.write_pool.is_some() { "writePool" } else { "defaultPool" };
        let read_label = if front.read_pool.is_some() { "readPool" } else { "defaultPool" };

        let Some(writers) = self.expand(db, write, write_label) else { return };
        let readers = match read {
            Some(r) => match self.expand(db, r, read_label) {
                Some(p) => Some(p),
                None => return,
            },
            None => None,
        };
        if writers.members.len() > 1 {
            let names: Vec<&str> = writers.members.iter().map(|(n, _)| n.as_str()).collect();
            self.warn(
                write.at,
                format!(
                    "{write_label} {} holds {}: rwsplit writes to whichever has read_only=OFF and \
                     takes the others as replicas",
                    write.value,
                    names.join(", ")
                ),
            );
        }
        let read_weights = readers.as_ref().map(|r| self.weights(r)).unwrap_or_default();
        let accepts_reads = writers.members.iter().any(|(n, _)| read_weights.iter().any(|(m, _)| m == n));
        if accepts_reads {
            self.config.routing.master_accepts_reads = true;
            let at = read.map(|r| r.at).unwrap_or(write.at);
            let read_name = read.map_or("", |r| r.value.as_str());
            let note = if read_name == write.value {
                format!("Amoeba reads from {write_label} {read_name} too ({})", self.place(at))
            } else {
                format!("{write_label} {} is in {read_label} {read_name} too ({})", write.value, self.place(at))
            };
            self.record("routing.master_accepts_reads", at, format!("{read_label} {read_name}"), note);
        }

        // A server Amoeba only writes to: the lone writer keeps the default weight (it takes no
        // reads anyway); in a pool of writers, or beside a writer that reads, weight 0 (reads
        // only when no other server can take them).
        let write_only_weight = if writers.members.len() > 1 || accepts_reads { 0 } else { 1 };
        let mut listed: HashSet<String> = HashSet::new();
        for (name, _) in &writers.members {
            if !listed.insert(name.clone()) {
                continue;
            }
            let weight = read_weights.iter().find(|(n, _)| n == name).map(|(_, w)| *w);
            let mut notes = vec![format!("{write_label} {} ({}): dbServer {name}", write.value, self.place(write.at))];
            match weight {
                Some(_) => {}
                None if write_only_weight == 0 => {
                    notes.push("Amoeba does not read from it: weight 0, reads only when no other server can".into())
                }
                None => notes.push("the writer takes no reads (routing.master_accepts_reads = false)".into()),
            }
            self.server(db, name, weight.unwrap_or(write_only_weight), notes, readers.as_ref());
        }
        if let (Some(r), Some(pool)) = (read, &readers) {
            let mut first = true;
            for (name, weight) in &read_weights {
                if !listed.insert(name.clone()) {
                    continue;
                }
                let mut notes = vec![format!("{read_label} {} ({}): dbServer {name}", r.value, self.place(r.at))];
                if std::mem::take(&mut first) && pool.loadbalance.as_ref().is_none_or(|g| g.value == "1") {
                    // rwsplit's default stays: reads of one session on one replica.
                    notes.push("Amoeba's round-robin picks a server for each read; rwsplit keeps a session's".into());
                    notes.push("reads on one (routing.read_balance = \"statement\" would pick per read).".into());
                }
                self.server(db, name, *weight, notes, Some(pool));
            }
        }
        // What Amoeba defines but sends nothing to.
        let used: HashSet<&str> =
            writers.visited.iter().chain(readers.iter().flat_map(|r| &r.visited)).map(String::as_str).collect();
        for (name, s) in &db.servers {
            if s.abstractive || used.contains(name.as_str()) {
                continue;
            }
            let kind = if s.virtual_pool { "virtual pool" } else { "dbServer" };
            self.ignore(s.at, format!("{kind} {name} (in neither writePool nor readPool: Amoeba sends it nothing)"));
        }
    }

    /// A pool named in queryRouter, expanded to its servers (a virtual pool's `poolNames`,
    /// nested pools flattened; a server named n times counts n times).
    fn expand(&mut self, db: &Db, pool: &Given, label: &str) -> Option<Pool> {
        let mut out = Pool::default();
        let mut stack = Vec::new();
        self.expand_into(db, &pool.value, pool.at, label, 1, &mut stack, &mut out).then_some(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn expand_into(
        &mut self,
        db: &Db,
        name: &str,
        at: At,
        label: &str,
        times: u32,
        stack: &mut Vec<String>,
        out: &mut Pool,
    ) -> bool {
        let Some(s) = db.servers.get(name) else {
            self.error(at, format!("{label} {name}"), format!("no dbServer named {name:?} in dbServers.xml"));
            return false;
        };
        if s.abstractive {
            self.error(
                at,
                format!("{label} {name}"),
                format!("dbServer {name:?} is abstractive (a template for others), not a server"),
            );
            return false;
        }
        if stack.iter().any(|n| n == name) {
            stack.push(name.to_string());
            self.error(
                at,
                format!("{label} {name}"),
                format!("virtual pools contain each other: {}", stack.join(" -> ")),
            );
            return false;
        }
        if !out.visited.iter().any(|v| v == name) {
            out.visited.push(name.to_string());
        }
        if !s.virtual_pool {
            match out.members.iter_mut().find(|(n, _)| n == name) {
                Some((_, count)) => *count = count.saturating_add(times),
                None => out.members.push((name.to_string(), times)),
            }
            return true;
        }
        let Some((names, _)) = db.lookup(name, "poolNames") else {
            self.error(s.at, format!("dbServer {name}"), "a virtual pool needs poolConfig poolNames");
            return false;
        };
        if stack.is_empty() {
            out.loadbalance = db.lookup(name, "loadbalance").map(|(g, _)| g.clone());
            out.names_at = Some(names.at);
        } else if let Some((lb, _)) = db.lookup(name, "loadbalance") {
            self.warn(
                lb.at,
                format!("dbServer {name}: loadbalance of a pool inside another pool: the outer pool's applies"),
            );
        }
        stack.push(name.to_string());
        let mut ok = true;
        for member in names.value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            ok &= self.expand_into(db, member, names.at, &format!("dbServer {name} poolNames"), times, stack, out);
        }
        stack.pop();
        ok
    }

    /// rwsplit weights for a read pool, from Amoeba's loadbalance.
    fn weights(&mut self, pool: &Pool) -> Vec<(String, u32)> {
        let lb = pool.loadbalance.clone();
        match lb.as_ref().map(|g| g.value.as_str()) {
            None | Some("1") => pool.members.clone(),
            Some("2") => {
                if let Some(g) = &lb {
                    self.warn(
                        g.at,
                        "loadbalance 2 (Amoeba sends each read to the server with the fewest active connections): \
                         rwsplit spreads sessions by weight and by how many already read there",
                    );
                }
                pool.members.clone()
            }
            Some("3") => {
                if let Some(g) = &lb {
                    self.warn(
                        g.at,
                        "loadbalance 3 (HA: Amoeba reads from the first server while it is up): the first gets \
                         weight 1, the others 0 (reads only when it is the only choice)",
                    );
                }
                pool.members.iter().enumerate().map(|(i, (n, _))| (n.clone(), u32::from(i == 0))).collect()
            }
            Some(other) => {
                if let Some(g) = &lb {
                    self.error(g.at, "loadbalance", format!("{other:?} is not 1, 2 or 3 (Amoeba refuses it too)"));
                }
                pool.members.clone()
            }
        }
    }

    /// One `[[servers]]` entry for dbServer `name`.
    fn server(&mut self, db: &Db, name: &str, weight: u32, mut notes: Vec<String>, pool: Option<&Pool>) {
        let i = self.config.servers.len();
        let Some(s) = db.servers.get(name) else { return };
        self.record(format!("servers[{i}].name"), s.at, format!("dbServer {name}"), String::new());
        let (host, port) = (db.lookup(name, "ipAddress"), db.lookup(name, "port"));
        let mut address_notes = Vec::new();
        let host = match host {
            Some((g, from)) => {
                address_notes.push(format!("ipAddress {}{}", self.place(g.at), inherited(from, name)));
                g.value.clone()
            }
            None => {
                self.error(s.at, format!("dbServer {name}"), "no ipAddress (in it or its parents)");
                String::new()
            }
        };
        let (port, port_at) = match port {
            Some((g, from)) => {
                address_notes.push(format!("port {}{}", self.place(g.at), inherited(from, name)));
                match g.value.parse::<u16>() {
                    Ok(p) if p != 0 => (p, g.at),
                    _ => {
                        self.error(g.at, format!("dbServer {name} port"), format!("{:?} is not a TCP port", g.value));
                        (MYSQL_PORT, g.at)
                    }
                }
            }
            None => {
                self.warn(s.at, format!("dbServer {name} has no port (in it or its parents): {MYSQL_PORT} assumed"));
                address_notes.push(format!("no port: {MYSQL_PORT}"));
                (MYSQL_PORT, s.at)
            }
        };
        let address_at = db.lookup(name, "ipAddress").map_or(port_at, |(g, _)| g.at);
        self.record(
            format!("servers[{i}].address"),
            address_at,
            format!("dbServer {name} ipAddress/port"),
            address_notes.join(", "),
        );
        if let Some(p) = pool {
            let count = p.members.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
            let at = p.names_at.unwrap_or(s.at);
            let place = self.place(at);
            let times = if count == 1 { "once".to_string() } else { format!("{count} times") };
            let how = match p.loadbalance.as_ref().map_or("1", |g| g.value.as_str()) {
                "3" => {
                    format!("weight {weight}: loadbalance 3 (HA) over poolNames ({place}), the first takes the reads")
                }
                "2" => format!("weight {weight}: named {times} in poolNames ({place}), loadbalance 2"),
                _ => format!("weight {weight}: named {times} in poolNames ({place}), loadbalance 1 (round-robin)"),
            };
            if count > 0 {
                notes.push(how);
                self.record(format!("servers[{i}].weight"), at, format!("poolNames {name}"), String::new());
            }
        }
        // Field by field on the defaults: whatever the schema adds stays at its default.
        let mut server = ServerConfig::default();
        (server.name, server.address, server.weight) = (name.to_string(), host_port(&host, port), weight);
        self.config.servers.push(server);
        self.server_notes.push(notes);
    }

    /// `[backend]`: the account and pool limits of the first writer, checked against the others.
    fn backend(&mut self, front: &Front, db: &Db) {
        let names: Vec<String> = self.config.servers.iter().map(|s| s.name.clone()).collect();
        if let Some(t) = &front.query_timeout {
            match t.value.parse::<u64>() {
                Ok(0) => {
                    self.warn(t.at, "runtime queryTimeout 0: rwsplit's default backend.response_timeout_ms is kept")
                }
                Ok(s) => {
                    self.config.backend.response_timeout_ms = s.saturating_mul(1000);
                    let note = format!("runtime queryTimeout {s} s, {}", self.place(t.at));
                    self.record("backend.response_timeout_ms", t.at, "runtime queryTimeout", note);
                }
                Err(_) => self.error(t.at, "runtime queryTimeout", format!("{:?} is not a number of seconds", t.value)),
            }
        }
        let Some(first) = names.first() else { return };
        match db.lookup(first, "user") {
            Some((g, from)) => {
                self.config.backend.user = g.value.clone();
                let note = format!("factoryConfig user, {} (dbServer {from})", self.place(g.at));
                self.record("backend.user", g.at, format!("dbServer {from} user"), note);
            }
            None => {
                self.config.backend.user = PLACEHOLDER.into();
                let at = db.servers.get(first).map_or(db.root, |s| s.at);
                self.warn(
                    at,
                    format!("dbServer {first} has no user (in it or its parents): [backend] user is {PLACEHOLDER:?}, fill it in"),
                );
                self.record(
                    "backend.user",
                    at,
                    format!("dbServer {first}"),
                    "no factoryConfig user in Amoeba: TODO fill in",
                );
            }
        }
        match db.lookup(first, "password") {
            Some((g, from)) => {
                self.config.backend.password = Secret::new(g.value.clone());
                let note = format!("factoryConfig password, {} (dbServer {from})", self.place(g.at));
                self.record("backend.password", g.at, format!("dbServer {from} password"), note);
            }
            None => {
                let at = db.servers.get(first).map_or(db.root, |s| s.at);
                self.record(
                    "backend.password",
                    at,
                    format!("dbServer {first}"),
                    "no factoryConfig password: none, as Amoeba",
                );
            }
        }
        // rwsplit logs into every server with one account.
        for other in names.iter().skip(1) {
            for key in ["user", "password"] {
                let theirs = db.lookup(other, key);
                if theirs.map(|(g, _)| &g.value) != db.lookup(first, key).map(|(g, _)| &g.value) {
                    let at = theirs.map_or_else(|| db.servers.get(other).map_or(db.root, |s| s.at), |(g, _)| g.at);
                    self.warn(
                        at,
                        format!(
                            "dbServer {other} logs in with another {key} than {first}: rwsplit uses one account \
                             for every server, {first}'s"
                        ),
                    );
                }
            }
        }
        // Connection pools: Amoeba's are per server, rwsplit's limits apply to each server alike.
        let pool_keys = [
            ("maxActive", "backend.max_connections_per_server"),
            ("maxIdle", "backend.max_idle_per_server"),
            ("minEvictableIdleTimeMillis", "backend.idle_timeout_ms"),
        ];
        for (key, path) in pool_keys {
            let Some((g, from)) = db.lookup(first, key) else { continue };
            for other in names.iter().skip(1) {
                if let Some((o, _)) = db.lookup(other, key).filter(|(o, _)| o.value != g.value) {
                    self.warn(o.at, format!("dbServer {other}: {key} {} differs from {first}'s {}: rwsplit uses {first}'s for every server", o.value, g.value));
                }
            }
            let Ok(n) = g.value.parse::<i64>() else {
                self.error(g.at, format!("dbServer {from} {key}"), format!("{:?} is not a number", g.value));
                continue;
            };
            if n <= 0 {
                self.warn(
                    g.at,
                    format!("dbServer {from}: {key} {n} means no limit in Amoeba; rwsplit's default {path} is kept"),
                );
                continue;
            }
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            let as_u32 = u32::try_from(n).unwrap_or(u32::MAX);
            match key {
                "maxActive" => self.config.backend.max_connections_per_server = as_u32,
                "maxIdle" => self.config.backend.max_idle_per_server = as_u32,
                _ => self.config.backend.idle_timeout_ms = n,
            }
            let note = format!("poolConfig {key}, {} (dbServer {from})", self.place(g.at));
            self.record(path, g.at, format!("dbServer {from} {key}"), note);
        }
        let b = &self.config.backend;
        if self.origins.contains_key("backend.max_idle_per_server")
            && b.max_idle_per_server > b.max_connections_per_server
        {
            let (idle, max) = (b.max_idle_per_server, b.max_connections_per_server);
            self.config.backend.max_idle_per_server = max;
            if let Some(o) = self.origins.get("backend.max_idle_per_server") {
                let at = o.at;
                self.warn(at, format!("maxIdle {idle} is above the connection limit {max}: {max} idle at most"));
            }
        }
    }

    // ---- output ----

    fn render(&self, front: &Front) -> String {
        let [amoeba, servers] = self.paths;
        let mut out = TomlOut::new(&[
            format!("Imported from {} and {} by rwsplit import-amoeba.", amoeba.display(), servers.display()),
            "Each value names the Amoeba line it comes from; the rest are rwsplit's defaults".to_string(),
            "(config/rwsplit.example.toml lists them all).".to_string(),
            format!("{PLACEHOLDER} marks what Amoeba does not have: fill it in before starting rwsplit."),
        ]);
        let note = |path: &str| -> Vec<String> {
            self.origins.get(path).map(|o| o.note.clone()).filter(|n| !n.is_empty()).into_iter().collect()
        };
        let c = &self.config;

        if self.origins.contains_key("proxy.listen") {
            let name = front.service.as_ref().map_or(String::new(), |s| s.0.clone());
            let mut s = Section::new(&[format!("The listener of service {name:?}.")]);
            s.set_noted("listen", c.proxy.listen.as_str(), &note("proxy.listen"));
            out.table("proxy", s);
        }
        for (i, u) in c.users.iter().enumerate() {
            let mut s = Section::new(&["The application login (Amoeba's authenticator)."]);
            s.set_noted("name", u.name.as_str(), &note(&format!("users[{i}].name")));
            let password = u.password.as_ref().map_or("", Secret::expose);
            s.set_noted("password", password, &note(&format!("users[{i}].password")));
            out.array_entry("users", s);
        }

        let mut b =
            Section::new(&["How rwsplit logs into every server (Amoeba's dbServer factoryConfig and poolConfig)."]);
        b.set_noted("user", c.backend.user.as_str(), &note("backend.user"));
        b.set_noted("password", c.backend.password.expose(), &note("backend.password"));
        for (path, key, value) in [
            ("backend.response_timeout_ms", "response_timeout_ms", c.backend.response_timeout_ms),
            (
                "backend.max_connections_per_server",
                "max_connections_per_server",
                c.backend.max_connections_per_server.into(),
            ),
            ("backend.max_idle_per_server", "max_idle_per_server", c.backend.max_idle_per_server.into()),
            ("backend.idle_timeout_ms", "idle_timeout_ms", c.backend.idle_timeout_ms),
        ] {
            if self.origins.contains_key(path) {
                b.set_noted(key, int(value), &note(path));
            }
        }
        out.table("backend", b);

        for (i, server) in c.servers.iter().enumerate() {
            let notes = self.server_notes.get(i).cloned().unwrap_or_default();
            let mut s = Section::new(&notes);
            s.set("name", server.name.as_str());
            s.set_noted("address", server.address.as_str(), &note(&format!("servers[{i}].address")));
            s.set("weight", int(server.weight));
            out.array_entry("servers", s);
        }

        let mut m = Section::new(&[
            "TODO: Amoeba has no monitor account. Create one on every server (MariaDB 10.5+:",
            "GRANT SLAVE MONITOR, PROCESS ON *.*; before: REPLICATION CLIENT, PROCESS) and put it here:",
            "until then the monitor cannot log in and rwsplit takes every server as down.",
        ]);
        m.set("user", c.monitor.user.as_str()).set("password", c.monitor.password.expose());
        out.table("monitor", m);

        if c.routing.master_accepts_reads {
            let mut r = Section::new::<&str>(&[]);
            r.set_noted("master_accepts_reads", true, &note("routing.master_accepts_reads"));
            out.table("routing", r);
        }
        out.finish()
    }
}

/// A pool expanded to its servers.
#[derive(Debug, Default)]
struct Pool {
    /// (dbServer, times named), in the order first named.
    members: Vec<(String, u32)>,
    /// Every dbServer and virtual pool reached.
    visited: Vec<String>,
    loadbalance: Option<Given>,
    names_at: Option<At>,
}

/// " (from parent X)" when a value came from another dbServer than `name`.
fn inherited(from: &str, name: &str) -> String {
    if from == name {
        String::new()
    } else {
        format!(" (from {from})")
    }
}

/// `host:port`, with an IPv6 address in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `<bean>` inside `<property name="NAME">` of `el`.
fn property_bean<'a, 'i>(el: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    elements(el)
        .find(|c| c.tag_name().name() == "property" && c.attribute("name") == Some(name))
        .and_then(|p| elements(p).find(|b| b.tag_name().name() == "bean"))
}

/// The trimmed text of `<property name="NAME">` of `el`.
fn property_bean_value(el: Node, name: &str) -> Option<String> {
    elements(el)
        .find(|c| c.tag_name().name() == "property" && c.attribute("name") == Some(name))
        .map(|p| p.children().filter(Node::is_text).filter_map(|t| t.text()).collect::<String>().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
        let path = PathBuf::from(format!("{}/tests/fixtures/amoeba/{name}", env!("CARGO_MANIFEST_DIR")));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (path, bytes)
    }

    /// Imports the tutorial's files, then loads the result with rwsplit's own loader.
    fn tutorial() -> (AmoebaOutput, Config) {
        let (a, ab) = fixture("amoeba.xml");
        let (s, sb) = fixture("dbServers.xml");
        let out = import_amoeba(&a, &ab, &s, &sb).unwrap_or_else(|e| panic!("{e:#?}"));
        let config = crate::parse(Path::new("imported.toml"), &out.toml)
            .unwrap_or_else(|e| panic!("the imported TOML does not load:\n{e}\n{}", out.toml));
        (out, config)
    }

    /// amoeba.xml with `service` inside the service element and `router` inside queryRouter
    /// (the service starts on line 4, queryRouter's properties on line 8).
    fn amoeba_xml(service: &str, router: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"gbk\"?>\n<amoeba:configuration xmlns:amoeba=\"http://amoeba.meidusa.com/\">\n\
             <proxy>\n<service name=\"Amoeba for Mysql\" class=\"com.meidusa.amoeba.mysql.net.MysqlClientConnectionManager\">\n\
             {service}\n</service>\n</proxy>\n<queryRouter class=\"com.meidusa.amoeba.mysql.parser.MysqlQueryRouter\">\n\
             {router}\n</queryRouter>\n</amoeba:configuration>\n"
        )
    }

    /// The authenticator, on lines 5–8 of [`amoeba_xml`] (its password on line 7).
    const LOGIN: &str = "<property name=\"authenticator\"><bean class=\"x\">\n<property name=\"user\">app</property>\n\
                         <property name=\"password\">pw</property>\n</bean></property>";

    /// dbServers.xml around `body` (which starts on line 3).
    fn servers_xml(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"gbk\"?>\n<amoeba:dbServers xmlns:amoeba=\"http://amoeba.meidusa.com/\">\n\
             {body}\n</amoeba:dbServers>\n"
        )
    }

    /// A one-line dbServer with an ipAddress and `more` factoryConfig properties.
    fn server(name: &str, ip: &str, more: &str) -> String {
        format!(
            "<dbServer name=\"{name}\"><factoryConfig><property name=\"ipAddress\">{ip}</property>{more}\
             </factoryConfig></dbServer>"
        )
    }

    /// A virtual pool over four lines: loadbalance on the second, poolNames on the third.
    fn pool(name: &str, loadbalance: &str, names: &str) -> String {
        format!(
            "<dbServer name=\"{name}\" virtual=\"true\"><poolConfig class=\"com.meidusa.amoeba.server.MultipleServerPool\">\n\
             <property name=\"loadbalance\">{loadbalance}</property>\n<property name=\"poolNames\">{names}</property>\n\
             </poolConfig></dbServer>"
        )
    }

    fn import_texts(amoeba: &str, servers: &str) -> Result<AmoebaOutput, Vec<ConfigError>> {
        import_amoeba(Path::new("amoeba.xml"), amoeba.as_bytes(), Path::new("dbServers.xml"), servers.as_bytes())
    }

    fn import_ok(amoeba: &str, servers: &str) -> (AmoebaOutput, Config) {
        let out = import_texts(amoeba, servers).unwrap_or_else(|e| panic!("{e:#?}"));
        let config = crate::parse(Path::new("i.toml"), &out.toml).unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
        (out, config)
    }

    /// (file name, line) of each notice.
    fn places(notices: &[Notice]) -> Vec<(String, usize)> {
        notices
            .iter()
            .map(|n| (n.file.file_name().unwrap_or_default().to_string_lossy().into_owned(), n.line))
            .collect()
    }

    #[test]
    fn tutorial_files_import_and_validate() {
        let (out, c) = tutorial();
        assert_eq!(c.proxy.listen, "0.0.0.0:8066");
        assert_eq!(c.users.len(), 1);
        let u = &c.users[0];
        assert_eq!((u.name.as_str(), u.password.as_ref().map(Secret::expose)), ("amoeba", Some("123456")));
        assert_eq!((c.backend.user.as_str(), c.backend.password.expose()), ("test", "123.com"));
        let servers: Vec<(&str, &str, u32)> =
            c.servers.iter().map(|s| (s.name.as_str(), s.address.as_str(), s.weight)).collect();
        assert_eq!(
            servers,
            [
                ("master", "192.168.80.10:3306", 1),
                ("slave1", "192.168.80.11:3306", 1),
                ("slave2", "192.168.80.12:3307", 1)
            ]
        );
        // queryTimeout 60 s, maxActive/maxIdle 500, minEvictableIdleTimeMillis 600000.
        let b = &c.backend;
        assert_eq!(
            (b.response_timeout_ms, b.max_connections_per_server, b.max_idle_per_server, b.idle_timeout_ms),
            (60_000, 500, 500, 600_000)
        );
        assert!(!c.routing.master_accepts_reads);
        // Amoeba has no monitor account: a placeholder, and a warning saying so.
        assert_eq!((c.monitor.user.as_str(), c.monitor.password.expose()), (PLACEHOLDER, PLACEHOLDER));
        assert_eq!(places(&out.warnings), [("dbServers.xml".to_string(), 4)], "{:?}", out.warnings);
        assert!(out.warnings[0].what.contains("[monitor]") && out.warnings[0].what.contains("fill it in"));
        // The comments say where values came from, e.g. the port slave2 overrides.
        assert!(
            out.toml.contains("# ipAddress dbServers.xml:54, port dbServers.xml:55\naddress = \"192.168.80.12:3307\""),
            "{}",
            out.toml
        );
        assert!(out.toml.contains("port dbServers.xml:14 (from abstractServer)"), "{}", out.toml);
    }

    #[test]
    fn tutorial_parts_without_rwsplit_meaning_are_listed_with_their_lines() {
        let (out, _) = tutorial();
        let expected = [
            ("amoeba.xml", 18, "manager"),
            ("amoeba.xml", 20, "connectionFactory"),
            ("amoeba.xml", 34, "access_list.conf"),
            ("amoeba.xml", 47, "readThreadPoolSize"),
            ("amoeba.xml", 50, "clientSideThreadPoolSize"),
            ("amoeba.xml", 53, "serverSideThreadPoolSize"),
            ("amoeba.xml", 56, "statementCacheSize"),
            ("amoeba.xml", 64, "connectionManagerList"),
            ("amoeba.xml", 74, "dbServerLoader"),
            ("amoeba.xml", 79, "rule.xml"),
            ("amoeba.xml", 85, "sqlFunctionFile"),
            ("amoeba.xml", 86, "LRUMapSize"),
            ("dbServers.xml", 9, "connectionManager"),
            ("dbServers.xml", 10, "sendBufferSize"),
            ("dbServers.xml", 11, "receiveBufferSize"),
            ("dbServers.xml", 28, "minIdle"),
            ("dbServers.xml", 30, "timeBetweenEvictionRunsMillis"),
            ("dbServers.xml", 31, "testOnBorrow"),
            ("dbServers.xml", 32, "testOnReturn"),
            ("dbServers.xml", 33, "testWhileIdle"),
        ];
        let got: Vec<(String, usize)> = places(&out.ignored);
        let want: Vec<(String, usize)> = expected.iter().map(|(f, l, _)| (f.to_string(), *l)).collect();
        assert_eq!(got, want, "{:#?}", out.ignored);
        for (n, (_, _, what)) in out.ignored.iter().zip(expected) {
            assert!(n.what.contains(what), "{n}");
            // Each says why, in parentheses.
            assert!(n.what.ends_with(')'), "{n}");
        }
    }

    #[test]
    fn weights_count_repeated_names_and_a_writer_in_the_read_pool_takes_reads() {
        let router = "<property name=\"writePool\">master</property>\n<property name=\"readPool\">reads</property>";
        let port_user =
            |port: u16| format!("<property name=\"port\">{port}</property><property name=\"user\">u</property>");
        let servers = [
            server("master", "10.0.0.1", &port_user(3306)),
            server("r1", "10.0.0.2", &port_user(3306)),
            server("r2", "fd00::3", &port_user(3307)),
            pool("reads", "1", " r1, r2 ,r1,master "),
        ]
        .join("\n");
        let (out, c) = import_ok(&amoeba_xml(LOGIN, router), &servers_xml(&servers));
        let got: Vec<(&str, &str, u32)> =
            c.servers.iter().map(|s| (s.name.as_str(), s.address.as_str(), s.weight)).collect();
        assert_eq!(got, [("master", "10.0.0.1:3306", 1), ("r1", "10.0.0.2:3306", 2), ("r2", "[fd00::3]:3307", 1)]);
        assert!(c.routing.master_accepts_reads);
        assert!(out.toml.contains("weight 2: named 2 times in poolNames (dbServers.xml:8)"), "{}", out.toml);
        // No port in amoeba.xml: rwsplit's default listener, no [proxy] written.
        assert!(!out.toml.contains("[proxy]"), "{}", out.toml);
        assert_eq!(c.backend.password.expose(), "");
    }

    #[test]
    fn ha_pool_reads_from_its_first_server_and_unused_servers_are_listed() {
        let router = "<property name=\"writePool\">master</property>\n<property name=\"readPool\">reads</property>";
        let user = "<property name=\"port\">3306</property><property name=\"user\">u</property>";
        let servers = [
            server("master", "10.0.0.1", user),
            server("r1", "10.0.0.2", user),
            server("r2", "10.0.0.3", user),
            server("spare", "10.0.0.4", user),
            pool("reads", "3", "r2,r1"),
        ]
        .join("\n");
        let (out, c) = import_ok(&amoeba_xml(LOGIN, router), &servers_xml(&servers));
        let got: Vec<(&str, u32)> = c.servers.iter().map(|s| (s.name.as_str(), s.weight)).collect();
        assert_eq!(got, [("master", 1), ("r2", 1), ("r1", 0)]);
        // loadbalance is on line 8 of dbServers.xml.
        let warned = places(&out.warnings);
        assert!(warned.contains(&("dbServers.xml".to_string(), 8)), "{:?}", out.warnings);
        let spare = out.ignored.iter().find(|n| n.what.contains("spare")).expect("spare is listed");
        assert_eq!(spare.line, 6, "{spare}");
    }

    #[test]
    fn listener_from_port_and_ip_and_the_default_mysql_port() {
        let service = format!(
            "<property name=\"port\">3316</property>\n<property name=\"ipAddress\">10.1.2.3</property>\n{LOGIN}"
        );
        let router = "<property name=\"defaultPool\">m</property>";
        let servers = server("m", "10.0.0.1", "<property name=\"user\">u</property>");
        let (out, c) = import_ok(&amoeba_xml(&service, router), &servers_xml(&servers));
        assert_eq!(c.proxy.listen, "10.1.2.3:3316");
        assert_eq!(c.servers[0].address, "10.0.0.1:3306");
        // No port anywhere for m: 3306, said as a warning on its line.
        assert!(out.warnings.iter().any(|n| n.line == 3 && n.what.contains("3306")), "{:?}", out.warnings);
    }

    #[test]
    fn missing_backend_user_becomes_a_placeholder_with_a_warning() {
        let router = "<property name=\"writePool\">m</property>";
        let servers = server("m", "10.0.0.1", "<property name=\"port\">3306</property>");
        let (out, c) = import_ok(&amoeba_xml(LOGIN, router), &servers_xml(&servers));
        assert_eq!(c.backend.user, PLACEHOLDER);
        let w = out.warnings.iter().find(|n| n.what.contains("[backend] user")).expect("a warning");
        assert_eq!(w.line, 3, "{w}");
        assert!(out.toml.contains("TODO fill in\nuser = \"CHANGE_ME\""), "{}", out.toml);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let router = "<property name=\"writePool\">master</property>\n<property name=\"readPool\">reads</property>";
        let user = "<property name=\"user\">u</property><property name=\"port\">3306</property>";
        // A pool naming unknown servers (poolNames on line 6).
        let servers = [server("master", "10.0.0.1", user), pool("reads", "1", "r1,ghost")].join("\n");
        let e = import_texts(&amoeba_xml(LOGIN, router), &servers_xml(&servers)).unwrap_err();
        let got: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert!(got.iter().any(|e| e.starts_with("dbServers.xml:6: ") && e.contains("\"r1\"")), "{got:?}");
        assert!(got.iter().any(|e| e.starts_with("dbServers.xml:6: ") && e.contains("\"ghost\"")), "{got:?}");

        // An unknown parent, a bad port.
        let servers = "<dbServer name=\"master\" parent=\"nope\">\n<factoryConfig>\n\
                       <property name=\"ipAddress\">10.0.0.1</property>\n<property name=\"port\">99999</property>\n\
                       </factoryConfig></dbServer>";
        let router = "<property name=\"writePool\">master</property>";
        let e = import_texts(&amoeba_xml(LOGIN, router), &servers_xml(servers)).unwrap_err();
        let got: Vec<(Option<usize>, bool)> = e.iter().map(|e| (e.line, e.file.ends_with("dbServers.xml"))).collect();
        assert_eq!(got, [(Some(3), true), (Some(6), true)], "{e:?}");
        assert!(e[0].reason.contains("\"nope\"") && e[1].reason.contains("99999"), "{e:?}");

        // What rwsplit's validation refuses points at the Amoeba line too.
        let servers = server("db.1", "10.0.0.1", user);
        let router = "<property name=\"writePool\">db.1</property>";
        let e = import_texts(&amoeba_xml(LOGIN, router), &servers_xml(&servers)).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].line, e[0].path.as_str()), (Some(3), "dbServer db.1"), "{e:?}");
        assert!(e[0].to_string().starts_with("dbServers.xml:3: dbServer db.1: use letters"), "{}", e[0]);

        // No login in amoeba.xml.
        let e = import_texts(&amoeba_xml("", router), &servers_xml(&server("db.1", "10.0.0.1", user))).unwrap_err();
        let login = e.iter().find(|e| e.reason.contains("authenticator")).expect("the missing login");
        assert!(login.file.ends_with("amoeba.xml") && login.line == Some(4), "{e:?}");
    }

    #[test]
    fn xml_syntax_errors_name_their_line() {
        let e = import_texts("<a>\n<b>\n</a>\n", &servers_xml("")).unwrap_err();
        assert_eq!((e.len(), e[0].line), (1, Some(3)), "{e:?}");
        assert!(e[0].reason.starts_with("not well-formed XML"), "{e:?}");
        // Both files' errors at once.
        let e = import_texts("", "<x").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[1].file.ends_with("dbServers.xml"), "{e:?}");
    }

    #[test]
    fn gbk_comments_are_fine_but_a_gbk_value_is_an_error() {
        // "主库" in GBK: in a comment, then as the login's password.
        let gbk = [0xd6u8, 0xf7, 0xbf, 0xe2];
        let router = "<property name=\"writePool\">m</property>";
        let user = "<property name=\"user\">u</property><property name=\"port\">3306</property>";
        let mut servers = servers_xml(&server("m", "10.0.0.1", user)).into_bytes();
        let mut comment = b"<!-- ".to_vec();
        comment.extend(gbk);
        comment.extend(b" -->\n");
        let end = servers.len() - "</amoeba:dbServers>\n".len();
        servers.splice(end..end, comment);
        let amoeba = amoeba_xml(LOGIN, router);
        let out = import_amoeba(Path::new("amoeba.xml"), amoeba.as_bytes(), Path::new("dbServers.xml"), &servers);
        assert!(out.is_ok(), "{out:?}");

        let mut amoeba = amoeba.into_bytes();
        let at = amoeba.windows(4).position(|w| w == b">pw<").expect("the password") + 1;
        amoeba.splice(at..at + 2, gbk);
        let e = import_amoeba(Path::new("amoeba.xml"), &amoeba, Path::new("dbServers.xml"), &servers).unwrap_err();
        assert_eq!((e.len(), e[0].line), (1, Some(7)), "{e:?}");
        assert!(e[0].reason.contains("not UTF-8"), "{e:?}");
    }

    #[test]
    fn values_are_quoted_safely() {
        let login = LOGIN.replace(">pw<", ">a\"b\\c'''&#10;[x]<");
        let router = "<property name=\"writePool\">m</property>";
        let user = "<property name=\"user\">u</property><property name=\"port\">3306</property>";
        let (_, c) = import_ok(&amoeba_xml(&login, router), &servers_xml(&server("m", "10.0.0.1", user)));
        assert_eq!(c.users[0].password.as_ref().map(Secret::expose), Some("a\"b\\c'''\n[x]"));
    }
}
