//! The account directory: where an account's linked address comes from.
//! Never from the requester's mail.
//!
//! [`Directory`] is the trait the case pipeline asks; [`open`] builds one
//! from [`DirectorySettings`]. Two backends:
//!
//! - [`FileDirectory`], a TOML or CSV file for small installations, the
//!   embedded demo and tests. It is read at start-up and again on SIGHUP
//!   ([`ReloadableFile`]); a file that does not load keeps the old data.
//! - [`HttpDirectory`], a JSON endpoint of the real service.
//!
//! A lookup answers [`Lookup::Found`], [`Lookup::NotFound`] or
//! [`Lookup::Unavailable`]. Only a definite "no such account" from the
//! directory is `NotFound`; anything else that goes wrong (timeouts, 5xx,
//! refused connections, unexpected statuses, unreadable bodies) is
//! `Unavailable`, so the case waits and asks again rather than treating a
//! real account as unknown.
//!
//! # The TOML file
//! ```toml
//! [[account]]
//! username = "alice"
//! two_factor = ["totp", "webauthn"]
//! has_recovery_codes = true
//! projects = ["alice-utils"]
//! addresses = [
//!   { address = "alice@example.org", verified = true, primary = true },
//!   { address = "alice@old.example.net", verified = true },
//! ]
//! ```
//! Unknown keys are errors, so a typo cannot silently leave an account
//! without an address.
//!
//! # The CSV file (`.csv`)
//! One row per linked address; rows with the same username (compared
//! case-insensitively) make one account, addresses in file order. The first
//! line that is neither blank nor a `#` comment is the header, naming
//! columns in any order:
//!
//! | column | meaning | required |
//! |---|---|---|
//! | `username` | the account | yes |
//! | `address` | one linked address; empty for an account without one | no |
//! | `verified`, `primary` | `true`/`false` (also `yes`/`no`, `1`/`0`; empty is false) | no |
//! | `two_factor` | methods, separated by spaces or `;` | no |
//! | `recovery_codes` | whether recovery codes exist (boolean) | no |
//! | `projects` | project names, separated by spaces or `;` | no |
//!
//! ```text
//! username,address,verified,primary,two_factor,recovery_codes,projects
//! alice,alice@example.org,true,true,totp;webauthn,true,alice-utils
//! alice,alice@old.example.net,true,false,,,
//! bob,,,,,,
//! ```
//! Account-level columns may be given on any of an account's rows; lists
//! are merged and booleans or-ed. Fields are not quoted: none of these
//! values needs a comma, and a `"` anywhere is an error rather than a guess.
//! (That is why no CSV crate is used: the format is deliberately smaller
//! than RFC 4180, and the parser below is the whole of it.)
//!
//! In both forms an address may belong to one account only, and the
//! addresses of an account are kept primary first.
//!
//! # The HTTP contract
//! - `GET {base_url}/accounts/by-username/{username}`
//! - `GET {base_url}/accounts/by-address/{address}`
//!
//! A username or address that is empty, `.` or `..` cannot be a path
//! segment and is no account anywhere: it is answered `NotFound` without a
//! request.
//!
//! The last path segment is percent-encoded: every byte other than ASCII
//! letters, digits, `-`, `.`, `_` and `~` becomes `%XX` (UTF-8), so `/`,
//! `+`, `@`, `?`, `#`, `%` and spaces arrive as data, never as syntax.
//! Requests carry `Accept: application/json` and, when a token is
//! configured, `Authorization: Bearer <token>`. Redirects are not followed
//! (the token must not travel to another host).
//!
//! | answer | lookup |
//! |---|---|
//! | `200` with an [`Account`] as JSON | `Found` |
//! | `404` | `NotFound` |
//! | any other status, a body that is not an [`Account`] or over 1 MiB, a timeout, a connection error | `Unavailable` |
//!
//! The JSON is the serde form of [`Account`]: `username` is required,
//! `addresses` (objects with `address`, `verified`, `primary`),
//! `two_factor`, `has_recovery_codes` and `projects` default to empty, and
//! other fields are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::secret::{Secret, SecretSource};

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
    /// Reads its source again where it has one to read (a file): what
    /// changed, or why the data it had stays. `None`: nothing to reload.
    fn reload(&self) -> Option<Result<String, String>> {
        None
    }
}

/// The `[directory]` section of the configuration.
///
/// ```toml
/// [directory]
/// kind = "file"
/// path = "accounts.toml"      # or accounts.csv; relative to the config file
/// ```
/// ```toml
/// [directory]
/// kind = "http"
/// base_url = "https://accounts.internal.example/api"
/// token = { env = "RECOVERYDESK_DIRECTORY_TOKEN" }
/// timeout = "5s"              # humantime; the default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DirectorySettings {
    /// A TOML file, or CSV when the name ends in `.csv`.
    File {
        /// The file; relative paths resolve against the config's directory.
        path: PathBuf,
    },
    /// The service's JSON endpoint (see the module doc for the contract).
    Http {
        /// Base URL, `http` or `https`; the lookup paths are appended.
        base_url: String,
        /// Bearer token, from an environment variable or a file.
        #[serde(default)]
        token: Option<SecretSource>,
        /// Whole-request timeout, as `"5s"`, `"1500ms"`, …
        #[serde(
            default = "default_timeout",
            deserialize_with = "crate::config::duration"
        )]
        timeout: Duration,
    },
}

/// Builds the configured directory. A missing or unparseable file, a bad
/// URL or an unreadable token is [`Error::Config`], naming what is wrong.
pub fn open(settings: &DirectorySettings, base_dir: &Path) -> Result<Arc<dyn Directory>, Error> {
    match settings {
        DirectorySettings::File { path } => {
            let path = base_dir.join(path);
            let dir =
                FileDirectory::load(&path).map_err(|e| Error::Config(format!("directory: {e}")))?;
            Ok(Arc::new(ReloadableFile {
                path,
                current: std::sync::RwLock::new(Arc::new(dir)),
            }))
        }
        DirectorySettings::Http {
            base_url,
            token,
            timeout,
        } => {
            let token = token
                .as_ref()
                .map(|source| source.resolve("directory.token", base_dir))
                .transpose()?;
            Ok(Arc::new(HttpDirectory::new(base_url, token, *timeout)?))
        }
    }
}

/// A one-line health report for an operator's doctor command: `Ok` when
/// the directory answers as expected, `Err` with the reason otherwise.
///
/// With `probe_username`, that account must be found (it names the count
/// of linked addresses and the challenge address, masked). Without, a
/// made-up username is looked up and must be answered `NotFound`, which
/// shows the endpoint is reachable, authorised and speaks the contract.
/// (A wrong `base_url` whose server answers 404 to everything also passes
/// that test; give a probe username to rule it out.)
pub async fn check(dir: &dyn Directory, probe_username: Option<&str>) -> Result<String, String> {
    const MADE_UP: &str = "recoverydesk-doctor-no-such-user";
    match (
        probe_username,
        dir.by_username(probe_username.unwrap_or(MADE_UP)).await,
    ) {
        (_, Lookup::Unavailable { reason }) => Err(format!("directory unavailable: {reason}")),
        (Some(name), Lookup::NotFound) => {
            Err(format!("directory answered, but does not know {name:?}"))
        }
        (Some(_), Lookup::Found(account)) => Ok(format!(
            "directory ok: found {:?} with {} linked address(es), challenge address {}",
            account.username,
            account.addresses.len(),
            account
                .challenge_address()
                .map_or_else(|| "none".into(), crate::verify::mask_address),
        )),
        (None, Lookup::NotFound) => Ok("directory ok: a made-up username is not found".into()),
        (None, Lookup::Found(_)) => Err(format!(
            "directory claims the made-up username {MADE_UP:?} exists"
        )),
    }
}

// ---------------------------------------------------------------------------
// The file backend.

/// Accounts from a TOML or CSV file, for small installations and tests.
#[derive(Debug, Clone, Default)]
pub struct FileDirectory {
    /// By lower-case username.
    accounts: HashMap<String, Account>,
    /// Lower-case address to lower-case username.
    addresses: HashMap<String, String>,
}

/// The TOML form, strict about keys (unlike the JSON form of [`Account`],
/// which must tolerate fields added by the service).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    #[serde(default)]
    account: Vec<FileAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccount {
    username: String,
    #[serde(default)]
    addresses: Vec<FileAddress>,
    #[serde(default)]
    two_factor: Vec<String>,
    #[serde(default)]
    has_recovery_codes: bool,
    #[serde(default)]
    projects: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAddress {
    address: String,
    #[serde(default)]
    verified: bool,
    #[serde(default)]
    primary: bool,
}

impl FileDirectory {
    /// Loads a file: CSV when its name ends in `.csv` (any case), TOML
    /// otherwise. Errors name the file and the problem.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let is_csv = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        let parsed = if is_csv {
            Self::from_csv(&text)
        } else {
            Self::from_toml(&text)
        };
        parsed.map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the TOML form (see the module doc).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: AccountFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let accounts = file.account.into_iter().map(|a| Account {
            username: a.username,
            addresses: a
                .addresses
                .into_iter()
                .map(|l| LinkedAddress {
                    address: l.address,
                    verified: l.verified,
                    primary: l.primary,
                })
                .collect(),
            two_factor: a.two_factor,
            has_recovery_codes: a.has_recovery_codes,
            projects: a.projects,
        });
        Self::from_accounts(accounts)
    }

    /// Parses the CSV form (see the module doc). Errors name the line.
    pub fn from_csv(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(idx, line)| (idx + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
        let Some((header_no, header)) = lines.next() else {
            return Self::from_accounts(Vec::new());
        };
        let columns = CsvColumns::parse(header).map_err(|e| format!("line {header_no}: {e}"))?;

        // Merge rows into accounts, keeping the file's order of usernames.
        let mut order: Vec<String> = Vec::new();
        let mut merged: HashMap<String, Account> = HashMap::new();
        for (line_no, line) in lines {
            let row = columns
                .row(line)
                .map_err(|e| format!("line {line_no}: {e}"))?;
            let key = row.username.to_lowercase();
            let account = merged.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Account {
                    username: row.username.clone(),
                    addresses: Vec::new(),
                    two_factor: Vec::new(),
                    has_recovery_codes: false,
                    projects: Vec::new(),
                }
            });
            if let Some(address) = row.address {
                account.addresses.push(address);
            }
            extend_unique(&mut account.two_factor, row.two_factor);
            extend_unique(&mut account.projects, row.projects);
            account.has_recovery_codes |= row.recovery_codes;
        }
        Self::from_accounts(order.into_iter().filter_map(|key| merged.remove(&key)))
    }

    /// Builds a directory from accounts, checking that usernames are
    /// present and unique, that addresses look like addresses and belong to
    /// one account each, and putting each account's primary address first.
    pub fn from_accounts(accounts: impl IntoIterator<Item = Account>) -> Result<Self, String> {
        let mut dir = FileDirectory::default();
        for mut account in accounts {
            let name = account.username.trim().to_string();
            if name.is_empty() {
                return Err("an account has an empty username".into());
            }
            account.username = name;
            let key = account.username.to_lowercase();
            if dir.accounts.contains_key(&key) {
                return Err(format!("account {:?} is listed twice", account.username));
            }
            for linked in &mut account.addresses {
                linked.address = linked.address.trim().to_string();
                if !plausible_address(&linked.address) {
                    return Err(format!(
                        "account {:?}: {:?} is not an email address",
                        account.username, linked.address
                    ));
                }
                let address_key = linked.address.to_lowercase();
                if let Some(other) = dir.addresses.get(&address_key) {
                    return Err(format!(
                        "address {:?} is linked to both {:?} and {:?}",
                        linked.address,
                        dir.accounts.get(other).map_or(other, |a| &a.username),
                        account.username
                    ));
                }
                dir.addresses.insert(address_key, key.clone());
            }
            if account.addresses.iter().filter(|a| a.primary).count() > 1 {
                return Err(format!(
                    "account {:?} has more than one primary address",
                    account.username
                ));
            }
            // Stable: the primary moves to the front, the rest keep order.
            account.addresses.sort_by_key(|a| !a.primary);
            dir.accounts.insert(key, account);
        }
        Ok(dir)
    }

    /// How many accounts the file holds.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether the file holds no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

impl FileDirectory {
    fn find_username(&self, username: &str) -> Option<Account> {
        self.accounts.get(&username.trim().to_lowercase()).cloned()
    }

    fn find_address(&self, address: &str) -> Option<Account> {
        self.addresses
            .get(&address.trim().to_lowercase())
            .and_then(|key| self.accounts.get(key))
            .cloned()
    }

    /// What changed from `old` to this, in counts: usernames are not
    /// written to the log.
    fn changes_since(&self, old: &FileDirectory) -> String {
        let added = self
            .accounts
            .keys()
            .filter(|k| !old.accounts.contains_key(*k))
            .count();
        let removed = old
            .accounts
            .keys()
            .filter(|k| !self.accounts.contains_key(*k))
            .count();
        let changed = self
            .accounts
            .iter()
            .filter(|(k, a)| old.accounts.get(*k).is_some_and(|o| o != *a))
            .count();
        format!(
            "{} account(s): {added} added, {removed} removed, {changed} changed",
            self.accounts.len()
        )
    }
}

impl Directory for FileDirectory {
    fn by_username<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Lookup> {
        let found = self.find_username(username);
        Box::pin(async move { found.map_or(Lookup::NotFound, Lookup::Found) })
    }

    fn by_address<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Lookup> {
        let found = self.find_address(address);
        Box::pin(async move { found.map_or(Lookup::NotFound, Lookup::Found) })
    }
}

/// The configured accounts file: a [`FileDirectory`] that
/// [`Directory::reload`] replaces with the file's new contents, or keeps
/// when they do not load.
pub struct ReloadableFile {
    path: std::path::PathBuf,
    current: std::sync::RwLock<Arc<FileDirectory>>,
}

impl ReloadableFile {
    fn now(&self) -> Arc<FileDirectory> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Directory for ReloadableFile {
    fn by_username<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Lookup> {
        let found = self.now().find_username(username);
        Box::pin(async move { found.map_or(Lookup::NotFound, Lookup::Found) })
    }

    fn by_address<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Lookup> {
        let found = self.now().find_address(address);
        Box::pin(async move { found.map_or(Lookup::NotFound, Lookup::Found) })
    }

    fn reload(&self) -> Option<Result<String, String>> {
        Some(FileDirectory::load(&self.path).map(|fresh| {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            let said = fresh.changes_since(&current);
            *current = Arc::new(fresh);
            said
        }))
    }
}

/// One `local@domain` with nothing that could break a header or a URL.
fn plausible_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        }
        None => false,
    }
}

fn extend_unique(into: &mut Vec<String>, items: Vec<String>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

/// Which column holds what, from the CSV header.
struct CsvColumns {
    names: Vec<CsvColumn>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvColumn {
    Username,
    Address,
    Verified,
    Primary,
    TwoFactor,
    RecoveryCodes,
    Projects,
}

/// One CSV row, read.
struct CsvRow {
    username: String,
    address: Option<LinkedAddress>,
    two_factor: Vec<String>,
    recovery_codes: bool,
    projects: Vec<String>,
}

impl CsvColumns {
    fn parse(header: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for cell in split_csv_line(header)? {
            let column = match cell.to_ascii_lowercase().as_str() {
                "username" => CsvColumn::Username,
                "address" => CsvColumn::Address,
                "verified" => CsvColumn::Verified,
                "primary" => CsvColumn::Primary,
                "two_factor" => CsvColumn::TwoFactor,
                "recovery_codes" => CsvColumn::RecoveryCodes,
                "projects" => CsvColumn::Projects,
                other => {
                    return Err(format!(
                        "unknown column {other:?} in the header (expected username, address, \
                         verified, primary, two_factor, recovery_codes, projects)"
                    ))
                }
            };
            if names.contains(&column) {
                return Err(format!("column {cell:?} appears twice in the header"));
            }
            names.push(column);
        }
        if !names.contains(&CsvColumn::Username) {
            return Err("the header has no username column".into());
        }
        Ok(CsvColumns { names })
    }

    fn row(&self, line: &str) -> Result<CsvRow, String> {
        let cells = split_csv_line(line)?;
        if cells.len() != self.names.len() {
            return Err(format!(
                "{} fields where the header has {}",
                cells.len(),
                self.names.len()
            ));
        }
        let mut row = CsvRow {
            username: String::new(),
            address: None,
            two_factor: Vec::new(),
            recovery_codes: false,
            projects: Vec::new(),
        };
        let (mut address, mut verified, mut primary) = (String::new(), false, false);
        for (column, cell) in self.names.iter().zip(cells) {
            match column {
                CsvColumn::Username => row.username = cell.to_string(),
                CsvColumn::Address => address = cell.to_string(),
                CsvColumn::Verified => verified = parse_bool("verified", cell)?,
                CsvColumn::Primary => primary = parse_bool("primary", cell)?,
                CsvColumn::TwoFactor => row.two_factor = split_list(cell),
                CsvColumn::RecoveryCodes => {
                    row.recovery_codes = parse_bool("recovery_codes", cell)?
                }
                CsvColumn::Projects => row.projects = split_list(cell),
            }
        }
        if row.username.is_empty() {
            return Err("empty username".into());
        }
        if !address.is_empty() {
            row.address = Some(LinkedAddress {
                address,
                verified,
                primary,
            });
        } else if verified || primary {
            return Err("verified or primary is set on a row without an address".into());
        }
        Ok(row)
    }
}

/// Splits on commas and trims; rejects quotes, which this format does not
/// have (see the module doc).
fn split_csv_line(line: &str) -> Result<Vec<&str>, String> {
    if line.contains('"') {
        return Err("quoted fields are not supported; no value in this file needs a comma".into());
    }
    Ok(line.split(',').map(str::trim).collect())
}

fn parse_bool(column: &str, cell: &str) -> Result<bool, String> {
    match cell.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" | "" => Ok(false),
        other => Err(format!("{column}: {other:?} is not true or false")),
    }
}

fn split_list(cell: &str) -> Vec<String> {
    cell.split(|c: char| c == ';' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------
// The HTTP backend.

/// Largest response body read; an account is a few hundred bytes.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The service's JSON endpoint (see the module doc for the contract).
#[derive(Debug, Clone)]
pub struct HttpDirectory {
    client: reqwest::Client,
    base_url: reqwest::Url,
    token: Option<Secret>,
    timeout: Duration,
}

impl HttpDirectory {
    /// A client for `base_url` (`http` or `https`), with an optional bearer
    /// token and a whole-request timeout. A bad URL or a zero timeout is
    /// [`Error::Config`].
    pub fn new(base_url: &str, token: Option<Secret>, timeout: Duration) -> Result<Self, Error> {
        let mut url = reqwest::Url::parse(base_url)
            .map_err(|e| Error::Config(format!("directory.base_url: {base_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "directory.base_url: {base_url:?} is not an http(s) URL"
            )));
        }
        if timeout.is_zero() {
            return Err(Error::Config(
                "directory.timeout: must be more than zero".into(),
            ));
        }
        // The lookup path is appended to the base; a query or fragment on
        // the base would end up in the wrong place.
        url.set_query(None);
        url.set_fragment(None);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("recoverydesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("directory: cannot build the HTTP client: {e}")))?;
        Ok(HttpDirectory {
            client,
            base_url: url,
            token,
            timeout,
        })
    }

    /// The URL of one lookup: `{base}/accounts/{kind}/{key}` with `key`
    /// percent-encoded. `None` for keys that cannot be a path segment
    /// (empty, `.` and `..`); they are no account anywhere.
    pub fn lookup_url(&self, kind: LookupKind, key: &str) -> Option<reqwest::Url> {
        if matches!(key, "" | "." | "..") {
            return None;
        }
        let mut url = self.base_url.clone();
        let path = format!(
            "{}/accounts/{}/{}",
            url.path().trim_end_matches('/'),
            kind.segment(),
            encode_segment(key)
        );
        // `set_path` keeps `%XX` as given, and the encoded key holds nothing
        // else it would rewrite.
        url.set_path(&path);
        Some(url)
    }

    async fn lookup(&self, kind: LookupKind, key: &str) -> Lookup {
        let Some(url) = self.lookup_url(kind, key.trim()) else {
            return Lookup::NotFound;
        };
        let what = kind.segment();
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            // `bearer_auth` marks the header sensitive, so it is not logged.
            request = request.bearer_auth(token.expose());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return unavailable(what, self.describe(e)),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Lookup::NotFound;
        }
        if status != reqwest::StatusCode::OK {
            return unavailable(what, format!("HTTP {status}"));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return unavailable(what, format!("response over {MAX_BODY_BYTES} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return unavailable(what, self.describe(e)),
            }
        }
        match serde_json::from_slice::<Account>(&body) {
            Ok(account) => Lookup::Found(account),
            Err(e) => unavailable(what, format!("response is not an account: {e}")),
        }
    }

    /// An error without its URL: the URL holds the looked-up name, and a
    /// base URL might hold credentials.
    fn describe(&self, e: reqwest::Error) -> String {
        let e = e.without_url();
        if e.is_timeout() {
            format!(
                "timed out after {}",
                humantime::format_duration(self.timeout)
            )
        } else if e.is_connect() {
            format!("cannot connect: {}", error_chain(&e))
        } else {
            error_chain(&e)
        }
    }
}

impl Directory for HttpDirectory {
    fn by_username<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(self.lookup(LookupKind::ByUsername, username))
    }

    fn by_address<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(self.lookup(LookupKind::ByAddress, address))
    }
}

/// Which lookup a URL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// `/accounts/by-username/{username}`.
    ByUsername,
    /// `/accounts/by-address/{address}`.
    ByAddress,
}

impl LookupKind {
    fn segment(self) -> &'static str {
        match self {
            LookupKind::ByUsername => "by-username",
            LookupKind::ByAddress => "by-address",
        }
    }
}

fn unavailable(what: &str, reason: String) -> Lookup {
    Lookup::Unavailable {
        reason: format!("directory {what}: {reason}"),
    }
}

/// The error and its sources, URL-free, joined with `: `.
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes everything but RFC 3986 unreserved characters. Stricter
/// than the URL crate's path-segment set on purpose: `+`, `@` and `:` are
/// legal in a path, but some servers decode `+` as a space.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(dir: &FileDirectory, username: &str) -> Lookup {
        futures::executor::block_on(dir.by_username(username))
    }

    fn lookup_address(dir: &FileDirectory, address: &str) -> Lookup {
        futures::executor::block_on(dir.by_address(address))
    }

    const TOML: &str = r#"
        [[account]]
        username = "Alice"
        two_factor = ["totp"]
        has_recovery_codes = true
        projects = ["alice-utils"]
        addresses = [
          { address = "alice@old.example.net", verified = true },
          { address = "alice@example.org", verified = true, primary = true },
        ]

        [[account]]
        username = "bob"
    "#;

    #[test]
    fn toml_accounts_are_found_by_username_in_any_case_and_by_address() {
        let dir = FileDirectory::from_toml(TOML).unwrap();
        assert_eq!(dir.len(), 2);
        let Lookup::Found(alice) = lookup(&dir, "ALICE") else {
            panic!("alice")
        };
        assert_eq!(alice.username, "Alice");
        assert_eq!(
            alice.addresses[0].address, "alice@example.org",
            "primary first"
        );
        assert_eq!(alice.challenge_address(), Some("alice@example.org"));
        assert_eq!(
            lookup_address(&dir, "Alice@Old.Example.net"),
            Lookup::Found(alice)
        );
        assert_eq!(lookup(&dir, "carol"), Lookup::NotFound);
        assert_eq!(lookup_address(&dir, "carol@example.org"), Lookup::NotFound);
    }

    #[test]
    fn an_account_without_an_address_is_found_with_none() {
        let dir = FileDirectory::from_toml(TOML).unwrap();
        let Lookup::Found(bob) = lookup(&dir, "bob") else {
            panic!("bob")
        };
        assert_eq!(bob.challenge_address(), None);
    }

    #[test]
    fn toml_typos_and_duplicates_are_errors() {
        let typo = "[[account]]\nusername = \"a\"\nadresses = []\n";
        assert!(FileDirectory::from_toml(typo)
            .unwrap_err()
            .contains("adresses"));
        let twice = "[[account]]\nusername = \"a\"\n[[account]]\nusername = \"A\"\n";
        assert!(FileDirectory::from_toml(twice)
            .unwrap_err()
            .contains("twice"));
        let shared = r#"
            [[account]]
            username = "a"
            addresses = [{ address = "x@example.org" }]
            [[account]]
            username = "b"
            addresses = [{ address = "X@example.org" }]
        "#;
        assert!(FileDirectory::from_toml(shared)
            .unwrap_err()
            .contains("linked to both"));
        let bad =
            "[[account]]\nusername = \"a\"\naddresses = [{ address = \"a@b\\r\\nBcc: x\" }]\n";
        assert!(FileDirectory::from_toml(bad)
            .unwrap_err()
            .contains("not an email address"));
    }

    const CSV: &str = "\
# accounts for the demo
username,address,verified,primary,two_factor,recovery_codes,projects
Alice,alice@old.example.net,true,false,totp,,alice-utils
alice,alice@example.org,yes,yes,totp;webauthn,true,alice-cli alice-utils

bob,,,,,,
";

    #[test]
    fn csv_rows_of_one_username_merge_into_one_account() {
        let dir = FileDirectory::from_csv(CSV).unwrap();
        assert_eq!(dir.len(), 2);
        let Lookup::Found(alice) = lookup(&dir, "alice") else {
            panic!("alice")
        };
        assert_eq!(
            alice,
            Account {
                username: "Alice".into(),
                addresses: vec![
                    LinkedAddress {
                        address: "alice@example.org".into(),
                        verified: true,
                        primary: true
                    },
                    LinkedAddress {
                        address: "alice@old.example.net".into(),
                        verified: true,
                        primary: false
                    },
                ],
                two_factor: vec!["totp".into(), "webauthn".into()],
                has_recovery_codes: true,
                projects: vec!["alice-utils".into(), "alice-cli".into()],
            }
        );
        let Lookup::Found(bob) = lookup(&dir, "bob") else {
            panic!("bob")
        };
        assert!(bob.addresses.is_empty());
        assert_eq!(
            lookup_address(&dir, "ALICE@example.org"),
            lookup(&dir, "Alice")
        );
    }

    #[test]
    fn csv_columns_may_come_in_any_order_and_most_are_optional() {
        let dir = FileDirectory::from_csv("address,username\nc@example.org,carol\n").unwrap();
        let Lookup::Found(carol) = lookup(&dir, "carol") else {
            panic!("carol")
        };
        assert_eq!(carol.challenge_address(), Some("c@example.org"));
        assert!(FileDirectory::from_csv("").unwrap().is_empty());
        assert!(FileDirectory::from_csv("\u{feff}username\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn csv_mistakes_are_errors_naming_the_line() {
        let cases = [
            ("username,adress\na,a@x.org\n", "line 1: unknown column"),
            ("address\na@x.org\n", "no username column"),
            ("username,username\n", "twice"),
            ("username,address\na,a@x.org,extra\n", "line 2: 3 fields"),
            ("username,address\n\"a,b\",a@x.org\n", "line 2: quoted"),
            ("username,verified\na,perhaps\n", "line 2: verified"),
            ("username,address\n,a@x.org\n", "line 2: empty username"),
            ("username,address,primary\na,,true\n", "without an address"),
            (
                "username,address\na,not-an-address\n",
                "not an email address",
            ),
            ("username,address\na,x@x.org\nb,x@x.org\n", "linked to both"),
            (
                "username,address,primary\na,x@x.org,1\na,y@x.org,1\n",
                "more than one primary",
            ),
        ];
        for (text, expect) in cases {
            let err = FileDirectory::from_csv(text).err().unwrap_or_default();
            assert!(err.contains(expect), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn load_picks_the_form_by_extension_and_names_the_file_in_errors() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.CSV"), CSV).unwrap();
        std::fs::write(tmp.path().join("a.toml"), TOML).unwrap();
        assert_eq!(
            FileDirectory::load(&tmp.path().join("a.CSV"))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            FileDirectory::load(&tmp.path().join("a.toml"))
                .unwrap()
                .len(),
            2
        );
        let missing = FileDirectory::load(&tmp.path().join("nope.toml")).unwrap_err();
        assert!(missing.contains("nope.toml"), "{missing}");
    }

    #[test]
    fn settings_parse_both_kinds_with_a_default_timeout_and_reject_unknown_keys() {
        #[derive(Deserialize)]
        struct Wrapper {
            directory: DirectorySettings,
        }
        let parse = |text: &str| toml::from_str::<Wrapper>(text).map(|w| w.directory);
        assert_eq!(
            parse("[directory]\nkind = \"file\"\npath = \"accounts.csv\"\n").unwrap(),
            DirectorySettings::File {
                path: "accounts.csv".into()
            }
        );
        assert_eq!(
            parse("[directory]\nkind = \"http\"\nbase_url = \"http://x\"\n").unwrap(),
            DirectorySettings::Http {
                base_url: "http://x".into(),
                token: None,
                timeout: Duration::from_secs(5)
            }
        );
        let with_token = "[directory]\nkind = \"http\"\nbase_url = \"http://x\"\n\
                          token = { env = \"T\" }\ntimeout = \"1500ms\"\n";
        assert_eq!(
            parse(with_token).unwrap(),
            DirectorySettings::Http {
                base_url: "http://x".into(),
                token: Some(SecretSource {
                    env: Some("T".into()),
                    file: None,
                    credential: None,
                }),
                timeout: Duration::from_millis(1500),
            }
        );
        assert!(parse("[directory]\nkind = \"file\"\npath = \"a\"\nextra = 1\n").is_err());
        assert!(parse("[directory]\nkind = \"ldap\"\n").is_err());
        assert!(
            parse("[directory]\nkind = \"http\"\nbase_url = \"x\"\ntimeout = \"soon\"\n").is_err()
        );
    }

    #[test]
    fn the_accounts_file_reloads_and_a_broken_one_keeps_the_old_accounts() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("accounts.toml");
        std::fs::write(&file, TOML).unwrap();
        let settings = DirectorySettings::File {
            path: "accounts.toml".into(),
        };
        let dir = open(&settings, tmp.path()).unwrap();
        let found = |name: &str| {
            matches!(
                futures::executor::block_on(dir.by_username(name)),
                Lookup::Found(_)
            )
        };
        assert!(found("bob") && !found("zed"));
        let more = format!(
            "{TOML}\n[[account]]\nusername = \"zed\"\naddresses = [{{ address = \"zed@example.org\", verified = true }}]\n"
        );
        std::fs::write(&file, more).unwrap();
        let said = dir.reload().unwrap().unwrap();
        assert!(said.contains("1 added, 0 removed, 0 changed"), "{said}");
        assert!(!said.contains("zed"), "no usernames in the log: {said}");
        assert!(found("zed") && found("bob"));

        std::fs::write(&file, "[[account]\n").unwrap();
        let err = dir.reload().unwrap().unwrap_err();
        assert!(err.contains("accounts.toml"), "{err}");
        assert!(found("zed"), "the previous accounts stay");
    }

    #[test]
    fn open_resolves_relative_paths_and_reports_config_errors() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("accounts.toml"), TOML).unwrap();
        let settings = DirectorySettings::File {
            path: "accounts.toml".into(),
        };
        let dir = open(&settings, tmp.path()).unwrap();
        assert!(matches!(
            futures::executor::block_on(dir.by_username("bob")),
            Lookup::Found(_)
        ));

        std::fs::write(tmp.path().join("broken.toml"), "[[account]\n").unwrap();
        for name in ["missing.toml", "broken.toml"] {
            let settings = DirectorySettings::File { path: name.into() };
            match open(&settings, tmp.path()) {
                Err(Error::Config(msg)) => assert!(msg.contains(name), "{msg}"),
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("{name} opened"),
            }
        }
        let bad_url = DirectorySettings::Http {
            base_url: "mailto:x@y".into(),
            token: None,
            timeout: default_timeout(),
        };
        assert!(matches!(open(&bad_url, tmp.path()), Err(Error::Config(_))));
    }

    #[test]
    fn lookup_urls_encode_the_key_and_keep_the_base_path() {
        let dir =
            HttpDirectory::new("https://dir.example/api/v1/?x=1", None, default_timeout()).unwrap();
        let url = |kind, key| dir.lookup_url(kind, key).map(|u| u.to_string());
        assert_eq!(
            url(LookupKind::ByUsername, "alice").as_deref(),
            Some("https://dir.example/api/v1/accounts/by-username/alice")
        );
        assert_eq!(
            url(LookupKind::ByAddress, "a+b@x.org").as_deref(),
            Some("https://dir.example/api/v1/accounts/by-address/a%2Bb%40x.org")
        );
        assert_eq!(
            url(LookupKind::ByUsername, "../ä b?#%").as_deref(),
            Some("https://dir.example/api/v1/accounts/by-username/..%2F%C3%A4%20b%3F%23%25")
        );
        assert_eq!(url(LookupKind::ByUsername, ".."), None);
        assert_eq!(url(LookupKind::ByUsername, ""), None);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let dir =
            HttpDirectory::new("http://x", Some(Secret::new("s3cr3t")), default_timeout()).unwrap();
        assert!(!format!("{dir:?}").contains("s3cr3t"));
    }
}
