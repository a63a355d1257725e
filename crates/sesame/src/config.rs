//! Settings for `sesame serve` and the operator commands, layered: command
//! line, then `SESAME_*` environment variables (clap reads both), then the
//! TOML file named by `--config`, then defaults. A bad value is a startup
//! error that names the setting.

use clap::Args;
use serde::Deserialize;
use sesame_model::AccountId;
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
}

/// `sesame serve`'s own settings.
#[derive(Debug, Clone, Args)]
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
}

/// The config file's keys; any other key is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub dev: Option<bool>,
    pub auto_verify: Option<bool>,
    pub no_sandbox: Option<bool>,
    pub dev_account_id: Option<String>,
    pub public_url: Option<String>,
    pub verification_from: Option<String>,
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

/// Validated settings for the server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub dev: bool,
    pub auto_verify: bool,
    /// Recorded for the sending rules: new accounts start out of the sandbox.
    pub no_sandbox: bool,
    pub dev_account_id: AccountId,
    /// The base of verification links.
    pub public_url: String,
    /// The system address verification emails come from.
    pub verification_from: String,
}

pub fn data_dir(common: &CommonArgs, file: &FileConfig) -> PathBuf {
    common
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
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
        Ok(Self {
            public_url,
            verification_from,
            listen,
            data_dir: data_dir(common, &file),
            dev: serve.dev || file.dev.unwrap_or(false),
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
        ServeArgs {
            listen: None,
            dev: false,
            auto_verify: false,
            no_sandbox: false,
            dev_account_id: None,
            public_url: None,
            verification_from: None,
        }
    }

    fn common(config: Option<PathBuf>) -> CommonArgs {
        CommonArgs {
            config,
            data_dir: None,
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(&common(None), &serve()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(!s.dev);
        assert_eq!(s.dev_account_id.as_str(), DEFAULT_DEV_ACCOUNT);
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
