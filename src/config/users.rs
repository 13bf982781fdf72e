//! User and group names, resolved by reading `passwd` and `group` files.
//!
//! Never through NSS (`getpwnam` and friends): tend is a static binary, and static glibc's
//! NSS can load shared libraries or crash (DESIGN.md, invariant 3). Container images keep
//! their accounts in these two files anyway.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// A user or group as written in the config: a name, or a number used as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id<'a> {
    Name(&'a str),
    Number(u32),
}

/// Who a `user` key resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    /// Primary group from `passwd`; `None` for a bare uid that has no entry there.
    pub gid: Option<u32>,
    /// Name from `passwd`, used to find the supplementary groups.
    pub name: Option<String>,
}

/// `name:password:uid:gid:gecos:home:shell`. Lines that do not parse (comments, NIS `+`
/// entries, damage) are skipped, as the C library skips them.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            valid_name(name).then(|| PasswdEntry {
                name: name.to_string(),
                uid,
                gid,
            })
        })
        .collect()
}

/// `name:password:gid:member,member,...`, skipping lines that do not parse.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let gid = fields.next()?.parse().ok()?;
            let members = fields
                .next()?
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            valid_name(name).then(|| GroupEntry {
                name: name.to_string(),
                gid,
                members,
            })
        })
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(['#', '+', '-']) && !name.contains(char::is_whitespace)
}

/// The account files of one directory (normally `/etc`), each read at most once and only
/// when a service needs it.
pub struct Accounts {
    etc: PathBuf,
    passwd: Option<Vec<PasswdEntry>>,
    group: Option<Vec<GroupEntry>>,
}

impl Accounts {
    pub fn new(etc: &Path) -> Accounts {
        Accounts {
            etc: etc.to_path_buf(),
            passwd: None,
            group: None,
        }
    }

    pub fn passwd_path(&self) -> PathBuf {
        self.etc.join("passwd")
    }

    pub fn group_path(&self) -> PathBuf {
        self.etc.join("group")
    }

    /// Resolves `user`. A name must be in `passwd`; a number need not be (images often run
    /// as an arbitrary uid), but when it is, its entry gives the primary group.
    pub fn user(&mut self, user: Id<'_>) -> Result<User, String> {
        let path = self.passwd_path();
        let entries = self.passwd_entries()?;
        let found = match user {
            Id::Name(name) => entries.iter().find(|e| e.name == name),
            Id::Number(uid) => entries.iter().find(|e| e.uid == uid),
        };
        match (found, user) {
            (Some(e), _) => Ok(User {
                uid: e.uid,
                gid: Some(e.gid),
                name: Some(e.name.clone()),
            }),
            (None, Id::Number(uid)) => Ok(User {
                uid,
                gid: None,
                name: None,
            }),
            (None, Id::Name(name)) => {
                Err(format!("unknown user `{name}` (not in {})", path.display()))
            }
        }
    }

    /// Resolves `group` to a gid: a name must be in `group`, a number is taken as is.
    pub fn group(&mut self, group: Id<'_>) -> Result<u32, String> {
        match group {
            Id::Number(gid) => Ok(gid),
            Id::Name(name) => {
                let path = self.group_path();
                self.group_entries()?
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| e.gid)
                    .ok_or_else(|| format!("unknown group `{name}` (not in {})", path.display()))
            }
        }
    }

    /// Every group that lists `user` as a member, in file order, without repeats: what
    /// `initgroups` would set, less the primary group, which is the gid anyway.
    pub fn supplementary(&mut self, user: &str) -> Result<Vec<u32>, String> {
        let mut gids = Vec::new();
        for e in self.group_entries()? {
            if e.members.iter().any(|m| m == user) && !gids.contains(&e.gid) {
                gids.push(e.gid);
            }
        }
        Ok(gids)
    }

    fn passwd_entries(&mut self) -> Result<&[PasswdEntry], String> {
        if self.passwd.is_none() {
            self.passwd = Some(parse_passwd(&read(&self.passwd_path())?));
        }
        Ok(self.passwd.as_deref().unwrap_or_default())
    }

    fn group_entries(&mut self) -> Result<&[GroupEntry], String> {
        if self.group.is_none() {
            self.group = Some(parse_group(&read(&self.group_path())?));
        }
        Ok(self.group.as_deref().unwrap_or_default())
    }
}

/// The file's text; a file that does not exist reads as empty (minimal images may have no
/// `/etc/group`), so what is looked up in it is simply not found.
fn read(path: &Path) -> Result<String, String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("cannot read {}: it is not valid UTF-8", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # comment\n\
                          +nis::::::\n\
                          broken:x:notanumber:1::/:/bin/sh\n\
                          www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
                          app:x:1000:1000::/home/app:/bin/sh\n\
                          app:x:1001:1001::/home/app2:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:app\nadm:x:4:root, app\napp:x:1000:\n\
                         again:x:4:app\nshort:x\n";

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("group"), GROUP).unwrap();
        let accounts = Accounts::new(dir.path());
        (dir, accounts)
    }

    #[test]
    fn parses_and_skips_bad_lines() {
        let p = parse_passwd(PASSWD);
        assert_eq!(
            p.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["root", "www-data", "app", "app"]
        );
        let g = parse_group(GROUP);
        assert_eq!(
            g[2],
            GroupEntry {
                name: "adm".into(),
                gid: 4,
                members: vec!["root".into(), "app".into()]
            }
        );
        assert_eq!(g.len(), 5);
    }

    #[test]
    fn resolves_users_by_name_and_number() {
        let (_dir, mut a) = accounts();
        let app = User {
            uid: 1000,
            gid: Some(1000),
            name: Some("app".into()),
        };
        assert_eq!(a.user(Id::Name("app")), Ok(app.clone()));
        assert_eq!(a.user(Id::Number(1000)), Ok(app));
        assert_eq!(
            a.user(Id::Number(4242)),
            Ok(User {
                uid: 4242,
                gid: None,
                name: None
            })
        );
        let err = a.user(Id::Name("nobody")).unwrap_err();
        assert!(err.starts_with("unknown user `nobody` (not in "), "{err}");
    }

    #[test]
    fn resolves_groups_and_supplementary_groups() {
        let (_dir, mut a) = accounts();
        assert_eq!(a.group(Id::Name("www-data")), Ok(33));
        assert_eq!(a.group(Id::Number(7)), Ok(7));
        assert!(
            a.group(Id::Name("wheel"))
                .unwrap_err()
                .starts_with("unknown group `wheel`")
        );
        assert_eq!(a.supplementary("app"), Ok(vec![33, 4]));
        assert_eq!(a.supplementary("root"), Ok(vec![4]));
        assert_eq!(a.supplementary("www-data"), Ok(vec![]));
    }

    #[test]
    fn missing_files_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::new(dir.path());
        assert_eq!(
            a.user(Id::Number(5)),
            Ok(User {
                uid: 5,
                gid: None,
                name: None
            })
        );
        assert!(a.user(Id::Name("app")).is_err());
        assert_eq!(a.supplementary("app"), Ok(vec![]));
    }
}
