//! Where the control socket is when nothing says: `/run/tend/control.sock`, else a place of
//! the user's own. OpenShift runs images as a random uid with no `/etc/passwd` entry, and
//! many images run with a read-only root: `/run/tend` cannot be made there, and without a
//! fallback `tend status` would not work at all. tend and the client try the same places in
//! the same order, so neither needs a flag.

use crate::config::DEFAULT_SOCKET;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The places in order: the default, `$XDG_RUNTIME_DIR/tend/`, `/tmp/tend-UID/`.
pub fn places(uid: u32, env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut places = vec![PathBuf::from(DEFAULT_SOCKET)];
    if let Some(dir) = env("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        places.push(Path::new(&dir).join("tend/control.sock"));
    }
    places.push(PathBuf::from(format!("/tmp/tend-{uid}/control.sock")));
    places
}

/// The socket the client talks to when nothing names one: the first of `places` that is
/// there (it may belong to a tend that is gone: connecting says so), else the default.
pub fn find(places: &[PathBuf]) -> PathBuf {
    places
        .iter()
        .find(|p| p.exists())
        .or(places.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// A fallback place's directory, made 0700 if it is not there. One that is there must be
/// the user's own and closed to others: in `/tmp` anyone could have made it first, to read
/// or answer in tend's place.
pub fn private_dir(socket: &Path, uid: u32) -> io::Result<()> {
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of uid {uid} closed to others (owner {}, mode {:o})",
                dir.display(),
                meta.uid(),
                meta.permissions().mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_then_the_runtime_dir_then_tmp() {
        let env = |xdg: Option<&'static str>| {
            move |name: &str| {
                assert_eq!(name, "XDG_RUNTIME_DIR");
                xdg.map(OsString::from)
            }
        };
        assert_eq!(
            places(12345, env(Some("/run/user/12345"))),
            [
                PathBuf::from("/run/tend/control.sock"),
                PathBuf::from("/run/user/12345/tend/control.sock"),
                PathBuf::from("/tmp/tend-12345/control.sock"),
            ]
        );
        // An unset or relative runtime directory is no place.
        for xdg in [None, Some(""), Some("run/user")] {
            assert_eq!(
                places(7, env(xdg)),
                [
                    PathBuf::from("/run/tend/control.sock"),
                    PathBuf::from("/tmp/tend-7/control.sock"),
                ]
            );
        }
    }

    #[test]
    fn the_client_takes_the_first_socket_that_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, c] = ["a.sock", "b.sock", "c.sock"].map(|n| dir.path().join(n));
        let all = [a.clone(), b.clone(), c.clone()];
        assert_eq!(find(&all), a, "none there: the first");
        std::fs::write(&c, "").unwrap();
        assert_eq!(find(&all), c);
        std::fs::write(&b, "").unwrap();
        assert_eq!(find(&all), b);
    }

    #[test]
    fn a_fallback_directory_must_be_private_and_ours() {
        let dir = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let socket = dir.path().join("tend-x/control.sock");
        private_dir(&socket, uid).unwrap();
        let made = std::fs::metadata(dir.path().join("tend-x")).unwrap();
        assert_eq!(made.permissions().mode() & 0o777, 0o700);
        // Again: it is there, and fine.
        private_dir(&socket, uid).unwrap();
        // Opened to others, or someone else's: refused.
        let open = std::fs::Permissions::from_mode(0o777);
        std::fs::set_permissions(dir.path().join("tend-x"), open).unwrap();
        let e = private_dir(&socket, uid).unwrap_err();
        assert!(e.to_string().contains("closed to others"), "{e}");
        std::fs::set_permissions(
            dir.path().join("tend-x"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        assert!(private_dir(&socket, uid + 1).is_err());
    }
}
