//! The `sesame` binary: configuration, the command line, wiring of store,
//! use cases and HTTP server, and shutdown.
//!
//! # Layout
//! - [`config`]: layered settings (flags, `SESAME_*`, TOML file, defaults).
//! - [`server`]: the HTTP listener, Sesame's own `/_sesame/` routes, and
//!   graceful shutdown.
//! - [`api`]: one request's path through body limits, SigV4, routing and
//!   dispatch to the use cases, for v1 ([`api::v1`]) and v2 ([`api::v2`]).
//! - this file: the commands (`serve`, `keys create`, `identities verify`).

mod api;
mod config;
mod console;
mod feedback;
mod listener;
mod mailbox;
mod metrics;
mod rsa_path;
mod server;
mod submission;

use clap::{Parser, Subcommand};
use config::{CommonArgs, FileConfig, ServeArgs, Settings};
use sesame_core::{AccountService, Clock, Credentials, IdentityService, SystemClock};
use sesame_model::{AccountId, DeliveryState, Region, Scope};
use sesame_store::Store;
use std::process::ExitCode;

// mimalloc: the request path allocates small buffers constantly, and glibc's
// malloc was a fifth of the CPU under load (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "sesame",
    version,
    about = "A self-hosted email service that speaks the Amazon SES API"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage access keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Operator actions on identities.
    Identities {
        #[command(subcommand)]
        command: IdentitiesCommand,
    },
    /// Operator actions on accounts: production access and quotas.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Compliance: identities not verified (with the verifier's diagnosis),
    /// senders refused in the last 24 hours, domains without DKIM, MAIL FROM
    /// domains not verified, and production accounts whose bounces or
    /// complaints reach nobody. Exits 1 when it finds anything.
    Audit(AuditArgs),
    /// Why a send was refused (its request ID, from the error's
    /// RequestId), what became of a message (its MessageId), or of mail to
    /// or from an address; with the fix as a command.
    Explain {
        /// A request ID, a MessageId or an email address.
        what: String,
    },
    /// The account-level suppression list: bulk import.
    Suppression {
        #[command(subcommand)]
        command: SuppressionCommand,
    },
    /// The outbound queue: counts by state, what waits and why; retry or drop a message.
    Queue {
        #[command(subcommand)]
        command: Option<QueueCommand>,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Counts by state, the oldest unfinished message, the next retry, and what waits (the default).
    Show,
    /// Deliveries (one per message and recipient domain), oldest first.
    List {
        /// queued, sending, delivered or failed [default: all]
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Make a message's queued deliveries due now.
    Retry { message_id: String },
    /// Give up on a message's unfinished deliveries.
    Drop { message_id: String },
}

#[derive(Subcommand)]
enum SuppressionCommand {
    /// Add addresses from a CSV file of `address,reason` lines (reason
    /// BOUNCE or COMPLAINT), as SES's suppression-list import takes them;
    /// a progress bar on a terminal, a line per 1,000 otherwise.
    Import {
        #[command(flatten)]
        scope: ScopeArgs,
        file: std::path::PathBuf,
    },
}

#[derive(clap::Args)]
struct AuditArgs {
    /// Only this 12-digit account.
    #[arg(long)]
    account: Option<String>,
    /// Only this region.
    #[arg(long)]
    region: Option<String>,
    /// table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(clap::Args)]
struct ScopeArgs {
    /// The 12-digit account.
    #[arg(long)]
    account: String,
    /// The region, e.g. us-east-1.
    #[arg(long)]
    region: String,
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Show the account's sandbox state, quotas and review in a region.
    Show(ScopeArgs),
    /// Grant production access in a region (lifts the sandbox, raises quotas).
    Approve(ScopeArgs),
    /// Deny a pending production-access request.
    Deny(ScopeArgs),
    /// Set the account's quotas in a region.
    SetQuota {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Recipients per rolling 24 hours; -1 for unlimited.
        #[arg(long = "max-24h-send", allow_hyphen_values = true)]
        max_24h_send: Option<f64>,
        /// Recipients per second.
        #[arg(long = "max-send-rate")]
        max_send_rate: Option<f64>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key; prints it in ~/.aws/credentials form.
    Create {
        /// The 12-digit account the key belongs to; a new account if omitted.
        #[arg(long)]
        account: Option<String>,
    },
    /// Print a key's SES SMTP password for a region (version 4): the
    /// username is the access key ID.
    SmtpPassword {
        /// The region of the SMTP endpoint, e.g. us-east-1.
        #[arg(long)]
        region: String,
        access_key_id: String,
    },
}

#[derive(Subcommand)]
enum IdentitiesCommand {
    /// Print the DNS records to publish for a domain identity: the
    /// verification TXT, the DKIM records, and a custom MAIL FROM domain's
    /// MX and SPF.
    Records {
        #[command(flatten)]
        scope: ScopeArgs,
        identity: String,
        /// As CSV (name,type,value), for a DNS provider's import.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        dns: config::DnsArgs,
    },
    /// Show an identity's verification: statuses, when DNS was last checked,
    /// what was found wrong and how to fix it.
    Show {
        #[command(flatten)]
        scope: ScopeArgs,
        identity: String,
    },
    /// Check a domain identity's DNS records now, store the result and show
    /// it; or, with --all, every domain identity (of --account and
    /// --region, if given), with a progress bar on a terminal.
    Check {
        /// The 12-digit account (required with an identity).
        #[arg(long)]
        account: Option<String>,
        /// The region, e.g. us-east-1 (required with an identity).
        #[arg(long)]
        region: Option<String>,
        /// The domain identity to check.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        identity: Option<String>,
        /// Check every domain identity.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        dns: config::DnsArgs,
    },
    /// Publish a domain identity's records to the operator's primary DNS
    /// server (RFC 2136 dynamic update signed with TSIG), then check it.
    Publish {
        #[command(flatten)]
        scope: ScopeArgs,
        identity: String,
        #[command(flatten)]
        dns: config::DnsArgs,
    },
    /// Mark an identity (and its DKIM) verified, as an operator.
    Verify {
        #[command(flatten)]
        scope: ScopeArgs,
        identity: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything else runs: `serve` may start itself again so that
    // aws-lc picks its faster RSA code for this CPU (see `rsa_path`).
    let rsa_note = match &cli.command {
        Command::Serve(args) => {
            let file = FileConfig::load(cli.common.config.as_deref()).unwrap_or_default();
            let wanted = match args.rsa_path(&file) {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let current = std::env::var_os(rsa_path::VAR);
            match rsa_path::plan(wanted, &rsa_path::Cpu::detect(), current.as_ref()) {
                rsa_path::Plan::Restart => Some(Err(rsa_path::restart())),
                rsa_path::Plan::Stay(why) => Some(Ok(why)),
            }
        }
        _ => None,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SESAME_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, so log files and journald stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match rsa_note {
        Some(Ok(why)) => tracing::info!("DKIM signing: {why}"),
        Some(Err(e)) => tracing::warn!(error = %e,
            "DKIM signing: could not start again with {}={}; aws-lc chooses its RSA path",
            rsa_path::VAR, rsa_path::MASK),
        None => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(common: &CommonArgs) -> Result<Arc<dyn Store>, String> {
    let file = FileConfig::load(common.config.as_deref())?;
    config::StoreConfig::resolve(common, &file)?.open().await
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(&cli.common, &args)?;
            server::run(settings).await
        }
        Command::Keys {
            command:
                KeysCommand::SmtpPassword {
                    region,
                    access_key_id,
                },
        } => {
            let region = Region::parse(&region).map_err(|e| e.message)?;
            let store = open_store(&cli.common).await?;
            let key = store.get_access_key(&access_key_id).await;
            store.close().await;
            let key = key
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no access key {access_key_id}"))?;
            println!("SMTP username: {}", key.id);
            println!(
                "SMTP password: {}",
                sesame_sigv4::smtp_password(&key.secret, region.as_str())
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Create { account },
        } => {
            let store = open_store(&cli.common).await?;
            let account = match account {
                Some(a) => AccountId::parse(&a).map_err(|e| e.message)?,
                None => new_account_id(),
            };
            let creds = Credentials::new(store.clone(), Arc::new(SystemClock), None);
            let key = creds.create(account).await.map_err(|e| e.message)?;
            store.close().await;
            println!("# account {}", key.account);
            println!("aws_access_key_id = {}", key.id);
            println!("aws_secret_access_key = {}", key.secret);
            Ok(())
        }
        Command::Accounts { command } => accounts_command(&cli.common, command).await,
        Command::Audit(args) => audit_command(&cli.common, args).await,
        Command::Suppression {
            command: SuppressionCommand::Import { scope, file },
        } => {
            let scope = scope_of(&scope)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let store = open_store(&cli.common).await?;
            let result = import_suppressed(store.clone(), &scope, &text).await;
            store.close().await;
            result
        }
        Command::Explain { what } => explain_command(&cli.common, &what).await,
        Command::Queue { command } => {
            let store = open_store(&cli.common).await?;
            let result = queue_command(&*store, command.unwrap_or(QueueCommand::Show)).await;
            store.close().await;
            result
        }
        Command::Identities { command } => {
            let store = open_store(&cli.common).await?;
            let result = identities_command(&cli.common, store.clone(), command).await;
            store.close().await;
            result
        }
    }
}

/// The verifier's settings as an operator command sees them: its flags,
/// then the config file.
fn verify_config(
    common: &CommonArgs,
    dns: &config::DnsArgs,
) -> Result<config::VerifyConfig, String> {
    let file = FileConfig::load(common.config.as_deref())?;
    let hostname = config::hostname(&None, &file);
    config::VerifyConfig::resolve(dns, &ServeArgs::default(), &file, &hostname)
}

async fn identities_command(
    common: &CommonArgs,
    store: Arc<dyn Store>,
    command: IdentitiesCommand,
) -> Result<(), String> {
    let svc = IdentityService::new(store.clone(), Arc::new(SystemClock), false);
    let missing = |identity: &str, scope: &Scope| {
        format!(
            "no identity {identity} in account {} region {}",
            scope.account, scope.region
        )
    };
    match command {
        IdentitiesCommand::Records {
            scope,
            identity,
            csv,
            dns,
        } => {
            let scope = scope_of(&scope)?;
            let publishing = verify_config(common, &dns)?.publishing;
            let found = svc
                .get_many(&scope, std::slice::from_ref(&identity))
                .await
                .map_err(|e| e.message)?;
            let Some(i) = found.into_iter().next() else {
                return Err(missing(&identity, &scope));
            };
            let records = i.dns_records(&publishing);
            if records.is_empty() {
                return Err(format!(
                    "{identity} is an email address: it is verified by the link emailed to it, not by DNS"
                ));
            }
            if csv {
                print!("{}", sesame_model::identity::records_csv(&records));
            } else {
                for r in records {
                    println!("{}\t{}\t\"{}\"", r.name, r.kind, r.value);
                }
            }
        }
        IdentitiesCommand::Show { scope, identity } => {
            let scope = scope_of(&scope)?;
            let i = svc.get(&scope, &identity).await.map_err(|e| e.message)?;
            print!("{}", describe(&i));
        }
        IdentitiesCommand::Check {
            account,
            region,
            identity,
            all,
            dns,
        } => {
            let v = verify_config(common, &dns)?;
            let lookup = sesame_dns::HickoryLookup::new(&v.dns_servers, v.max_in_flight)?;
            let verifier = sesame_core::Verifier::new(
                store.clone(),
                Arc::new(SystemClock),
                Arc::new(lookup),
                sesame_core::VerifierSettings {
                    publishing: v.publishing,
                    interval: v.interval,
                    max_in_flight: v.max_in_flight,
                },
            );
            let Some(identity) = identity.filter(|_| !all) else {
                return check_all(&*store, &verifier, account, region).await;
            };
            let scope = scope_of(&ScopeArgs {
                account: account.ok_or("--account is required with an identity")?,
                region: region.ok_or("--region is required with an identity")?,
            })?;
            let i = verifier
                .check(&scope, &identity)
                .await
                .map_err(|e| e.message)?;
            print!("{}", describe(&i));
        }
        IdentitiesCommand::Publish {
            scope,
            identity,
            dns,
        } => {
            let scope = scope_of(&scope)?;
            let v = verify_config(common, &dns)?;
            let lookup = sesame_dns::HickoryLookup::new(&v.dns_servers, v.max_in_flight)?;
            let verifier = Arc::new(sesame_core::Verifier::new(
                store.clone(),
                Arc::new(SystemClock),
                Arc::new(lookup),
                sesame_core::VerifierSettings {
                    publishing: v.publishing.clone(),
                    interval: v.interval,
                    max_in_flight: v.max_in_flight,
                },
            ));
            let publishing = publishing(&v, Some(verifier))?.ok_or(
                "no DNS server to publish to: set --dns-update-server (or [dns.publish] server)",
            )?;
            let i = IdentityService::new(store.clone(), Arc::new(SystemClock), false)
                .with_publishing(publishing)
                .publish(&scope, &identity)
                .await
                .map_err(|e| e.message)?;
            println!("published {} records for {}:", i.published.len(), i.name);
            for r in &i.published {
                println!("  {}\t{}\t\"{}\"", r.name, r.kind, r.value);
            }
            print!("{}", describe(&i));
        }
        IdentitiesCommand::Verify { scope, identity } => {
            let scope = scope_of(&scope)?;
            let i = svc
                .mark_verified(&scope, &identity)
                .await
                .map_err(|e| e.message)?;
            println!(
                "{} is verified in account {} region {}",
                i.name, scope.account, scope.region
            );
        }
    }
    Ok(())
}

/// Long work's progress: a bar on a terminal (stderr), and plain lines
/// otherwise (every line on a terminal goes above the bar).
struct Progress {
    bar: indicatif::ProgressBar,
    terminal: bool,
    total: u64,
    done: u64,
}

impl Progress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {elapsed_precise} {wide_msg}",
            ) {
                b.set_style(style);
            }
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        Self {
            bar,
            terminal,
            total,
            done: 0,
        }
    }

    /// One item done; `line` is printed (above the bar on a terminal, with
    /// its count otherwise), when given.
    fn step(&mut self, message: &str, line: Option<&str>) {
        self.done += 1;
        self.bar.set_message(message.to_owned());
        if let Some(line) = line {
            if self.terminal {
                self.bar.println(line);
            } else {
                println!("[{}/{}] {line}", self.done, self.total);
            }
        }
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `sesame suppression import`: each `address,reason` line put on the
/// scope's list through the same use case as PutSuppressedDestination. A
/// bad line is reported with its number and skipped; the command fails if
/// any was.
async fn import_suppressed(store: Arc<dyn Store>, scope: &Scope, text: &str) -> Result<(), String> {
    let svc = sesame_core::SuppressionService::new(store, Arc::new(SystemClock));
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut progress = Progress::new(lines.len() as u64);
    let (mut added, mut bad) = (0, 0);
    for (n, line) in lines {
        let (address, reason) = line.split_once(',').unwrap_or((line, ""));
        let (address, reason) = (
            address.trim().trim_matches('"'),
            reason.trim().trim_matches('"'),
        );
        // A header line (no address in it) is skipped.
        if n == 1 && !address.contains('@') {
            progress.step(address, None);
            continue;
        }
        let outcome = match sesame_model::suppression::Reason::parse(&reason.to_ascii_uppercase()) {
            None => Err(format!(
                "the reason must be BOUNCE or COMPLAINT, not '{reason}'"
            )),
            Some(r) => svc.put(scope, address, r).await.map_err(|e| e.message),
        };
        let line = match outcome {
            Ok(()) => {
                added += 1;
                (added % 1000 == 0).then(|| format!("{added} added"))
            }
            Err(e) => {
                bad += 1;
                Some(format!("line {n}: {address}: {e}"))
            }
        };
        progress.step(address, line.as_deref());
    }
    progress.finish();
    println!(
        "imported {added} addresses into the suppression list of account {} region {}; {bad} lines refused",
        scope.account, scope.region
    );
    match bad {
        0 => Ok(()),
        n => Err(format!("{n} lines were refused")),
    }
}

/// The scopes `--account` and `--region` (each optional) name.
fn scope_filter(
    account: Option<&str>,
    region: Option<&str>,
) -> Result<sesame_core::audit::AuditFilter, String> {
    Ok(sesame_core::audit::AuditFilter {
        account: account
            .map(AccountId::parse)
            .transpose()
            .map_err(|e| e.message)?,
        region: region
            .map(Region::parse)
            .transpose()
            .map_err(|e| e.message)?,
    })
}

/// `sesame identities check --all`: every domain identity of the scopes
/// asked for, checked now, one at a time; a progress bar on a terminal,
/// a line per identity otherwise. Fails when a check fails.
async fn check_all(
    store: &dyn Store,
    verifier: &sesame_core::Verifier,
    account: Option<String>,
    region: Option<String>,
) -> Result<(), String> {
    let filter = scope_filter(account.as_deref(), region.as_deref())?;
    let domains: Vec<(Scope, String)> = sesame_core::audit::identities_by_scope(store, &filter)
        .await
        .map_err(|e| e.message)?
        .into_values()
        .flat_map(|(scope, identities)| {
            identities
                .into_iter()
                .filter(|i| i.name.kind() == sesame_model::IdentityKind::Domain)
                .map(move |i| (scope.clone(), i.name.to_string()))
        })
        .collect();
    let mut progress = Progress::new(domains.len() as u64);
    let (mut verified, mut failed) = (0, 0);
    for (scope, name) in &domains {
        let line = match verifier.check(scope, name).await {
            Ok(i) => {
                if i.verification_status == sesame_model::identity::VerificationStatus::Success {
                    verified += 1;
                }
                format!(
                    "{name} ({} {}): {}",
                    scope.account,
                    scope.region,
                    i.verification_status.as_str()
                )
            }
            Err(e) => {
                failed += 1;
                format!(
                    "{name} ({} {}): not checked: {}",
                    scope.account, scope.region, e.message
                )
            }
        };
        progress.step(name, Some(&line));
    }
    progress.finish();
    println!(
        "checked {} domain identities: {verified} verified, {} not, {failed} not checked",
        domains.len(),
        domains.len() - verified - failed
    );
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} identities could not be checked")),
    }
}

/// An identity's verification, for `sesame identities show` and `check`.
fn describe(i: &sesame_model::Identity) -> String {
    use std::fmt::Write;
    let time = |t: Option<i64>| {
        t.map(sesame_wire::iso8601)
            .unwrap_or_else(|| "never".into())
    };
    let mut out = String::new();
    let kind = match i.kind() {
        sesame_model::IdentityKind::Domain => "domain",
        sesame_model::IdentityKind::EmailAddress => "email address",
    };
    let _ = writeln!(out, "identity      {} ({kind})", i.name);
    let _ = writeln!(out, "verification  {}", i.verification_status.as_str());
    if i.kind() == sesame_model::IdentityKind::Domain {
        let d = &i.dns;
        let _ = writeln!(out, "last checked  {}", time(d.last_checked_at));
        let _ = writeln!(out, "last success  {}", time(d.identity.last_success_at));
        if let Some(e) = d.error {
            let _ = writeln!(out, "error type    {}", e.as_str());
        }
        if let Some(soa) = &d.soa {
            let _ = writeln!(
                out,
                "SOA           {} {} serial {}",
                soa.primary_name_server, soa.admin_email, soa.serial_number
            );
        }
    }
    if i.dkim.is_set_up() {
        let _ = writeln!(
            out,
            "DKIM          {} ({}, signing {})",
            i.dkim.status.as_str(),
            i.dkim.origin.as_str(),
            if i.dkim.signing_enabled {
                "enabled"
            } else {
                "disabled"
            }
        );
    }
    if let (Some(d), Some(s)) = (&i.mail_from.domain, i.mail_from.status) {
        let _ = writeln!(out, "MAIL FROM     {d} {}", s.as_str());
    }
    if !i.dns.diagnoses.is_empty() {
        let _ = writeln!(out, "diagnoses:");
        for d in &i.dns.diagnoses {
            let _ = writeln!(out, "  [{}] {}", d.kind.as_str(), d.message);
        }
    }
    out
}

async fn queue_command(store: &dyn Store, command: QueueCommand) -> Result<(), String> {
    let now = SystemClock.now_ms();
    let failed = |e: sesame_store::StoreError| format!("store failure: {e}");
    let time = |ms: i64| sesame_wire::iso8601(ms);
    let print = |entries: &[sesame_model::QueueEntry]| {
        for e in entries {
            println!(
                "{:>8}  {:<9}  {}  {}/{}  {}  {} recipient(s)  attempts {}  next {}{}{}",
                e.id,
                e.state.as_str(),
                e.message_id,
                e.scope.account,
                e.scope.region,
                e.domain,
                e.recipients.len(),
                e.attempts,
                time(e.next_attempt_at),
                e.claimed_by
                    .as_deref()
                    .map(|n| format!("  on node {n}"))
                    .unwrap_or_default(),
                e.last_error
                    .as_deref()
                    .map(|l| format!("  last error: {l}"))
                    .unwrap_or_default(),
            );
        }
    };
    match command {
        QueueCommand::Show => {
            let s = store.queue_summary().await.map_err(failed)?;
            println!(
                "queued {}  sending {}  delivered {}  failed {}",
                s.queued, s.sending, s.delivered, s.failed
            );
            match s.oldest_unfinished {
                Some(t) => println!(
                    "oldest unfinished message accepted {} ({}s ago)",
                    time(t),
                    (now - t) / 1000
                ),
                None => println!("nothing waits"),
            }
            if let Some(t) = s.next_attempt {
                println!("next attempt {}", time(t));
            }
            let mut waiting = store
                .list_queue(Some(DeliveryState::Queued), 50)
                .await
                .map_err(failed)?;
            waiting.extend(
                store
                    .list_queue(Some(DeliveryState::Sending), 50)
                    .await
                    .map_err(failed)?,
            );
            print(&waiting);
        }
        QueueCommand::List { state, limit } => {
            let state = match state.as_deref() {
                None => None,
                Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
                    format!("unknown state {s}: expected queued, sending, delivered or failed")
                })?),
            };
            print(&store.list_queue(state, limit).await.map_err(failed)?);
        }
        QueueCommand::Retry { message_id } => {
            match store
                .retry_message(&message_id, now)
                .await
                .map_err(failed)?
            {
                0 => return Err(format!("no queued delivery of message {message_id}")),
                n => println!("{n} deliveries of {message_id} are due now"),
            }
        }
        QueueCommand::Drop { message_id } => {
            match store.drop_message(&message_id, now).await.map_err(failed)? {
                0 => return Err(format!("no unfinished delivery of message {message_id}")),
                n => println!("dropped {n} deliveries of {message_id}"),
            }
        }
    }
    Ok(())
}

fn scope_of(a: &ScopeArgs) -> Result<Scope, String> {
    Ok(Scope::new(
        AccountId::parse(&a.account).map_err(|e| e.message)?,
        Region::parse(&a.region).map_err(|e| e.message)?,
    ))
}

async fn accounts_command(common: &CommonArgs, command: AccountsCommand) -> Result<(), String> {
    let store = open_store(common).await?;
    let production_by_default = deployment_default(common, store.as_ref() as &dyn Store)
        .await
        .map_err(|e| e.message)?;
    let svc = AccountService::new(store.clone(), Arc::new(SystemClock), production_by_default);
    let result = match command {
        AccountsCommand::Show(a) => {
            let scope = scope_of(&a)?;
            svc.quota(&scope)
                .await
                .map(|q| (scope, q.account, Some(q.sent_last_24h)))
        }
        AccountsCommand::Approve(a) => {
            let scope = scope_of(&a)?;
            svc.approve(&scope).await.map(|acc| (scope, acc, None))
        }
        AccountsCommand::Deny(a) => {
            let scope = scope_of(&a)?;
            svc.deny(&scope).await.map(|acc| (scope, acc, None))
        }
        AccountsCommand::SetQuota {
            scope,
            max_24h_send,
            max_send_rate,
        } => {
            if max_24h_send.is_none() && max_send_rate.is_none() {
                return Err("set-quota needs --max-24h-send, --max-send-rate or both".into());
            }
            let scope = scope_of(&scope)?;
            svc.set_quota(&scope, max_24h_send, max_send_rate)
                .await
                .map(|acc| (scope, acc, None))
        }
    };
    store.close().await;
    let (scope, a, sent) = result.map_err(|e| e.message)?;
    println!("account {} region {}", scope.account, scope.region);
    println!(
        "  access: {}",
        if a.production_access {
            "production"
        } else {
            "sandbox"
        }
    );
    println!("  sending enabled: {}", a.sending_enabled);
    println!("  max 24h send: {}", a.max_24h_send);
    println!("  max send rate: {}/s", a.max_send_rate);
    if let Some(n) = sent {
        println!("  sent last 24h: {n}");
    }
    if let Some(r) = a.details.as_ref().and_then(|d| d.review.as_ref()) {
        println!("  review: {} (case {})", r.status.as_str(), r.case_id);
    }
    Ok(())
}

/// Where identities' records are published, when the operator set up a
/// server to update (`--dns-update-server`, `[dns.publish]`).
pub(crate) fn publishing(
    verify: &config::VerifyConfig,
    verifier: Option<Arc<sesame_core::Verifier>>,
) -> Result<Option<sesame_core::identities::publish::Publishing>, String> {
    let Some(p) = &verify.publish else {
        return Ok(None);
    };
    let publisher =
        sesame_dns::update::TsigPublisher::new(p.server, &p.key_name, &p.algorithm, &p.secret)?;
    Ok(Some(sesame_core::identities::publish::Publishing {
        publisher: Arc::new(publisher),
        records: verify.publishing.clone(),
        on_create: p.on_create,
        verifier,
    }))
}

/// Whether accounts start in production in this deployment: as the server
/// recorded (its --no-sandbox), else as the config file says. An account
/// an operator command creates starts so.
async fn deployment_default(
    common: &CommonArgs,
    store: &dyn Store,
) -> Result<bool, sesame_model::Error> {
    let file = FileConfig::load(common.config.as_deref()).map_err(sesame_model::Error::invalid)?;
    Ok(AccountService::recorded_default(store)
        .await?
        .unwrap_or(file.no_sandbox.unwrap_or(false)))
}

async fn audit_command(common: &CommonArgs, args: AuditArgs) -> Result<(), String> {
    if !matches!(args.format.as_str(), "table" | "json") {
        return Err(format!(
            "unknown format {}: expected table or json",
            args.format
        ));
    }
    let filter = scope_filter(args.account.as_deref(), args.region.as_deref())?;
    let store = open_store(common).await?;
    let dyn_store = store.clone();
    let result = async {
        let production_by_default = deployment_default(common, &*dyn_store).await?;
        sesame_core::audit::AuditService::new(
            dyn_store.clone(),
            Arc::new(SystemClock),
            production_by_default,
        )
        .run(&filter)
        .await
    }
    .await;
    store.close().await;
    let findings = result.map_err(|e| e.message)?;
    if args.format == "json" {
        println!(
            "{}",
            String::from_utf8_lossy(&sesame_wire::local::audit(&findings))
        );
    } else if findings.is_empty() {
        println!("no findings");
    } else {
        println!(
            "{:<21} {:<12} {:<14} {:<32} DETAIL",
            "KIND", "ACCOUNT", "REGION", "SUBJECT"
        );
        for f in &findings {
            let mut detail = f.detail.clone();
            if let Some(age) = f.age_ms {
                detail.push_str(&format!(", for {}", human_age(age)));
            }
            println!(
                "{:<21} {:<12} {:<14} {:<32} {detail}",
                f.kind.as_str(),
                f.scope.account.as_str(),
                f.scope.region.as_str(),
                f.subject
            );
            for d in &f.diagnosis {
                println!("{:<82} - {d}", "");
            }
        }
    }
    match findings.len() {
        0 => Ok(()),
        n => Err(format!("the audit found {n} problem(s)")),
    }
}

async fn explain_command(common: &CommonArgs, what: &str) -> Result<(), String> {
    let store = open_store(common).await?;
    let dyn_store = store.clone();
    let result = async {
        let production_by_default = deployment_default(common, &*dyn_store).await?;
        sesame_core::explain::ExplainService::new(
            dyn_store.clone(),
            Arc::new(SystemClock),
            production_by_default,
        )
        .explain(what)
        .await
    }
    .await;
    store.close().await;
    let Some(x) = result.map_err(|e| e.message)? else {
        return Err(format!(
            "nothing is known as {what}: not a refused request's ID, a MessageId or an address"
        ));
    };
    println!("{}", x.title);
    for f in &x.facts {
        println!("  - {f}");
    }
    if !x.fixes.is_empty() {
        println!("Fix:");
        for f in &x.fixes {
            println!("  $ {f}");
        }
    }
    Ok(())
}

/// An age as a person reads it: 3d 4h, 2h 5m, 40s.
fn human_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

fn new_account_id() -> AccountId {
    let digits = uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000;
    AccountId::parse(&format!("{digits:012}")).expect("12 digits")
}
