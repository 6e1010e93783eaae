//! This user's lock directory: the command line's default store.

use std::io;
use std::path::{Path, PathBuf};

/// This user's lock directory: `$CACHELOCK_DIR` when that is set (to an absolute path),
/// else `/tmp/cachelock-<uid>` (the effective user id). It is the command line's default
/// store; [`FileStore::for_user`](super::FileStore::for_user) opens it.
///
/// Processes exclude each other only if they compute the same directory, so it depends on
/// nothing a session sets by itself: a cron job, a systemd service, a login shell and `sudo
/// -u <user>` of one user all land in `/tmp/cachelock-<uid>` (`XDG_RUNTIME_DIR` and `TMPDIR`
/// are deliberately not consulted: cron and systemd services usually have neither, login
/// shells have both). `CACHELOCK_DIR` moves it, for every process that sets it alike (or
/// give a directory explicitly: `--store file:///path` on the command line,
/// [`FileStore::open`](super::FileStore::open) in code).
pub fn user_dir() -> PathBuf {
    user_dir_from(std::env::var_os("CACHELOCK_DIR").as_deref(), euid())
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn user_dir_from(configured: Option<&std::ffi::OsStr>, uid: u32) -> PathBuf {
    match configured.map(Path::new) {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        _ => PathBuf::from(format!("/tmp/cachelock-{uid}")),
    }
}

/// Creates `dir` (mode `0o700`) if missing, and checks that it is a directory (not a
/// symbolic link) owned by this user and writable by nobody else: in `/tmp`, another user
/// could have made it first, to read or plant lock files.
pub(super) fn prepare_user_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(refused(dir, &error.to_string(), error.kind())),
    }
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| refused(dir, &e.to_string(), e.kind()))?;
    use std::os::unix::fs::MetadataExt as _;
    check(
        meta.file_type().is_symlink(),
        meta.is_dir(),
        meta.uid(),
        meta.mode(),
        euid(),
    )
    .map_err(|reason| refused(dir, &reason, io::ErrorKind::PermissionDenied))
}

/// Why a per-user directory may not be used, if it may not.
fn check(symlink: bool, is_dir: bool, owner: u32, mode: u32, uid: u32) -> Result<(), String> {
    if symlink {
        return Err("it is a symbolic link".to_owned());
    }
    if !is_dir {
        return Err("it is not a directory".to_owned());
    }
    if owner != uid {
        return Err(format!(
            "it is owned by uid {owner}, not by this user (uid {uid})"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "other users can write to it (mode {:o}); make it 0700",
            mode & 0o7777
        ));
    }
    Ok(())
}

fn refused(dir: &Path, reason: &str, kind: io::ErrorKind) -> io::Error {
    io::Error::new(
        kind,
        format!(
            "cannot use {} as this user's lock directory: {reason}",
            dir.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn cachelock_dir_wins_when_it_is_absolute() {
        assert_eq!(
            user_dir_from(Some(OsStr::new("/run/user/1000/cachelock")), 1000),
            Path::new("/run/user/1000/cachelock")
        );
        assert_eq!(user_dir_from(None, 1000), Path::new("/tmp/cachelock-1000"));
        assert_eq!(
            user_dir_from(Some(OsStr::new("")), 7),
            Path::new("/tmp/cachelock-7")
        );
        assert_eq!(
            user_dir_from(Some(OsStr::new("relative")), 7),
            Path::new("/tmp/cachelock-7")
        );
    }

    #[test]
    fn only_a_private_directory_of_this_user_is_used() {
        assert_eq!(check(false, true, 1000, 0o40700, 1000), Ok(()));
        assert_eq!(check(false, true, 1000, 0o40755, 1000), Ok(()));
        assert!(check(true, false, 1000, 0o700, 1000)
            .unwrap_err()
            .contains("symbolic link"));
        assert!(check(false, false, 1000, 0o700, 1000)
            .unwrap_err()
            .contains("not a directory"));
        assert!(check(false, true, 0, 0o700, 1000)
            .unwrap_err()
            .contains("owned by uid 0"));
        assert!(check(false, true, 1000, 0o40777, 1000)
            .unwrap_err()
            .contains("mode 777"));
        assert!(check(false, true, 1000, 0o40720, 1000).is_err());
    }
}
