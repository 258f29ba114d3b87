//! The account directory: where the account's linked address comes from.
//! Never from the requester's mail.
//!
//! Placeholder with the file backend only; the verification issue adds the
//! HTTP backend.

use std::collections::HashMap;
use std::path::Path;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// One linked address of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedAddress {
    /// The address.
    pub address: String,
    /// Whether the service verified it.
    #[serde(default)]
    pub verified: bool,
    /// Whether it is the primary address.
    #[serde(default)]
    pub primary: bool,
}

/// An account as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The username.
    pub username: String,
    /// Linked addresses, primary first.
    #[serde(default)]
    pub addresses: Vec<LinkedAddress>,
    /// 2FA methods enabled (e.g. `totp`, `webauthn`).
    #[serde(default)]
    pub two_factor: Vec<String>,
    /// Whether recovery codes were generated.
    #[serde(default)]
    pub has_recovery_codes: bool,
    /// Projects the account owns.
    #[serde(default)]
    pub projects: Vec<String>,
}

impl Account {
    /// The address a challenge goes to: the primary, else the first verified,
    /// else the first.
    pub fn challenge_address(&self) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.primary)
            .or_else(|| self.addresses.iter().find(|a| a.verified))
            .or_else(|| self.addresses.first())
            .map(|a| a.address.as_str())
    }
}

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Lookup {
    /// The account exists.
    Found(Account),
    /// No such account.
    NotFound,
    /// The directory could not answer now; try later, never "no account".
    Unavailable {
        /// What went wrong.
        reason: String,
    },
}

/// Where accounts are looked up.
pub trait Directory: Send + Sync {
    /// Looks an account up by username (case-insensitive).
    fn by_username<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Lookup>;
    /// Looks an account up by one of its addresses.
    fn by_address<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Lookup>;
}

/// A TOML file of `[[account]]` tables, for small installations and tests.
#[derive(Debug, Clone, Default)]
pub struct FileDirectory {
    accounts: HashMap<String, Account>,
}

#[derive(Deserialize)]
struct AccountFile {
    #[serde(default)]
    account: Vec<Account>,
}

impl FileDirectory {
    /// Loads the file; errors name the file and the problem.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: AccountFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let accounts = file
            .account
            .into_iter()
            .map(|a| (a.username.to_lowercase(), a))
            .collect();
        Ok(FileDirectory { accounts })
    }
}

impl Directory for FileDirectory {
    fn by_username<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Lookup> {
        let found = self.accounts.get(&username.to_lowercase()).cloned();
        Box::pin(async move { found.map(Lookup::Found).unwrap_or(Lookup::NotFound) })
    }

    fn by_address<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Lookup> {
        let found = self
            .accounts
            .values()
            .find(|a| a.addresses.iter().any(|l| l.address.eq_ignore_ascii_case(address)))
            .cloned();
        Box::pin(async move { found.map(Lookup::Found).unwrap_or(Lookup::NotFound) })
    }
}
