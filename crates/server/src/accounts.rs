//! Counsellor, supervisor and admin accounts, kept in
//! `<data_dir>/accounts.json` with Argon2id password hashes.
//!
//! The file is small and changes rarely, so it is rewritten whole: written
//! to a temporary file, synced, then renamed over the old one, with mode
//! 0600. The server re-reads it when its modification time changes, so
//! `haven account add` takes effect without a restart.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use haven_core::CounsellorId;
use serde::{Deserialize, Serialize};

/// File name under the data dir.
pub const FILE_NAME: &str = "accounts.json";
/// Where the first start's generated admin password is written when there
/// is no terminal to show it on; removed when it is changed.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes chats.
    Counsellor,
    /// Takes chats and watches the service.
    Supervisor,
    /// Manages the service; may also take chats.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "counsellor" => Ok(Role::Counsellor),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?}: use counsellor, supervisor or admin"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Counsellor => "counsellor",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        })
    }
}

/// One account.
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    /// Stable numeric id, used inside the broker.
    pub id: u64,
    /// Login name: lowercase letters, digits, `.`, `_` and `-`.
    pub name: String,
    /// The name help-seekers see (a first name or an alias).
    pub display_name: String,
    /// What the account may do.
    pub role: Role,
    /// Sessions taken at once; the configured default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// The most they may raise their capacity to; the configured default
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
    /// Topics they serve; all topics when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// Languages they chat in; all languages when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    /// The Argon2id hash in PHC string form.
    pub password_hash: String,
    /// The credential epoch: raised whenever the password changes, the
    /// second factor is reset or the account's logins are revoked. Every
    /// login and device cookie made under an older epoch is void.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// The second factor's TOTP secret (base32), once set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// SHA-256 hashes of the unused recovery codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
    /// The password was generated for a first start and must be changed at
    /// the first login.
    #[serde(default, skip_serializing_if = "is_false")]
    pub must_change_password: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What an account is made with, or changed to (`None`: unchanged or
/// default).
#[derive(Clone, Debug, Default)]
pub struct AccountSpec {
    /// The name help-seekers see.
    pub display_name: Option<String>,
    /// Sessions taken at once.
    pub capacity: Option<u32>,
    /// The most they may raise it to.
    pub max_capacity: Option<u32>,
    /// Topics served.
    pub topics: Option<Vec<String>>,
    /// Languages spoken.
    pub languages: Option<Vec<String>>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The broker's id for this account.
    pub fn counsellor_id(&self) -> CounsellorId {
        CounsellorId(self.id)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountsFile {
    next_id: u64,
    accounts: Vec<Account>,
}

impl AccountsFile {
    /// Appends a new account with the next id.
    fn push(
        &mut self,
        name: &str,
        role: Role,
        password_hash: String,
        spec: &AccountSpec,
    ) -> &Account {
        self.next_id = self.next_id.max(1);
        self.accounts.push(Account {
            id: self.next_id,
            name: name.to_owned(),
            display_name: spec
                .display_name
                .clone()
                .unwrap_or_else(|| capitalise(name)),
            role,
            capacity: spec.capacity,
            max_capacity: spec.max_capacity,
            topics: spec.topics.clone(),
            languages: spec.languages.clone(),
            password_hash,
            epoch: 0,
            totp: None,
            recovery_codes: Vec::new(),
            must_change_password: false,
        });
        self.next_id += 1;
        &self.accounts[self.accounts.len() - 1]
    }
}

/// Problems with the account store.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file exists but is not a valid accounts file.
    #[error("{path} is not a valid accounts file: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The name is not allowed.
    #[error("invalid account name {0:?}: use 1 to 32 lowercase letters, digits, '.', '_' or '-'")]
    BadName(String),
    /// The display name is blank, too long, or holds control or
    /// bidirectional control characters.
    #[error(
        "invalid display name {0:?}: use 1 to 64 characters, no control or bidirectional control characters"
    )]
    BadDisplayName(String),
    /// The password is too short, too common, or holds the account's name.
    #[error("{0}")]
    WeakPassword(String),
    /// An account with this name exists.
    #[error("account {0:?} already exists")]
    Exists(String),
    /// No account with this name.
    #[error("no account named {0:?}")]
    NotFound(String),
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A generated password: 120 random bits, base64url (20 characters).
pub fn generate_password() -> String {
    crate::tokens::new_password()
}

/// Checks a display name: what help-seekers see, so nothing that could
/// disguise it or reverse the text beside it.
pub fn valid_display_name(name: &str) -> bool {
    !haven_protocol::text::is_blank(name)
        && haven_protocol::text::length(name) <= 64
        && name.chars().all(haven_protocol::text::allowed_in_name)
}

/// Checks an account name.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Hashes a password with Argon2id and the OWASP-recommended defaults
/// (m = 19 MiB, t = 2, p = 1).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Checks a password against a stored hash. Costs about 30 ms of CPU.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// The account file, cached in memory and re-read when it changes on disk.
#[derive(Debug)]
pub struct AccountStore {
    path: PathBuf,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    /// Modification time and length of the file last read; `None` forces a
    /// read.
    stamp: Option<Stamp>,
    /// Raised on every read of the file.
    reads: u64,
    file: AccountsFile,
}

/// What tells one version of the file from the next: its modification
/// time, length and (each write renames a new file into place) inode.
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

impl AccountStore {
    /// The store in `data_dir`. Nothing is read until first use.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE_NAME),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, source: std::io::Error) -> AccountError {
        AccountError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn read_file(&self) -> Result<(Option<Stamp>, AccountsFile), AccountError> {
        match fs::read(&self.path) {
            Ok(bytes) => {
                let stamp = stamp(&self.path);
                let file =
                    serde_json::from_slice(&bytes).map_err(|source| AccountError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok((stamp, file))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((None, AccountsFile::default()))
            }
            Err(e) => Err(self.io_err(e)),
        }
    }

    /// Re-reads the file if it changed since the last read.
    fn refresh(&self) -> Result<(), AccountError> {
        let on_disk = stamp(&self.path);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if on_disk.is_some() && cache.stamp == on_disk {
            return Ok(());
        }
        let (stamp, file) = self.read_file()?;
        let reads = cache.reads + 1;
        *cache = Cache { stamp, reads, file };
        Ok(())
    }

    /// Every account, when the file has been read again since `seen` (by
    /// this process's changes, or another's: `haven account` on the
    /// command line), and `None` when nothing changed.
    pub fn changed_since(&self, seen: &mut u64) -> Result<Option<Vec<Account>>, AccountError> {
        self.refresh()?;
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.reads == *seen {
            return Ok(None);
        }
        *seen = cache.reads;
        Ok(Some(cache.file.accounts.clone()))
    }

    /// Finds an account by name.
    pub fn get(&self, name: &str) -> Result<Option<Account>, AccountError> {
        self.refresh()?;
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cache.file.accounts.iter().find(|a| a.name == name).cloned())
    }

    /// Finds an account by id.
    pub fn get_by_id(&self, id: u64) -> Result<Option<Account>, AccountError> {
        self.refresh()?;
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cache.file.accounts.iter().find(|a| a.id == id).cloned())
    }

    /// Every account.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        self.refresh()?;
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cache.file.accounts.clone())
    }

    /// Adds an account.
    pub fn add(
        &self,
        name: &str,
        role: Role,
        password: &str,
        spec: &AccountSpec,
    ) -> Result<Account, AccountError> {
        if !valid_name(name) {
            return Err(AccountError::BadName(name.to_owned()));
        }
        check_display_name(spec)?;
        check_password(password, name)?;
        let password_hash = hash_password(password)?;
        self.update_file(|file| {
            if file.accounts.iter().any(|a| a.name == name) {
                return Err(AccountError::Exists(name.to_owned()));
            }
            Ok(file.push(name, role, password_hash, spec).clone())
        })
    }

    /// Adds many accounts sharing one password, already hashed, in a single
    /// write: the load generator's counsellor bots. Names that exist are
    /// left as they are. Returns how many were added.
    pub fn add_many_hashed(
        &self,
        names: &[String],
        role: Role,
        password_hash: &str,
        spec: &AccountSpec,
    ) -> Result<usize, AccountError> {
        if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
            return Err(AccountError::BadName(bad.clone()));
        }
        self.update_file(|file| {
            let existing: std::collections::HashSet<String> =
                file.accounts.iter().map(|a| a.name.clone()).collect();
            let mut added = 0;
            for name in names.iter().filter(|n| !existing.contains(*n)) {
                file.push(name, role, password_hash.to_owned(), spec);
                added += 1;
            }
            Ok(added)
        })
    }

    /// Replaces an account's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        check_password(password, name)?;
        let password_hash = hash_password(password)?;
        self.update_file(|file| {
            let account = file
                .accounts
                .iter_mut()
                .find(|a| a.name == name)
                .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
            account.password_hash = password_hash;
            account.epoch += 1;
            account.must_change_password = false;
            Ok(())
        })
    }

    /// Changes an account's profile: every `Some` field in `spec` replaces
    /// the stored one.
    pub fn update(&self, name: &str, spec: &AccountSpec) -> Result<Account, AccountError> {
        check_display_name(spec)?;
        self.update_file(|file| {
            let account = file
                .accounts
                .iter_mut()
                .find(|a| a.name == name)
                .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
            if let Some(v) = &spec.display_name {
                account.display_name.clone_from(v);
            }
            if spec.capacity.is_some() {
                account.capacity = spec.capacity;
            }
            if spec.max_capacity.is_some() {
                account.max_capacity = spec.max_capacity;
            }
            if spec.topics.is_some() {
                account.topics.clone_from(&spec.topics);
            }
            if spec.languages.is_some() {
                account.languages.clone_from(&spec.languages);
            }
            Ok(account.clone())
        })
    }

    /// Sets up a second factor: the TOTP secret and the recovery codes'
    /// hashes. Ends every earlier login of the account.
    pub fn set_second_factor(
        &self,
        name: &str,
        secret: &str,
        recovery_hashes: Vec<String>,
    ) -> Result<Account, AccountError> {
        self.change(name, |account| {
            account.totp = Some(secret.to_owned());
            account.recovery_codes = recovery_hashes;
            account.epoch += 1;
        })
    }

    /// Removes the second factor (an admin's reset when a phone is lost),
    /// and ends every login of the account.
    pub fn clear_second_factor(&self, name: &str) -> Result<Account, AccountError> {
        self.change(name, |account| {
            account.totp = None;
            account.recovery_codes.clear();
            account.epoch += 1;
        })
    }

    /// Strikes a recovery code off (by its hash). Returns whether it was
    /// there to strike.
    pub fn use_recovery_code(&self, name: &str, hash: &str) -> Result<bool, AccountError> {
        let mut found = false;
        self.change(name, |account| {
            let before = account.recovery_codes.len();
            account.recovery_codes.retain(|h| h != hash);
            found = account.recovery_codes.len() < before;
        })?;
        Ok(found)
    }

    fn change(
        &self,
        name: &str,
        change: impl FnOnce(&mut Account),
    ) -> Result<Account, AccountError> {
        self.update_file(|file| {
            let account = file
                .accounts
                .iter_mut()
                .find(|a| a.name == name)
                .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
            change(account);
            Ok(account.clone())
        })
    }

    /// Ends every login of an account, on every server reading this data
    /// dir: raises its credential epoch.
    pub fn revoke(&self, name: &str) -> Result<Account, AccountError> {
        self.change(name, |account| account.epoch += 1)
    }

    /// Removes an account.
    pub fn remove(&self, name: &str) -> Result<(), AccountError> {
        self.update_file(|file| {
            let before = file.accounts.len();
            file.accounts.retain(|a| a.name != name);
            if file.accounts.len() == before {
                return Err(AccountError::NotFound(name.to_owned()));
            }
            Ok(())
        })
    }

    /// Reads, changes and writes the file back atomically.
    fn update_file<T>(
        &self,
        change: impl FnOnce(&mut AccountsFile) -> Result<T, AccountError>,
    ) -> Result<T, AccountError> {
        let (_, mut file) = self.read_file()?;
        let out = change(&mut file)?;
        self.write_file(&file)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.stamp = None;
        Ok(out)
    }

    fn write_file(&self, file: &AccountsFile) -> Result<(), AccountError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::private::create_dir(dir).map_err(|e| self.io_err(e))?;
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(file).map_err(|source| AccountError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        let mut out = crate::private::file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| self.io_err(e))?;
        out.write_all(&bytes).map_err(|e| self.io_err(e))?;
        out.sync_all().map_err(|e| self.io_err(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io_err(e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// On first start: when there are no accounts at all, creates `admin`
    /// with a generated password, to be changed at the first login, and
    /// returns that password (to be shown once). Returns `None` when
    /// accounts exist.
    pub fn ensure_admin(&self) -> Result<Option<String>, AccountError> {
        if !self.list()?.is_empty() {
            return Ok(None);
        }
        let password = crate::tokens::new_password();
        let spec = AccountSpec {
            display_name: Some("Admin".to_owned()),
            ..AccountSpec::default()
        };
        self.add("admin", Role::Admin, &password, &spec)?;
        self.change("admin", |account| account.must_change_password = true)?;
        Ok(Some(password))
    }
}

fn check_password(password: &str, name: &str) -> Result<(), AccountError> {
    crate::auth::policy::check(password, name)
        .map_err(|weak| AccountError::WeakPassword(weak.to_string()))
}

fn check_display_name(spec: &AccountSpec) -> Result<(), AccountError> {
    match &spec.display_name {
        Some(d) if !valid_display_name(d) => Err(AccountError::BadDisplayName(d.clone())),
        _ => Ok(()),
    }
}

fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        assert!(store.list().unwrap().is_empty());
        let a = store
            .add(
                "anna",
                Role::Counsellor,
                "correct horse battery",
                &AccountSpec {
                    capacity: Some(4),
                    ..AccountSpec::default()
                },
            )
            .unwrap();
        assert_eq!(a.display_name, "Anna");
        assert!(
            a.password_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            a.password_hash
        );
        assert!(matches!(
            store.add(
                "anna",
                Role::Admin,
                "0123456789-ok",
                &AccountSpec::default()
            ),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            store.add(
                "Anna!",
                Role::Admin,
                "0123456789-ok",
                &AccountSpec::default()
            ),
            Err(AccountError::BadName(_))
        ));
        assert!(matches!(
            store.add("bob", Role::Admin, "short", &AccountSpec::default()),
            Err(AccountError::WeakPassword(_))
        ));
        for bad in [
            "Anna\u{202E}",
            "\u{2066}Bob",
            "Ann\na",
            "\u{200B}",
            &"x".repeat(65),
        ] {
            let spec = AccountSpec {
                display_name: Some(bad.to_owned()),
                ..AccountSpec::default()
            };
            assert!(
                matches!(
                    store.add("bob", Role::Admin, "0123456789-ok", &spec),
                    Err(AccountError::BadDisplayName(_))
                ),
                "{bad:?}"
            );
            assert!(matches!(
                store.update("anna", &spec),
                Err(AccountError::BadDisplayName(_))
            ));
        }
        let b = store
            .add(
                "bob",
                Role::Supervisor,
                "another long one",
                &AccountSpec {
                    display_name: Some("Bob B.".into()),
                    ..AccountSpec::default()
                },
            )
            .unwrap();
        assert_ne!(a.id, b.id);

        let got = store.get("anna").unwrap().unwrap();
        assert!(verify_password("correct horse battery", &got.password_hash));
        assert!(!verify_password("wrong", &got.password_hash));
        store.set_password("anna", "a new long password").unwrap();
        let got = store.get("anna").unwrap().unwrap();
        assert!(verify_password("a new long password", &got.password_hash));
        let spec = AccountSpec {
            topics: Some(vec!["jongeren".into()]),
            max_capacity: Some(6),
            ..AccountSpec::default()
        };
        let updated = store.update("anna", &spec).unwrap();
        assert_eq!(
            updated.topics.as_deref(),
            Some(&["jongeren".to_owned()][..])
        );
        assert_eq!((updated.capacity, updated.max_capacity), (Some(4), Some(6)));
        store.remove("bob").unwrap();
        assert!(store.get("bob").unwrap().is_none());
        assert!(matches!(
            store.remove("bob"),
            Err(AccountError::NotFound(_))
        ));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_second_store_sees_changes_made_by_another() {
        let dir = tempfile::tempdir().unwrap();
        let server = AccountStore::new(dir.path());
        let cli = AccountStore::new(dir.path());
        assert!(server.get("anna").unwrap().is_none());
        cli.add(
            "anna",
            Role::Counsellor,
            "correct horse battery",
            &AccountSpec::default(),
        )
        .unwrap();
        assert!(server.get("anna").unwrap().is_some());
    }

    #[test]
    fn first_start_creates_admin_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        let pw = store.ensure_admin().unwrap().unwrap();
        assert_eq!(pw.len(), 20);
        assert!(store.ensure_admin().unwrap().is_none());
        let admin = store.get("admin").unwrap().unwrap();
        assert_eq!(admin.role, Role::Admin);
        assert!(verify_password(&pw, &admin.password_hash));
    }

    #[test]
    fn many_accounts_share_one_hash_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        store
            .add(
                "anna",
                Role::Counsellor,
                "correct horse battery",
                &AccountSpec::default(),
            )
            .unwrap();
        let hash = hash_password("bots-password-1").unwrap();
        let names: Vec<String> = ["bot-0", "bot-1", "anna"].map(String::from).to_vec();
        let spec = AccountSpec {
            capacity: Some(2),
            ..AccountSpec::default()
        };
        assert_eq!(
            store
                .add_many_hashed(&names, Role::Counsellor, &hash, &spec)
                .unwrap(),
            2
        );
        // Again: nothing new, and anna keeps her own password.
        assert_eq!(
            store
                .add_many_hashed(&names, Role::Counsellor, &hash, &spec)
                .unwrap(),
            0
        );
        let bot = store.get("bot-1").unwrap().unwrap();
        assert_eq!(bot.capacity, Some(2));
        assert!(verify_password("bots-password-1", &bot.password_hash));
        let anna = store.get("anna").unwrap().unwrap();
        assert!(verify_password(
            "correct horse battery",
            &anna.password_hash
        ));
        let ids: std::collections::HashSet<u64> =
            store.list().unwrap().iter().map(|a| a.id).collect();
        assert_eq!(ids.len(), 3);
        assert!(matches!(
            store.add_many_hashed(&["Bad Name".to_owned()], Role::Counsellor, &hash, &spec),
            Err(AccountError::BadName(_))
        ));
    }
}
