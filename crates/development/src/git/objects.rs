//! Decoded git objects kept from one call to the next.
//!
//! Every git call opens its repository afresh (so config, refs and the index are read as
//! they are now), but the objects it reads are named by their content hash: a commit or
//! tree read by one `git_info` is the same bytes in the next. Re-reading them cost each call
//! an open, a read and an inflate per loose object (HEAD's trees for the status, the
//! commits of the history walk, both sides of a diff). This cache keeps them for the
//! process, for one object database at a time (the last one read from), bounded in bytes.
//!
//! Keyed by the object database as well as the id, so one repository's objects never
//! answer for another's even if ids were made to collide.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use gix::hash::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::cache::object::MemoryCappedHashmap;

/// Decoded object bytes kept, for the one object database being cached.
const OBJECT_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The cache every call of this server shares (see the module docs).
#[derive(Default)]
pub(crate) struct SharedObjects {
    slot: Mutex<Option<Slot>>,
}

struct Slot {
    /// The object database (`<common dir>/objects`) the cached objects came from.
    objects_dir: PathBuf,
    objects: MemoryCappedHashmap,
}

impl SharedObjects {
    /// Makes `repo` read through this cache (its own per-call cache is replaced).
    pub(crate) fn attach(self: &Arc<Self>, repo: &mut gix::Repository) {
        let objects_dir = repo.objects.store_ref().path().to_path_buf();
        let shared = Arc::clone(self);
        repo.objects.set_object_cache(move || {
            Box::new(View {
                shared: Arc::clone(&shared),
                objects_dir: objects_dir.clone(),
            })
        });
    }

    fn with_slot<T>(&self, work: impl FnOnce(&mut Option<Slot>) -> T) -> T {
        // A panic while holding the lock leaves at worst a partly updated LRU map of
        // immutable objects: still correct to read.
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut slot)
    }
}

/// One repository handle's view of the shared cache: its own object database only.
struct View {
    shared: Arc<SharedObjects>,
    objects_dir: PathBuf,
}

impl gix::odb::pack::cache::Object for View {
    fn put(&mut self, id: ObjectId, kind: Kind, data: &[u8]) {
        self.shared.with_slot(|slot| match slot {
            Some(kept) if kept.objects_dir == self.objects_dir => {
                kept.objects.put(id, kind, data);
            }
            // Another object database: it replaces the one cached so far.
            _ => {
                let mut objects = MemoryCappedHashmap::new(OBJECT_CACHE_BYTES);
                objects.put(id, kind, data);
                *slot = Some(Slot {
                    objects_dir: self.objects_dir.clone(),
                    objects,
                });
            }
        });
    }

    fn get(&mut self, id: &ObjectId, out: &mut Vec<u8>) -> Option<Kind> {
        self.shared.with_slot(|slot| match slot {
            Some(kept) if kept.objects_dir == self.objects_dir => kept.objects.get(id, out),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::odb::pack::cache::Object as _;

    fn view(shared: &Arc<SharedObjects>, dir: &str) -> View {
        View {
            shared: Arc::clone(shared),
            objects_dir: PathBuf::from(dir),
        }
    }

    #[test]
    fn objects_are_shared_within_one_database_and_never_across() {
        let shared = Arc::new(SharedObjects::default());
        let id = ObjectId::empty_blob(gix::hash::Kind::Sha1);
        let mut out = Vec::new();
        view(&shared, "/a/.git/objects").put(id, Kind::Blob, b"");
        // A later call on the same database (a new handle) finds it.
        assert_eq!(
            view(&shared, "/a/.git/objects").get(&id, &mut out),
            Some(Kind::Blob)
        );
        // Another database does not see it...
        assert_eq!(view(&shared, "/b/.git/objects").get(&id, &mut out), None);
        // ... and replaces it when it caches objects of its own.
        view(&shared, "/b/.git/objects").put(id, Kind::Tree, b"");
        assert_eq!(view(&shared, "/a/.git/objects").get(&id, &mut out), None);
        assert_eq!(
            view(&shared, "/b/.git/objects").get(&id, &mut out),
            Some(Kind::Tree)
        );
    }
}
