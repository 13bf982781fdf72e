//! Which service a live pid belongs to.

use super::{Pid, ServiceId};

/// Live pids and their services: a vector searched from end to end. A supervisor has a few
/// hundred children at most, and a pid is looked up once per exit, so a scan of 16-byte
/// entries costs less than hashing; and an init with one child keeps one 32-byte heap block
/// for it, where a `HashMap` takes 96 bytes and a `BTreeMap` 160 (its heap pages stay
/// touched for its whole life: see docs/architecture.md, "Memory of the single-child loop").
#[derive(Clone, Debug, Default)]
pub struct PidMap(Vec<(Pid, ServiceId)>);

impl PidMap {
    pub const fn new() -> PidMap {
        PidMap(Vec::new())
    }

    pub fn get(&self, pid: Pid) -> Option<ServiceId> {
        self.0.iter().find(|&&(p, _)| p == pid).map(|&(_, svc)| svc)
    }

    /// Records `pid` as `svc`'s, replacing what it was recorded as before.
    pub fn insert(&mut self, pid: Pid, svc: ServiceId) {
        if let Some(entry) = self.0.iter_mut().find(|(p, _)| *p == pid) {
            entry.1 = svc;
            return;
        }
        // The first entry gets a block of its own size; from there the vector grows as usual.
        if self.0.capacity() == 0 {
            self.0.reserve_exact(1);
        }
        self.0.push((pid, svc));
    }

    /// Forgets `pid`, returning the service it was recorded as.
    pub fn remove(&mut self, pid: Pid) -> Option<ServiceId> {
        let at = self.0.iter().position(|&(p, _)| p == pid)?;
        Some(self.0.swap_remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_replace_remove() {
        let mut m = PidMap::new();
        assert!(m.is_empty());
        m.insert(Pid(10), ServiceId(0));
        m.insert(Pid(11), ServiceId(1));
        m.insert(Pid(12), ServiceId(2));
        assert_eq!(m.get(Pid(11)), Some(ServiceId(1)));
        m.insert(Pid(11), ServiceId(5));
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(Pid(11)), Some(ServiceId(5)));
        assert_eq!(m.remove(Pid(10)), Some(ServiceId(0)));
        assert_eq!(m.remove(Pid(10)), None);
        assert_eq!(m.get(Pid(10)), None);
        assert_eq!(m.get(Pid(12)), Some(ServiceId(2)));
        assert_eq!(m.get(Pid(11)), Some(ServiceId(5)));
        assert_eq!(m.len(), 2);
    }
}
