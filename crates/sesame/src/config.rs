//! Settings for `sesame serve` and the operator commands, layered: command
//! line, then `SESAME_*` environment variables (clap reads both), then the
//! TOML file named by `--config`, then defaults. A bad value is a startup
//! error that names the setting.

use clap::Args;
use serde::Deserialize;
use sesame_model::verification::DnsPublishing;
use sesame_model::{AccountId, RetryPolicy};
use sesame_smtp::RelayConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4579";
pub const DEFAULT_DATA_DIR: &str = "./sesame-data";
pub const DEFAULT_DEV_ACCOUNT: &str = "000000000000";

/// Settings every command shares: where the config file and data live.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// TOML config file; command-line flags and SESAME_* variables override it.
    #[arg(long, env = "SESAME_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store [default: ./sesame-data]
    #[arg(long, env = "SESAME_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL database that several nodes share, postgres://USER[:PASSWORD]@HOST[:PORT]/DB (prefer the variable: a password on the command line is visible to every user) [default: SQLite in the data directory]
    #[arg(long, env = "SESAME_DATABASE", global = true)]
    pub database: Option<String>,
    /// This node's name among the nodes sharing a database: each node's own, and the same across its restarts [default: the host name]
    #[arg(long, env = "SESAME_NODE_NAME", global = true)]
    pub node_name: Option<String>,
}

/// DNS settings `sesame serve` and `sesame identities check` share.
#[derive(Clone, Default, Args)]
pub struct DnsArgs {
    /// DNS server for MX lookups and verification, HOST:PORT; repeatable [default: the system's resolver]
    #[arg(long = "dns-server", env = "SESAME_DNS_SERVERS", value_delimiter = ',')]
    pub dns_servers: Vec<String>,
    /// Zone Easy DKIM CNAMEs point into: <token>._domainkey.<domain> CNAME <token>.ZONE [default: none; keys are published as TXT]
    #[arg(long, env = "SESAME_DKIM_CNAME_ZONE")]
    pub dkim_cname_zone: Option<String>,
    /// Host that custom MAIL FROM domains' MX records must name [default: the host name]
    #[arg(long, env = "SESAME_MAIL_FROM_MX")]
    pub mail_from_mx: Option<String>,
    /// Primary DNS server that takes identities' records by RFC 2136 dynamic update, HOST:PORT [default: none]
    #[arg(long, env = "SESAME_DNS_UPDATE_SERVER")]
    pub dns_update_server: Option<String>,
    /// Name of the TSIG key that signs the updates
    #[arg(long, env = "SESAME_TSIG_KEY_NAME")]
    pub tsig_key_name: Option<String>,
    /// hmac-sha256, hmac-sha384 or hmac-sha512 [default: hmac-sha256]
    #[arg(long, env = "SESAME_TSIG_ALGORITHM")]
    pub tsig_algorithm: Option<String>,
    /// The TSIG key's secret, base64 (prefer --tsig-secret-file or the variable)
    #[arg(long, env = "SESAME_TSIG_SECRET", hide_env_values = true)]
    pub tsig_secret: Option<String>,
    /// A file holding the TSIG key's secret, base64
    #[arg(long, env = "SESAME_TSIG_SECRET_FILE")]
    pub tsig_secret_file: Option<PathBuf>,
    /// Publish a new domain identity's records when it is created
    #[arg(long, env = "SESAME_PUBLISH_ON_CREATE")]
    pub publish_on_create: bool,
}

impl std::fmt::Debug for DnsArgs {
    // The TSIG secret never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsArgs")
            .field("dns_servers", &self.dns_servers)
            .field("dkim_cname_zone", &self.dkim_cname_zone)
            .field("mail_from_mx", &self.mail_from_mx)
            .field("dns_update_server", &self.dns_update_server)
            .field("tsig_key_name", &self.tsig_key_name)
            .finish_non_exhaustive()
    }
}

/// `sesame serve`'s own settings.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4579]
    #[arg(long, env = "SESAME_LISTEN")]
    pub listen: Option<String>,
    /// Local-development mode: any well-formed credentials are accepted.
    #[arg(long, env = "SESAME_DEV")]
    pub dev: bool,
    /// New identities (and their DKIM) are verified at once.
    #[arg(long, env = "SESAME_AUTO_VERIFY")]
    pub auto_verify: bool,
    /// New accounts start with production access instead of the sandbox.
    #[arg(long, env = "SESAME_NO_SANDBOX")]
    pub no_sandbox: bool,
    /// Account for --dev credentials whose key ID is not 12 digits [default: 000000000000]
    #[arg(long, env = "SESAME_DEV_ACCOUNT_ID")]
    pub dev_account_id: Option<String>,
    /// Base URL of verification links [default: http://LISTEN]
    #[arg(long, env = "SESAME_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Sender of verification emails [default: no-reply@sesame.localhost]
    #[arg(long, env = "SESAME_VERIFICATION_FROM")]
    pub verification_from: Option<String>,
    /// MiB that API requests in hand may take at once (about three times each body); large ones wait for room [default: 256]
    #[arg(long, env = "SESAME_REQUEST_MEMORY")]
    pub request_memory: Option<usize>,
    /// How accepted mail leaves: capture (the local mailbox), relay or direct [default: capture with --dev, else direct]
    #[arg(long, env = "SESAME_DELIVERY")]
    pub delivery: Option<String>,
    /// Smarthost for --delivery relay: smtp[s]://[user:pass@]host[:port][?tls=none][&insecure=true]
    #[arg(long, env = "SESAME_RELAY")]
    pub relay: Option<String>,
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Serve the DKIM zone (--dkim-cname-zone) on this address, UDP and TCP, e.g. 0.0.0.0:53
    #[arg(long, env = "SESAME_DNS_LISTEN")]
    pub dns_listen: Option<String>,
    /// How often domain identities' DNS records are checked, e.g. 30s, 5m [default: 5m]
    #[arg(long, env = "SESAME_VERIFY_INTERVAL")]
    pub verify_interval: Option<String>,
    /// Most DNS queries the verifier has in flight at once [default: 64]
    #[arg(long, env = "SESAME_DNS_MAX_IN_FLIGHT")]
    pub dns_max_in_flight: Option<usize>,
    /// Port MX hosts are reached on in direct delivery [default: 25]
    #[arg(long, env = "SESAME_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// This host's name in EHLO and in events [default: the system host name]
    #[arg(long, env = "SESAME_HOSTNAME")]
    pub hostname: Option<String>,
    /// Domain of VERP return paths, <message-id>@DOMAIN [default: the host name]
    #[arg(long, env = "SESAME_BOUNCE_DOMAIN")]
    pub bounce_domain: Option<String>,
    /// First retry after a temporary failure, e.g. 30s [default: 60s]
    #[arg(long, env = "SESAME_RETRY_INITIAL")]
    pub retry_initial: Option<String>,
    /// Longest wait between retries [default: 1h]
    #[arg(long, env = "SESAME_RETRY_MAX_INTERVAL")]
    pub retry_max_interval: Option<String>,
    /// Age at which a message still not delivered bounces [default: 14h]
    #[arg(long, env = "SESAME_MAX_MESSAGE_AGE")]
    pub max_message_age: Option<String>,
    /// How long a claimed delivery is this node's; a node that dies holding it gives it up to another after this long. Longer than any attempt [default: 15m]
    #[arg(long, env = "SESAME_DELIVERY_LEASE")]
    pub delivery_lease: Option<String>,
    /// Delivery attempts in flight at once [default: 64]
    #[arg(long, env = "SESAME_DELIVERY_CONCURRENCY")]
    pub delivery_concurrency: Option<usize>,
    /// MiB that delivery attempts may hold at once (each counted at its message and as much again, up to 128 KiB); large messages wait for room [default: 256]
    #[arg(long, env = "SESAME_DELIVERY_MEMORY")]
    pub delivery_memory: Option<usize>,
    /// Connections at once to one recipient domain in direct delivery [default: 8]
    #[arg(long, env = "SESAME_DOMAIN_CONCURRENCY")]
    pub domain_concurrency: Option<usize>,
    /// Connections the API listener holds at once; more are closed at once [default: 1024]
    #[arg(long, env = "SESAME_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections one peer address may hold at once [default: 128]
    #[arg(long, env = "SESAME_MAX_CONNECTIONS_PER_PEER")]
    pub max_connections_per_peer: Option<usize>,
    /// Time a client has to send a request's headers, and a kept-alive connection may stay idle [default: 10s]
    #[arg(long, env = "SESAME_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// Time a client has to send a whole request body [default: 60s]
    #[arg(long, env = "SESAME_BODY_TIMEOUT")]
    pub body_timeout: Option<String>,
    /// API calls a second per account and region for every action but the sends (SES: 1); off to turn it off [default: 1, off with --dev]
    #[arg(long, env = "SESAME_API_RATE")]
    pub api_rate: Option<String>,
    /// Regions the API answers in, comma-separated [default: SES's regions]
    #[arg(long, env = "SESAME_REGIONS", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Least time between two verification emails to one address; off to turn it off [default: 60s, off when mail is captured]
    #[arg(long, env = "SESAME_VERIFICATION_EMAIL_INTERVAL")]
    pub verification_email_interval: Option<String>,
    /// Serve /_sesame/metrics on this address instead of the API listener, e.g. 127.0.0.1:9579
    #[arg(long, env = "SESAME_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Bearer token /_sesame/metrics requires (Authorization: Bearer TOKEN)
    #[arg(long, env = "SESAME_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
    /// How often the compliance audit refreshes its gauges on /_sesame/metrics (sesame_audit_findings) [default: 5m]
    #[arg(long, env = "SESAME_AUDIT_INTERVAL")]
    pub audit_interval: Option<String>,
    /// How long finished deliveries, delivered messages, published events and rejections are kept, at least 15d; off keeps everything [default: 30d]
    #[arg(long, env = "SESAME_RETENTION")]
    pub retention: Option<String>,
    /// The token that makes a console session an operator's (approve production access); not needed in --dev
    #[arg(long, env = "SESAME_CONSOLE_OPERATOR_TOKEN")]
    pub console_operator_token: Option<String>,
    /// SMTP submission with STARTTLS (SES's port 587), HOST:PORT [default: off]
    #[arg(long, env = "SESAME_SMTP_LISTEN")]
    pub smtp_listen: Option<String>,
    /// SMTP submission over implicit TLS (SES's port 465), HOST:PORT [default: off]
    #[arg(long, env = "SESAME_SMTPS_LISTEN")]
    pub smtps_listen: Option<String>,
    /// The bounce domain's MX: takes DSNs and ARF reports for Sesame's return paths, HOST:PORT [default: off]
    #[arg(long, env = "SESAME_INBOUND_LISTEN")]
    pub inbound_listen: Option<String>,
    /// The region SMTP submissions send in, as each SES SMTP endpoint has one [default: us-east-1]
    #[arg(long, env = "SESAME_SMTP_REGION")]
    pub smtp_region: Option<String>,
    /// PEM certificate chain for SMTP's TLS [default: self-signed in --dev]
    #[arg(long, env = "SESAME_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for SMTP's TLS
    #[arg(long, env = "SESAME_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Direct delivery may connect to loopback, private, link-local and other reserved addresses, and to address literals (for tests and closed networks)
    #[arg(long, env = "SESAME_DELIVERY_ALLOW_PRIVATE")]
    pub delivery_allow_private: bool,
    /// aws-lc's RSA code for DKIM signing: auto (its AVX2 code on AMD CPUs without AVX-512 IFMA, where that is faster), avx2 or default [default: auto]
    #[arg(long, env = "SESAME_RSA_PATH")]
    pub rsa_path: Option<String>,
}

impl ServeArgs {
    /// `--rsa-path`, else `[dkim] rsa_path`, else auto. Read before the
    /// server starts (see `rsa_path`), so it is not part of [`Settings`].
    pub fn rsa_path(&self, file: &FileConfig) -> Result<crate::rsa_path::RsaPath, String> {
        let (v, name) = match (
            &self.rsa_path,
            file.dkim.as_ref().and_then(|d| d.rsa_path.as_ref()),
        ) {
            (Some(v), _) => (v, "--rsa-path"),
            (None, Some(v)) => (v, "[dkim] rsa_path"),
            (None, None) => return Ok(crate::rsa_path::RsaPath::Auto),
        };
        crate::rsa_path::RsaPath::parse(v).map_err(|e| format!("{name}: {e}"))
    }
}

/// The config file's keys; any other key is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub node_name: Option<String>,
    pub delivery_lease: Option<String>,
    pub dev: Option<bool>,
    pub auto_verify: Option<bool>,
    pub no_sandbox: Option<bool>,
    pub dev_account_id: Option<String>,
    pub public_url: Option<String>,
    pub verification_from: Option<String>,
    pub request_memory: Option<usize>,
    pub delivery: Option<String>,
    pub relay: Option<String>,
    pub dns_servers: Option<Vec<String>>,
    pub smtp_port: Option<u16>,
    pub hostname: Option<String>,
    pub bounce_domain: Option<String>,
    pub retry_initial: Option<String>,
    pub retry_max_interval: Option<String>,
    pub max_message_age: Option<String>,
    pub delivery_concurrency: Option<usize>,
    pub delivery_memory: Option<usize>,
    pub domain_concurrency: Option<usize>,
    pub mail_from_mx: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: Option<usize>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub api_rate: Option<String>,
    pub regions: Option<Vec<String>>,
    pub verification_email_interval: Option<String>,
    pub metrics_listen: Option<String>,
    pub metrics_token: Option<String>,
    pub audit_interval: Option<String>,
    pub retention: Option<String>,
    pub console_operator_token: Option<String>,
    pub smtp_listen: Option<String>,
    pub smtps_listen: Option<String>,
    pub inbound_listen: Option<String>,
    pub smtp_region: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub delivery_allow_private: Option<bool>,
    pub dkim: Option<DkimFile>,
    pub dns: Option<DnsFile>,
    pub sns: Option<SnsFile>,
    pub feedback: Option<FeedbackFile>,
}

/// `[feedback]` in the config file: where event destinations that name an
/// EventBridge bus or a Firehose stream deliver, by ARN.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackFile {
    /// Bus ARN → an `http(s)` URL that receives EventBridge's envelope.
    #[serde(default)]
    pub eventbridge: std::collections::HashMap<String, String>,
    /// Stream ARN → an `http(s)` URL, or `file://` and a path of a JSON-lines file.
    #[serde(default)]
    pub firehose: std::collections::HashMap<String, String>,
}

/// `[sns]` in the config file: topics an operator declares, with their
/// subscriptions, so that no API call is needed to set feedback up.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsFile {
    #[serde(default)]
    pub topics: Vec<TopicFile>,
}

/// One `[[sns.topics]]`: made at start if missing (never deleted when it
/// leaves the file). Its subscriptions are the operator's, so they need no
/// confirmation handshake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicFile {
    pub account: String,
    pub region: String,
    pub name: String,
    pub signature_version: Option<u8>,
    pub display_name: Option<String>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionFile {
    pub protocol: String,
    pub endpoint: String,
    #[serde(default)]
    pub raw_message_delivery: bool,
}

/// `[dkim]` in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimFile {
    pub cname_zone: Option<String>,
    pub rsa_path: Option<String>,
}

/// `[dns]` in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFile {
    pub listen: Option<String>,
    pub verify_interval: Option<String>,
    pub max_in_flight: Option<usize>,
    pub publish: Option<PublishFile>,
}

/// `[dns.publish]`: the operator's primary server, for dynamic updates.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishFile {
    pub server: Option<String>,
    pub key_name: Option<String>,
    pub algorithm: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub on_create: Option<bool>,
}

impl std::fmt::Debug for PublishFile {
    // The TSIG secret never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishFile")
            .field("server", &self.server)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

/// Where identities' records are published, resolved.
#[derive(Clone)]
pub struct PublishConfig {
    pub server: SocketAddr,
    pub key_name: String,
    pub algorithm: String,
    pub secret: String,
    pub on_create: bool,
}

impl std::fmt::Debug for PublishConfig {
    // The TSIG secret never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishConfig")
            .field("server", &self.server)
            .field("key_name", &self.key_name)
            .field("algorithm", &self.algorithm)
            .field("on_create", &self.on_create)
            .finish_non_exhaustive()
    }
}

impl PublishConfig {
    /// The flags over `[dns.publish]`; `None` when no server is set. The
    /// secret comes from its flag or variable, else its file.
    fn resolve(dns: &DnsArgs, file: Option<&PublishFile>) -> Result<Option<Self>, String> {
        let file = file.cloned().unwrap_or_default();
        let Some(server) = dns.dns_update_server.clone().or(file.server) else {
            return Ok(None);
        };
        let server = server.parse::<SocketAddr>().map_err(|_| {
            format!("invalid value '{server}' for setting dns.publish.server (--dns-update-server, SESAME_DNS_UPDATE_SERVER): expected HOST:PORT such as 127.0.0.1:53")
        })?;
        let key_name = dns.tsig_key_name.clone().or(file.key_name).ok_or(
            "setting dns.publish.key_name (--tsig-key-name, SESAME_TSIG_KEY_NAME) is needed to sign updates",
        )?;
        let secret = match (
            dns.tsig_secret.clone().or(file.secret),
            dns.tsig_secret_file.clone().or(file.secret_file),
        ) {
            (Some(s), _) => s,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the TSIG secret file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => {
                return Err("the TSIG secret is needed to sign updates: set dns.publish.secret_file (--tsig-secret-file, SESAME_TSIG_SECRET_FILE) or SESAME_TSIG_SECRET".into());
            }
        };
        Ok(Some(Self {
            server,
            key_name,
            algorithm: dns
                .tsig_algorithm
                .clone()
                .or(file.algorithm)
                .unwrap_or_else(|| "hmac-sha256".into()),
            secret,
            on_create: dns.publish_on_create || file.on_create.unwrap_or(false),
        }))
    }
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

/// Checks the operator's EventBridge and Firehose targets: `http(s)` URLs,
/// or for Firehose `file://` and an absolute path.
fn feedback_targets(f: FeedbackFile) -> Result<FeedbackFile, String> {
    let url = |v: &str| v.starts_with("http://") || v.starts_with("https://");
    for (arn, v) in &f.eventbridge {
        if !url(v) {
            return Err(format!(
                "invalid value '{v}' for [feedback.eventbridge] \"{arn}\": expected an http:// or https:// URL"
            ));
        }
    }
    for (arn, v) in &f.firehose {
        let file = v
            .strip_prefix("file://")
            .is_some_and(|p| p.starts_with('/'));
        if !url(v) && !file {
            return Err(format!(
                "invalid value '{v}' for [feedback.firehose] \"{arn}\": expected an http(s):// URL or file:///absolute/path"
            ));
        }
    }
    Ok(f)
}

/// Validated settings for the server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Where the store is (SQLite in the data directory, or PostgreSQL).
    pub store: StoreConfig,
    pub dev: bool,
    pub auto_verify: bool,
    /// Recorded for the sending rules: new accounts start out of the sandbox.
    pub no_sandbox: bool,
    pub dev_account_id: AccountId,
    /// The base of verification links.
    pub public_url: String,
    /// The system address verification emails come from.
    pub verification_from: String,
    /// Bytes that API requests in hand may take at once.
    pub request_memory: usize,
    pub delivery: DeliveryConfig,
    pub verify: VerifyConfig,
    pub guard: GuardConfig,
    /// Topics declared in the config file (`[[sns.topics]]`).
    pub topics: Vec<TopicFile>,
    /// `[feedback]`: the operator's EventBridge and Firehose targets.
    pub feedback: FeedbackFile,
    /// SMTP submission, when a listener is set.
    pub smtp: SmtpConfig,
}

impl Settings {
    /// The settings every node sharing a database must agree on
    /// (`docs/deployment.md`), by name, as their values read; no secret is
    /// among them (a relay is its host and port).
    pub fn shared(&self) -> std::collections::BTreeMap<&'static str, String> {
        let d = &self.delivery;
        let mode = match &d.mode {
            DeliveryMode::Capture => "capture".to_owned(),
            DeliveryMode::Relay(r) => format!("relay {}:{}", r.host, r.port),
            DeliveryMode::Direct => "direct".to_owned(),
        };
        let ms = |v: i64| v.to_string();
        [
            ("dev", self.dev.to_string()),
            ("auto_verify", self.auto_verify.to_string()),
            ("no_sandbox", self.no_sandbox.to_string()),
            ("public_url", self.public_url.clone()),
            ("verification_from", self.verification_from.clone()),
            ("delivery", mode),
            ("hostname", d.hostname.clone()),
            ("bounce_domain", d.bounce_domain.clone()),
            ("retry_initial", ms(d.retry.initial_ms)),
            ("retry_max_interval", ms(d.retry.max_interval_ms)),
            ("max_message_age", ms(d.retry.max_age_ms)),
            ("delivery_lease", format!("{:?}", d.lease)),
            ("retention", format!("{:?}", self.guard.retention)),
            ("regions", format!("{:?}", self.guard.regions)),
            ("api_rate", format!("{:?}", self.guard.api_rate)),
            (
                "dkim_cname_zone",
                format!("{:?}", self.verify.publishing.cname_zone),
            ),
            ("mail_from_mx", self.verify.publishing.mail_from_mx.clone()),
        ]
        .into_iter()
        .collect()
    }
}

/// SMTP submission's listeners, region and certificate.
#[derive(Debug, Clone, Default)]
pub struct SmtpConfig {
    /// STARTTLS (587).
    pub listen: Option<SocketAddr>,
    /// Implicit TLS (465).
    pub listen_tls: Option<SocketAddr>,
    /// The inbound MX for DSNs and ARF reports.
    pub inbound: Option<SocketAddr>,
    pub region: Option<sesame_model::Region>,
    /// PEM files; `None` makes a self-signed certificate (`--dev` only).
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl SmtpConfig {
    fn resolve(serve: &ServeArgs, file: &FileConfig, dev: bool) -> Result<Self, String> {
        let addr =
            |v: Option<String>, name: &str, flag: &str| -> Result<Option<SocketAddr>, String> {
                v.map(|v| {
                    v.parse::<SocketAddr>()
                        .map_err(|_| invalid(name, flag, &v, "HOST:PORT such as 0.0.0.0:587"))
                })
                .transpose()
            };
        let listen = addr(
            pick(&serve.smtp_listen, &file.smtp_listen),
            "smtp_listen",
            "smtp-listen",
        )?;
        let listen_tls = addr(
            pick(&serve.smtps_listen, &file.smtps_listen),
            "smtps_listen",
            "smtps-listen",
        )?;
        let inbound = addr(
            pick(&serve.inbound_listen, &file.inbound_listen),
            "inbound_listen",
            "inbound-listen",
        )?;
        let region = pick(&serve.smtp_region, &file.smtp_region)
            .map(|r| {
                sesame_model::Region::parse(&r).map_err(|_| {
                    invalid(
                        "smtp_region",
                        "smtp-region",
                        &r,
                        "a region such as us-east-1",
                    )
                })
            })
            .transpose()?;
        let cert = match (
            pick(&serve.tls_cert, &file.tls_cert),
            pick(&serve.tls_key, &file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(
                    "settings tls_cert and tls_key (--tls-cert, --tls-key) go together".into(),
                );
            }
        };
        if (listen.is_some() || listen_tls.is_some() || inbound.is_some()) && cert.is_none() && !dev
        {
            return Err("SMTP submission needs a certificate: set tls_cert and tls_key (--tls-cert, --tls-key); only --dev makes a self-signed one".into());
        }
        Ok(Self {
            listen,
            listen_tls,
            inbound,
            region,
            cert,
        })
    }
}

/// Validated settings that keep callers from hurting the server or each
/// other: connection limits and timeouts, the API call rate, the regions
/// served, the verification-email interval and where metrics are served.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    /// Calls a second per account and region; `None` is off.
    pub api_rate: Option<u32>,
    pub regions: Vec<sesame_model::Region>,
    /// Least time between two verification emails to one address; `None` is off.
    pub verification_email_interval: Option<std::time::Duration>,
    pub metrics_listen: Option<SocketAddr>,
    pub metrics_token: Option<String>,
    /// How often the audit's gauges are refreshed.
    pub audit_interval: std::time::Duration,
    /// How long what the store no longer needs is kept; `None` keeps all.
    pub retention: Option<std::time::Duration>,
    /// The console's operator token; `None`: no operator sign-in (but
    /// `--dev` sessions are operators').
    pub console_operator_token: Option<String>,
}

impl GuardConfig {
    /// `captured`: mail stays in the local mailbox (`--delivery capture`).
    fn resolve(
        serve: &ServeArgs,
        file: &FileConfig,
        dev: bool,
        captured: bool,
    ) -> Result<Self, String> {
        let duration = |name: &str, flag: &str, v: Option<String>, default_ms: i64| {
            millis(name, flag, v, default_ms).map(|ms| std::time::Duration::from_millis(ms as u64))
        };
        let api_rate =
            match pick(&serve.api_rate, &file.api_rate).as_deref() {
                Some("off") => None,
                None if dev => None,
                None => Some(1),
                Some(v) => Some(v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid("api_rate", "api-rate", v, "a number above 0, or off")
                })?),
            };
        let regions = if !serve.regions.is_empty() {
            serve.regions.clone()
        } else {
            file.regions.clone().unwrap_or_default()
        };
        let regions = if regions.is_empty() {
            sesame_model::scope::SES_REGIONS
                .iter()
                .map(|r| sesame_model::Region::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.message)?
        } else {
            regions
                .iter()
                .map(|r| {
                    sesame_model::Region::parse(r.trim()).map_err(|_| {
                        invalid("regions", "regions", r, "region names such as us-east-1")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let metrics_listen = match pick(&serve.metrics_listen, &file.metrics_listen) {
            None => None,
            Some(l) => Some(l.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "metrics_listen",
                    "metrics-listen",
                    &l,
                    "HOST:PORT such as 127.0.0.1:9579",
                )
            })?),
        };
        let metrics_token = pick(&serve.metrics_token, &file.metrics_token);
        if metrics_token.as_deref().is_some_and(|t| t.len() < 16) {
            // Not the value: it is a secret.
            return Err("setting metrics_token (--metrics-token, SESAME_METRICS_TOKEN) must be at least 16 characters".into());
        }
        Ok(Self {
            max_connections: count(
                "max_connections",
                "max-connections",
                pick(&serve.max_connections, &file.max_connections),
                1024,
            )?,
            max_connections_per_peer: count(
                "max_connections_per_peer",
                "max-connections-per-peer",
                pick(
                    &serve.max_connections_per_peer,
                    &file.max_connections_per_peer,
                ),
                128,
            )?,
            header_timeout: duration(
                "header_timeout",
                "header-timeout",
                pick(&serve.header_timeout, &file.header_timeout),
                10_000,
            )?,
            body_timeout: duration(
                "body_timeout",
                "body-timeout",
                pick(&serve.body_timeout, &file.body_timeout),
                60_000,
            )?,
            api_rate,
            regions,
            verification_email_interval: match pick(
                &serve.verification_email_interval,
                &file.verification_email_interval,
            )
            .as_deref()
            {
                Some("off") => None,
                // Captured mail reaches nobody: there is nobody to spam.
                None if captured => None,
                v => Some(duration(
                    "verification_email_interval",
                    "verification-email-interval",
                    v.map(str::to_owned),
                    60_000,
                )?),
            },
            metrics_listen,
            metrics_token,
            audit_interval: duration(
                "audit_interval",
                "audit-interval",
                pick(&serve.audit_interval, &file.audit_interval),
                300_000,
            )?,
            retention: match pick(&serve.retention, &file.retention).as_deref() {
                Some("off") => None,
                v => {
                    let keep = duration(
                        "retention",
                        "retention",
                        v.map(str::to_owned),
                        30 * 24 * 3_600_000,
                    )?;
                    if keep < sesame_core::retention::MIN_KEEP {
                        return Err(invalid(
                            "retention",
                            "retention",
                            v.unwrap_or_default(),
                            "at least 15d (SES's sending statistics cover two weeks), or off",
                        ));
                    }
                    Some(keep)
                }
            },
            console_operator_token: match pick(
                &serve.console_operator_token,
                &file.console_operator_token,
            ) {
                Some(t) if t.len() < 16 => {
                    return Err("setting console_operator_token (--console-operator-token, SESAME_CONSOLE_OPERATOR_TOKEN) must be at least 16 characters".into());
                }
                t => t,
            },
        })
    }
}

/// Validated settings of the DNS verifier and the DKIM zone listener.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Where identities' records are published by dynamic update.
    pub publish: Option<PublishConfig>,
    pub dns_servers: Vec<SocketAddr>,
    pub publishing: DnsPublishing,
    pub interval: std::time::Duration,
    pub max_in_flight: usize,
    /// Where the DKIM zone is served, if at all.
    pub listen: Option<SocketAddr>,
    /// The zone's name server (the host name).
    pub hostname: String,
}

impl VerifyConfig {
    pub fn resolve(
        dns: &DnsArgs,
        serve: &ServeArgs,
        file: &FileConfig,
        hostname: &str,
    ) -> Result<Self, String> {
        let dns_file = file.dns.clone().unwrap_or_default();
        let cname_zone = dns
            .dkim_cname_zone
            .clone()
            .or_else(|| file.dkim.as_ref().and_then(|d| d.cname_zone.clone()))
            .map(|z| z.trim_end_matches('.').to_ascii_lowercase());
        if let Some(z) = &cname_zone
            && sesame_model::IdentityName::domain(z).is_err()
        {
            return Err(format!(
                "invalid value '{z}' for setting dkim.cname_zone (--dkim-cname-zone, SESAME_DKIM_CNAME_ZONE): expected a domain name"
            ));
        }
        let listen = match serve.dns_listen.clone().or(dns_file.listen) {
            None => None,
            Some(l) => Some(l.parse::<SocketAddr>().map_err(|_| {
                format!("invalid value '{l}' for setting dns.listen (--dns-listen, SESAME_DNS_LISTEN): expected HOST:PORT such as 0.0.0.0:53")
            })?),
        };
        if listen.is_some() && cname_zone.is_none() {
            return Err("setting dns.listen (--dns-listen) serves the DKIM zone, but no zone is set: set dkim.cname_zone (--dkim-cname-zone)".into());
        }
        let interval = match serve.verify_interval.clone().or(dns_file.verify_interval) {
            None => 300_000,
            Some(v) => parse_duration(&v).ok_or_else(|| {
                format!("invalid value '{v}' for setting dns.verify_interval (--verify-interval, SESAME_VERIFY_INTERVAL): expected a duration such as 30s or 5m")
            })?,
        };
        let max_in_flight = match serve.dns_max_in_flight.or(dns_file.max_in_flight) {
            Some(0) => {
                return Err("invalid value '0' for setting dns.max_in_flight (--dns-max-in-flight, SESAME_DNS_MAX_IN_FLIGHT): expected a number above 0".into());
            }
            Some(n) => n,
            None => 64,
        };
        Ok(Self {
            publish: PublishConfig::resolve(dns, dns_file.publish.as_ref())?,
            dns_servers: dns_servers(dns, file)?,
            publishing: DnsPublishing {
                cname_zone,
                mail_from_mx: dns
                    .mail_from_mx
                    .clone()
                    .or_else(|| file.mail_from_mx.clone())
                    .unwrap_or_else(|| hostname.to_owned())
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            },
            interval: std::time::Duration::from_millis(interval as u64),
            max_in_flight,
            listen,
            hostname: hostname.to_owned(),
        })
    }
}

/// `--dns-server` (or `dns_servers` in the file) as socket addresses.
pub fn dns_servers(dns: &DnsArgs, file: &FileConfig) -> Result<Vec<SocketAddr>, String> {
    let servers = if dns.dns_servers.is_empty() {
        file.dns_servers.clone().unwrap_or_default()
    } else {
        dns.dns_servers.clone()
    };
    servers
        .iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| {
                    s.parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    format!("invalid value '{s}' for setting dns_servers (--dns-server, SESAME_DNS_SERVERS): expected IP:PORT such as 127.0.0.1:53")
                })
        })
        .collect()
}

/// The host name: `--hostname`, the file's, or the system's.
pub fn hostname(serve_hostname: &Option<String>, file: &FileConfig) -> String {
    serve_hostname
        .clone()
        .or_else(|| file.hostname.clone())
        .unwrap_or_else(system_hostname)
}

/// Where accepted mail goes.
#[derive(Debug, Clone)]
pub enum DeliveryMode {
    Capture,
    Relay(RelayConfig),
    Direct,
}

/// Validated delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub mode: DeliveryMode,
    pub dns_servers: Vec<SocketAddr>,
    pub smtp_port: u16,
    pub hostname: String,
    pub bounce_domain: String,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    /// Bytes of messages in delivery at once.
    pub memory: usize,
    pub per_domain: usize,
    /// Direct delivery may reach reserved addresses and address literals.
    pub allow_private: bool,
    /// How long a claimed delivery is this node's.
    pub lease: std::time::Duration,
}

/// `500ms`, `30s`, `5m`, `14h`, `2d` → milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms).filter(|v| *v > 0)
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A duration setting in milliseconds, or `default` when it is not set.
fn millis(name: &str, flag: &str, v: Option<String>, default: i64) -> Result<i64, String> {
    match v {
        None => Ok(default),
        Some(v) => parse_duration(&v)
            .ok_or_else(|| invalid(name, flag, &v, "a duration such as 30s, 5m or 14h")),
    }
}

/// The flag's value (or the environment's, which clap reads into it),
/// else the config file's.
fn pick<T: Clone>(flag: &Option<T>, file: &Option<T>) -> Option<T> {
    flag.clone().or_else(|| file.clone())
}

/// A bad setting's error, naming where it can be set.
fn invalid(name: &str, flag: &str, value: &str, expected: &str) -> String {
    let env = format!("SESAME_{}", name.to_ascii_uppercase());
    format!("invalid value '{value}' for setting {name} (--{flag}, {env}): expected {expected}")
}

/// A count above zero, or `default` when not set.
fn count(name: &str, flag: &str, v: Option<usize>, default: usize) -> Result<usize, String> {
    match v {
        Some(0) => Err(invalid(name, flag, "0", "a number above 0")),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// A size set in MiB (above zero, at most 1 TiB), in bytes.
fn mebibytes(name: &str, flag: &str, v: Option<usize>, default: usize) -> Result<usize, String> {
    Ok(count(name, flag, v, default)?.min(1 << 20) << 20)
}

impl DeliveryConfig {
    fn resolve(serve: &ServeArgs, file: &FileConfig, dev: bool) -> Result<Self, String> {
        let relay = pick(&serve.relay, &file.relay);
        let mode = match pick(&serve.delivery, &file.delivery).as_deref() {
            None if relay.is_some() => "relay",
            None if dev => "capture",
            None => "direct",
            Some(m) => m,
        }
        .to_owned();
        let mode = match mode.as_str() {
            "capture" => DeliveryMode::Capture,
            "direct" => DeliveryMode::Direct,
            "relay" => {
                let url = relay.ok_or(
                    "setting delivery is relay but no relay is set (--relay, SESAME_RELAY): expected smtp[s]://[user:pass@]host[:port]",
                )?;
                DeliveryMode::Relay(RelayConfig::parse(&url).map_err(|e| {
                    // The URL may hold a password: name the setting, not the value.
                    format!("invalid value for setting relay (--relay, SESAME_RELAY): {e}")
                })?)
            }
            other => {
                return Err(invalid(
                    "delivery",
                    "delivery",
                    other,
                    "capture, relay or direct",
                ));
            }
        };
        let dns_servers = dns_servers(&serve.dns, file)?;
        let duration = millis;
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            initial_ms: duration(
                "retry_initial",
                "retry-initial",
                pick(&serve.retry_initial, &file.retry_initial),
                defaults.initial_ms,
            )?,
            max_interval_ms: duration(
                "retry_max_interval",
                "retry-max-interval",
                pick(&serve.retry_max_interval, &file.retry_max_interval),
                defaults.max_interval_ms,
            )?,
            max_age_ms: duration(
                "max_message_age",
                "max-message-age",
                pick(&serve.max_message_age, &file.max_message_age),
                defaults.max_age_ms,
            )?,
        };
        let hostname = hostname(&serve.hostname, file);
        let bounce_domain =
            pick(&serve.bounce_domain, &file.bounce_domain).unwrap_or_else(|| hostname.clone());
        Ok(Self {
            mode,
            dns_servers,
            smtp_port: pick(&serve.smtp_port, &file.smtp_port).unwrap_or(25),
            hostname,
            bounce_domain,
            retry,
            concurrency: count(
                "delivery_concurrency",
                "delivery-concurrency",
                pick(&serve.delivery_concurrency, &file.delivery_concurrency),
                64,
            )?,
            memory: mebibytes(
                "delivery_memory",
                "delivery-memory",
                pick(&serve.delivery_memory, &file.delivery_memory),
                256,
            )?,
            per_domain: count(
                "domain_concurrency",
                "domain-concurrency",
                pick(&serve.domain_concurrency, &file.domain_concurrency),
                8,
            )?,
            allow_private: serve.delivery_allow_private
                || file.delivery_allow_private.unwrap_or(false),
            lease: std::time::Duration::from_millis(
                duration(
                    "delivery_lease",
                    "delivery-lease",
                    pick(&serve.delivery_lease, &file.delivery_lease),
                    15 * 60_000,
                )?
                .max(1000) as u64,
            ),
        })
    }
}

pub fn data_dir(common: &CommonArgs, file: &FileConfig) -> PathBuf {
    common
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// Where the store is, for the server and every operator command alike.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; `None` for SQLite in `data_dir`.
    pub database: Option<String>,
    /// This node's name in claims and leases.
    pub node_name: String,
}

impl StoreConfig {
    pub fn resolve(common: &CommonArgs, file: &FileConfig) -> Result<Self, String> {
        let database = common.database.clone().or_else(|| file.database.clone());
        if let Some(url) = &database
            && !sesame_store::is_postgres_url(url)
        {
            // The URL may hold a password: name the setting, not the value.
            return Err(
                "invalid value for setting database (--database, SESAME_DATABASE): \
                 expected a postgres:// URL"
                    .into(),
            );
        }
        let node_name = common
            .node_name
            .clone()
            .or_else(|| file.node_name.clone())
            .unwrap_or_else(system_hostname);
        if node_name.is_empty()
            || node_name.len() > 64
            || !node_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(invalid(
                "node_name",
                "node-name",
                &node_name,
                "1-64 letters, digits and - _ . :",
            ));
        }
        Ok(Self {
            data_dir: data_dir(common, file),
            database,
            node_name,
        })
    }

    /// Where the store is, in the store's terms.
    pub fn location(&self) -> sesame_store::Location<'_> {
        sesame_store::Location::of(self.database.as_deref(), &self.data_dir, &self.node_name)
    }

    /// The store, for logs and errors: never the URL, which may hold a
    /// password.
    pub fn describe(&self) -> String {
        match &self.database {
            Some(_) => format!("the PostgreSQL database (node {})", self.node_name),
            None => format!("the store in {}", self.data_dir.display()),
        }
    }

    /// Opens (and migrates) the store.
    pub async fn open(&self) -> Result<std::sync::Arc<dyn sesame_store::Store>, String> {
        sesame_store::open(&self.location())
            .await
            .map_err(|e| format!("cannot open {}: {e}", self.describe()))
    }
}

impl Settings {
    pub fn resolve(common: &CommonArgs, serve: &ServeArgs) -> Result<Self, String> {
        let file = FileConfig::load(common.config.as_deref())?;
        let listen = serve
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            format!("invalid value '{listen}' for setting listen (--listen, SESAME_LISTEN): expected HOST:PORT such as 127.0.0.1:4579")
        })?;
        let account = serve
            .dev_account_id
            .clone()
            .or_else(|| file.dev_account_id.clone())
            .unwrap_or_else(|| DEFAULT_DEV_ACCOUNT.to_owned());
        let dev_account_id = AccountId::parse(&account).map_err(|_| {
            format!("invalid value '{account}' for setting dev_account_id (--dev-account-id, SESAME_DEV_ACCOUNT_ID): expected 12 digits")
        })?;
        let public_url = serve
            .public_url
            .clone()
            .or_else(|| file.public_url.clone())
            .unwrap_or_else(|| format!("http://{listen}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(format!(
                "invalid value '{public_url}' for setting public_url (--public-url, SESAME_PUBLIC_URL): expected an http:// or https:// URL"
            ));
        }
        let verification_from = serve
            .verification_from
            .clone()
            .or_else(|| file.verification_from.clone())
            .unwrap_or_else(|| "no-reply@sesame.localhost".to_owned());
        if sesame_model::Mailbox::parse(&verification_from).is_err() {
            return Err(format!(
                "invalid value '{verification_from}' for setting verification_from (--verification-from, SESAME_VERIFICATION_FROM): expected an email address"
            ));
        }
        let request_memory = mebibytes(
            "request_memory",
            "request-memory",
            serve.request_memory.or(file.request_memory),
            256,
        )?;
        let dev = serve.dev || file.dev.unwrap_or(false);
        let delivery = DeliveryConfig::resolve(serve, &file, dev)?;
        Ok(Self {
            smtp: SmtpConfig::resolve(serve, &file, dev)?,
            feedback: feedback_targets(file.feedback.clone().unwrap_or_default())?,
            topics: file
                .sns
                .as_ref()
                .map(|s| s.topics.clone())
                .unwrap_or_default(),
            guard: GuardConfig::resolve(
                serve,
                &file,
                dev,
                matches!(delivery.mode, DeliveryMode::Capture),
            )?,
            verify: VerifyConfig::resolve(&serve.dns, serve, &file, &delivery.hostname)?,
            delivery,
            public_url,
            verification_from,
            request_memory,
            listen,
            store: StoreConfig::resolve(common, &file)?,
            dev,
            auto_verify: serve.auto_verify || file.auto_verify.unwrap_or(false),
            no_sandbox: serve.no_sandbox || file.no_sandbox.unwrap_or(false),
            dev_account_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve() -> ServeArgs {
        ServeArgs::default()
    }

    #[test]
    fn delivery_settings() {
        let s = Settings::resolve(&common(None), &serve()).unwrap();
        assert!(matches!(s.delivery.mode, DeliveryMode::Direct));
        assert_eq!(s.delivery.retry, RetryPolicy::default());
        assert_eq!(s.delivery.memory, 256 << 20);
        assert_eq!(s.request_memory, 256 << 20);
        let mut requests = serve();
        requests.request_memory = Some(64);
        assert_eq!(
            Settings::resolve(&common(None), &requests)
                .unwrap()
                .request_memory,
            64 << 20
        );
        requests.request_memory = Some(0);
        let e = Settings::resolve(&common(None), &requests).unwrap_err();
        assert!(e.contains("request_memory"), "{e}");
        let mut small = serve();
        small.delivery_memory = Some(16);
        let s = Settings::resolve(&common(None), &small).unwrap();
        assert_eq!(s.delivery.memory, 16 << 20);
        small.delivery_memory = Some(0);
        let e = Settings::resolve(&common(None), &small).unwrap_err();
        assert!(e.contains("delivery_memory"), "{e}");
        let mut dev = serve();
        dev.dev = true;
        let s = Settings::resolve(&common(None), &dev).unwrap();
        assert!(matches!(s.delivery.mode, DeliveryMode::Capture));
        let mut relay = serve();
        relay.relay = Some("smtp://u:secret@127.0.0.1:2525?tls=none".into());
        relay.retry_initial = Some("2s".into());
        relay.dns.dns_servers = vec!["127.0.0.1:5353".into()];
        let s = Settings::resolve(&common(None), &relay).unwrap();
        assert!(matches!(s.delivery.mode, DeliveryMode::Relay(_)));
        assert_eq!(s.delivery.retry.initial_ms, 2_000);
        assert_eq!(s.delivery.dns_servers[0].port(), 5353);
        let mut bad = serve();
        bad.delivery = Some("relay".into());
        assert!(
            Settings::resolve(&common(None), &bad)
                .unwrap_err()
                .contains("no relay")
        );
        bad.relay = Some("http://u:secret@x".into());
        let e = Settings::resolve(&common(None), &bad).unwrap_err();
        assert!(e.contains("setting relay") && !e.contains("secret"), "{e}");
        let mut bad = serve();
        bad.max_message_age = Some("forever".into());
        assert!(
            Settings::resolve(&common(None), &bad)
                .unwrap_err()
                .contains("max_message_age")
        );
        assert_eq!(parse_duration("14h"), Some(14 * 3_600_000));
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn guard_settings() {
        let s = Settings::resolve(&common(None), &serve()).unwrap();
        let g = &s.guard;
        assert_eq!(g.api_rate, Some(1), "SES's rate, on by default");
        assert_eq!((g.max_connections, g.max_connections_per_peer), (1024, 128));
        assert_eq!(g.header_timeout, std::time::Duration::from_secs(10));
        assert_eq!(g.body_timeout, std::time::Duration::from_secs(60));
        assert_eq!(
            g.verification_email_interval,
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(g.regions.len(), sesame_model::scope::SES_REGIONS.len());
        assert!(g.metrics_listen.is_none() && g.metrics_token.is_none());
        let mut dev = serve();
        dev.dev = true;
        assert_eq!(
            Settings::resolve(&common(None), &dev)
                .unwrap()
                .guard
                .api_rate,
            None,
            "off in --dev"
        );
        dev.api_rate = Some("5".into());
        assert_eq!(
            Settings::resolve(&common(None), &dev)
                .unwrap()
                .guard
                .api_rate,
            Some(5),
            "a setting either way"
        );
        let mut off = serve();
        off.api_rate = Some("off".into());
        off.verification_email_interval = Some("off".into());
        off.regions = vec!["us-east-1".into(), "zz-lab-1".into()];
        let g = Settings::resolve(&common(None), &off).unwrap().guard;
        assert_eq!((g.api_rate, g.verification_email_interval), (None, None));
        assert_eq!(
            g.regions.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            ["us-east-1", "zz-lab-1"]
        );
        for (set, name) in [
            (
                ServeArgs {
                    api_rate: Some("0".into()),
                    ..serve()
                },
                "api_rate",
            ),
            (
                ServeArgs {
                    regions: vec!["US EAST".into()],
                    ..serve()
                },
                "regions",
            ),
            (
                ServeArgs {
                    header_timeout: Some("soon".into()),
                    ..serve()
                },
                "header_timeout",
            ),
            (
                ServeArgs {
                    max_connections: Some(0),
                    ..serve()
                },
                "max_connections",
            ),
            (
                ServeArgs {
                    metrics_listen: Some("nowhere".into()),
                    ..serve()
                },
                "metrics_listen",
            ),
        ] {
            let e = Settings::resolve(&common(None), &set).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        let short = ServeArgs {
            metrics_token: Some("short-secret".into()),
            ..serve()
        };
        let e = Settings::resolve(&common(None), &short).unwrap_err();
        assert!(
            e.contains("metrics_token") && !e.contains("short-secret"),
            "{e}"
        );
    }

    fn common(config: Option<PathBuf>) -> CommonArgs {
        CommonArgs {
            config,
            data_dir: None,
            database: None,
            node_name: None,
        }
    }

    #[test]
    fn the_database_is_a_postgres_url_and_its_password_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.toml");
        std::fs::write(
            &path,
            "database = \"postgres://sesame:s3cret@db.internal/sesame\"\nnode_name = \"node-1\"\n",
        )
        .unwrap();
        let s = Settings::resolve(&common(Some(path.clone())), &serve()).unwrap();
        assert!(matches!(
            s.store.location(),
            sesame_store::Location::Postgres { node: "node-1", .. }
        ));
        assert!(!s.store.describe().contains("s3cret"));
        let mut flags = common(Some(path));
        flags.node_name = Some("node 2".into());
        let e = Settings::resolve(&flags, &serve()).unwrap_err();
        assert!(e.contains("node_name"), "{e}");
        flags.node_name = None;
        flags.database = Some("mysql://root:hunter2@db/sesame".into());
        let e = Settings::resolve(&flags, &serve()).unwrap_err();
        assert!(
            e.contains("setting database") && !e.contains("hunter2"),
            "{e}"
        );
        // Without one, SQLite in the data directory.
        let s = Settings::resolve(&common(None), &serve()).unwrap();
        assert!(matches!(
            s.store.location(),
            sesame_store::Location::Sqlite(_)
        ));
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(&common(None), &serve()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.store.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(!s.dev);
        assert_eq!(s.dev_account_id.as_str(), DEFAULT_DEV_ACCOUNT);
    }

    #[test]
    fn dns_settings_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.toml");
        std::fs::write(
            &path,
            "hostname = \"mx.example.net\"\n[dkim]\ncname_zone = \"DKIM.Example.net.\"\n[dns]\nlisten = \"127.0.0.1:5353\"\nverify_interval = \"30s\"\nmax_in_flight = 8\n",
        )
        .unwrap();
        let s = Settings::resolve(&common(Some(path.clone())), &serve()).unwrap();
        let v = &s.verify;
        assert_eq!(v.publishing.cname_zone.as_deref(), Some("dkim.example.net"));
        assert_eq!(v.publishing.mail_from_mx, "mx.example.net");
        assert_eq!(v.listen.unwrap().port(), 5353);
        assert_eq!(v.interval, std::time::Duration::from_secs(30));
        assert_eq!(v.max_in_flight, 8);
        let mut flags = serve();
        flags.verify_interval = Some("1s".into());
        flags.dns.mail_from_mx = Some("feedback.example.net".into());
        let s = Settings::resolve(&common(Some(path)), &flags).unwrap();
        assert_eq!(s.verify.interval, std::time::Duration::from_secs(1));
        assert_eq!(s.verify.publishing.mail_from_mx, "feedback.example.net");
        // Defaults: no zone, no listener, five minutes, 64 in flight.
        let d = Settings::resolve(&common(None), &serve()).unwrap().verify;
        assert_eq!(
            (
                d.publishing.cname_zone,
                d.listen,
                d.interval.as_secs(),
                d.max_in_flight
            ),
            (None, None, 300, 64)
        );
        let mut bad = serve();
        bad.dns_max_in_flight = Some(0);
        assert!(
            Settings::resolve(&common(None), &bad)
                .unwrap_err()
                .contains("max_in_flight")
        );
        bad.dns_max_in_flight = None;
        bad.dns.dkim_cname_zone = Some("not a zone".into());
        assert!(
            Settings::resolve(&common(None), &bad)
                .unwrap_err()
                .contains("cname_zone")
        );
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\ndev = true\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let s = Settings::resolve(&common(Some(path.clone())), &serve()).unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert!(s.dev);
        let mut flags = serve();
        flags.listen = Some("127.0.0.1:1234".into());
        let s = Settings::resolve(&common(Some(path)), &flags).unwrap();
        assert_eq!(s.listen.port(), 1234, "the command line wins over the file");
    }

    #[test]
    fn retention_is_at_least_two_weeks_or_off() {
        let s = Settings::resolve(&common(None), &serve()).unwrap();
        assert_eq!(
            s.guard.retention,
            Some(std::time::Duration::from_secs(30 * 24 * 3600))
        );
        let mut flags = serve();
        flags.retention = Some("7d".into());
        let e = Settings::resolve(&common(None), &flags).unwrap_err();
        assert!(e.contains("setting retention") && e.contains("15d"), "{e}");
        flags.retention = Some("off".into());
        assert_eq!(
            Settings::resolve(&common(None), &flags)
                .unwrap()
                .guard
                .retention,
            None
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut flags = serve();
        flags.listen = Some("nope".into());
        let e = Settings::resolve(&common(None), &flags).unwrap_err();
        assert!(e.contains("setting listen"), "{e}");
        let mut flags = serve();
        flags.dev_account_id = Some("12".into());
        let e = Settings::resolve(&common(None), &flags).unwrap_err();
        assert!(e.contains("dev_account_id"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lissten = \"x\"\n").unwrap();
        let e = Settings::resolve(&common(Some(path)), &serve()).unwrap_err();
        assert!(e.contains("lissten"), "{e}");
    }
}
