//! Files and folders only the server's own user may open: the data dir and
//! everything Haven makes in it are mode 0700 (folders) and 0600 (files),
//! whatever the umask. Other local users of the machine read nothing:
//! not the accounts, the audit log, the keys or the (sealed) transcripts'
//! names and sizes.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Makes `dir` (and any missing parents) mode 0700, and makes an existing
/// `dir` 0700 too. A folder the server does not own is left as it is, with
/// a warning.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700
            && std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_err()
        {
            tracing::warn!(
                dir = %dir.display(),
                "cannot make this folder private (mode 0700): other local users may list it"
            );
        }
    }
    Ok(())
}

/// Options that create a file with mode 0600.
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn append(path: &Path) -> io::Result<File> {
    file_options().create(true).append(true).open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn folders_and_files_are_private_whatever_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&data.join("transcripts/algemeen")).unwrap();
        create_dir(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("transcripts")), 0o700);
        assert_eq!(mode(&data.join("transcripts/algemeen")), 0o700);
        append(&data.join("audit.log")).unwrap();
        assert_eq!(mode(&data.join("audit.log")), 0o600);
    }
}
