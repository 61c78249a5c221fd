//! The L2: [`TokenStore`]s that share a client's tokens between processes (a file) or machines
//! (Redis), one MSAL-schema document per partition.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Error;

/// Turns the stored document (or `None`) into the one to store; a store may call it more than
/// once (an optimistic store retries after a concurrent write).
pub type Merge = Arc<dyn Fn(Option<&[u8]>) -> Result<Vec<u8>, Error> + Send + Sync>;

/// Where the L1 turns on a miss before the network, and where new tokens are written: one
/// document (MSAL's unified cache schema) per partition.
///
/// Partitions: `{client_id}_{tenant}_AppTokenCache` for app tokens, the home account id for
/// a user, the assertion hash for on-behalf-of (MSAL.NET's and Go's names).
#[async_trait]
pub trait TokenStore: fmt::Debug + Send + Sync {
    /// The partition's document, if there is one.
    async fn load(&self, partition: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Replaces the partition's document with `merge(current)`, under the store's lock, so
    /// that concurrent writers (other processes, other machines) lose no update. `expires_at`
    /// is when the newest token in it expires (a TTL for stores that have one).
    async fn update(
        &self,
        partition: &str,
        merge: Merge,
        expires_at: Option<SystemTime>,
    ) -> Result<(), Error>;
}

/// A [`TokenStore`] in a directory: one JSON file per partition, mode 0600, written to a
/// temporary file and renamed into place, under an advisory lock (a `.lock` file beside it) so
/// several processes share it. Symlinks, files of another owner and files others can read are
/// refused; a corrupt file is set aside (`.corrupt-{time}`) and reported, never overwritten
/// unseen.
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir).finish()
    }
}

fn store_error(what: impl fmt::Display) -> Error {
    Error::Store(what.to_string())
}

impl FileStore {
    /// A store in `dir` (created, mode 0700, if missing).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use confidant::{Authority, ConfidentialClient, cache::FileStore};
    ///
    /// let dir = std::env::temp_dir().join(format!("confidant-doc-{}", std::process::id()));
    /// let store = FileStore::new(&dir)?;
    /// let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    /// // Every process of this service on the machine shares the app's tokens through `dir`.
    /// let client = ConfidentialClient::builder(authority, "00000000-0000-0000-0000-000000000001")
    ///     .client_secret("…")
    ///     .token_store(Arc::new(store))
    ///     .build()?;
    /// # drop(client);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), confidant::Error>(())
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(|e| store_error(format_args!("cannot create {}: {e}", dir.display())))?;
        let meta = fs::symlink_metadata(&dir)
            .map_err(|e| store_error(format_args!("{}: {e}", dir.display())))?;
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(store_error(format_args!(
                "{} is not a directory (symlinks are refused)",
                dir.display()
            )));
        }
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `{dir}/{partition}.json`, the partition made safe for a file name.
    fn path(&self, partition: &str) -> PathBuf {
        let name: String = partition
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir
            .join(format!("{}.json", name.trim_start_matches('.')))
    }

    fn lock(path: &Path) -> Result<File, Error> {
        let lock_path = path.with_extension("json.lock");
        refuse_symlink(&lock_path)?;
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options
            .open(&lock_path)
            .map_err(|e| store_error(format_args!("{}: {e}", lock_path.display())))?;
        fs4::FileExt::lock(&file)
            .map_err(|e| store_error(format_args!("cannot lock {}: {e}", lock_path.display())))?;
        Ok(file)
    }

    /// Reads `path`: `None` when missing; a corrupt document is moved aside.
    fn read(path: &Path) -> Result<Option<Vec<u8>>, Error> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(store_error(format_args!("{}: {e}", path.display()))),
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            return Err(store_error(format_args!(
                "{} is not a regular file (symlinks are refused)",
                path.display()
            )));
        }
        check_private(path, &meta)?;
        let bytes =
            fs::read(path).map_err(|e| store_error(format_args!("{}: {e}", path.display())))?;
        if !looks_like_document(&bytes) {
            let aside = path.with_extension(format!(
                "corrupt-{}",
                crate::clock::unix_seconds(SystemTime::now())
            ));
            let _ = fs::rename(path, &aside);
            tracing::warn!(
                file = %path.display(),
                moved_to = %aside.display(),
                "token cache file is corrupt; set aside"
            );
            return Ok(None);
        }
        Ok(Some(bytes))
    }
}

/// A cache document (MSAL JSON), or one an [`EncryptedStore`](super::EncryptedStore) sealed:
/// anything else in a cache file is corruption.
pub(crate) fn looks_like_document(bytes: &[u8]) -> bool {
    bytes.starts_with(SEALED_PREFIX) || crate::flows::parse_cache_document(bytes).is_ok()
}

/// What sealed documents start with (the encrypted store's format tag).
pub(crate) const SEALED_PREFIX: &[u8] = b"confidant-aes256gcm-v1:";

fn refuse_symlink(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(store_error(format_args!(
            "{} is a symlink (refused)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A cache file must be ours and not readable by others.
#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt as _;
    if meta.mode() & 0o077 != 0 {
        return Err(store_error(format_args!(
            "{} is readable or writable by others (mode {:o}); refusing it",
            path.display(),
            meta.mode() & 0o777
        )));
    }
    // Our uid: the owner of the directory we created or were given, checked against the file.
    let dir_meta = path
        .parent()
        .and_then(|dir| fs::metadata(dir).ok())
        .ok_or_else(|| store_error(format_args!("{} has no directory", path.display())))?;
    if meta.uid() != dir_meta.uid() {
        return Err(store_error(format_args!(
            "{} belongs to another user; refusing it",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<(), Error> {
    Ok(())
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, partition: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(partition);
        run_blocking(move || {
            let _lock = Self::lock(&path)?;
            Self::read(&path)
        })
        .await
    }

    async fn update(
        &self,
        partition: &str,
        merge: Merge,
        _expires_at: Option<SystemTime>,
    ) -> Result<(), Error> {
        let path = self.path(partition);
        run_blocking(move || {
            let _lock = Self::lock(&path)?;
            let current = Self::read(&path)?;
            let document = merge(current.as_deref())?;
            let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
            let mut options = OpenOptions::new();
            options.create_new(true).write(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let written = options
                .open(&temporary)
                .and_then(|mut file| {
                    file.write_all(&document)?;
                    file.sync_all()
                })
                .and_then(|()| fs::rename(&temporary, &path));
            if let Err(e) = written {
                let _ = fs::remove_file(&temporary);
                return Err(store_error(format_args!(
                    "cannot write {}: {e}",
                    path.display()
                )));
            }
            Ok(())
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(f)
            .await
            .map_err(|_| store_error("the file store task failed"))?,
        Err(_) => f(),
    }
}
