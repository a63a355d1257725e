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
mod server;

use clap::{Parser, Subcommand};
use config::{CommonArgs, FileConfig, ServeArgs, Settings};
use sesame_core::{Credentials, IdentityService, SystemClock};
use sesame_model::{AccountId, Region, Scope};
use sesame_store::{SqliteStore, Store};
use std::process::ExitCode;
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
    Serve(ServeArgs),
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
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key; prints it in ~/.aws/credentials form.
    Create {
        /// The 12-digit account the key belongs to; a new account if omitted.
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Subcommand)]
enum IdentitiesCommand {
    /// Mark an identity (and its DKIM) verified, as an operator.
    Verify {
        #[arg(long)]
        account: String,
        #[arg(long)]
        region: String,
        identity: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SESAME_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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

async fn open_store(common: &CommonArgs) -> Result<Arc<SqliteStore>, String> {
    let file = FileConfig::load(common.config.as_deref())?;
    let dir = config::data_dir(common, &file);
    SqliteStore::open(&dir)
        .await
        .map(Arc::new)
        .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(&cli.common, &args)?;
            server::run(settings).await
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
        Command::Identities {
            command:
                IdentitiesCommand::Verify {
                    account,
                    region,
                    identity,
                },
        } => {
            let store = open_store(&cli.common).await?;
            let scope = Scope::new(
                AccountId::parse(&account).map_err(|e| e.message)?,
                Region::parse(&region).map_err(|e| e.message)?,
            );
            let svc = IdentityService::new(
                store.clone() as Arc<dyn Store>,
                Arc::new(SystemClock),
                false,
            );
            let result = svc.mark_verified(&scope, &identity).await;
            store.close().await;
            let i = result.map_err(|e| e.message)?;
            println!(
                "{} is verified in account {} region {}",
                i.name, scope.account, scope.region
            );
            Ok(())
        }
    }
}

fn new_account_id() -> AccountId {
    let digits = uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000;
    AccountId::parse(&format!("{digits:012}")).expect("12 digits")
}
