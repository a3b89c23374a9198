//! What keeps concurrent CRI calls apart without serializing unrelated pods: a kubelet starts
//! and stops many pods at once, and a pod's start (namespaces, CNI ADD) takes tens of
//! milliseconds, so one lock over all pods would queue them.
//!
//! - One lock per pod: its lifecycle calls (stop, remove, container create) go one at a time,
//!   so a container is never created into a pod being stopped; other pods go on in parallel.
//! - Name reservations: RunPodSandbox reserves the pod's name (metadata name, namespace, uid,
//!   attempt) with the new id before it sets anything up, so two runs of one name cannot both
//!   succeed; the reservation ends when the pod is stored or its start failed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub(crate) struct PodLocks {
    pods: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    names: Mutex<HashMap<String, String>>,
}

/// Holds a pod name for a RunPodSandbox in progress; dropping it frees the name.
pub(crate) struct NameReservation<'a> {
    locks: &'a PodLocks,
    key: String,
}

impl Drop for NameReservation<'_> {
    fn drop(&mut self) {
        self.locks
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl PodLocks {
    /// Waits for the pod `id`'s lock.
    pub(crate) async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        let m = self
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    /// Drops the lock of a removed pod (its holders keep theirs until they are done).
    pub(crate) fn forget(&self, id: &str) {
        self.pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// Reserves the pod name `key` for the pod `id`, unless `taken` (asked under the same
    /// lock) names a stored pod that has it; the answer is then that pod's id, or the id of a
    /// start in progress that reserved it first.
    pub(crate) fn reserve_name(
        &self,
        key: String,
        id: &str,
        taken: impl FnOnce() -> Option<String>,
    ) -> Result<NameReservation<'_>, String> {
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(other) = names.get(&key).cloned().or_else(taken) {
            return Err(other);
        }
        names.insert(key.clone(), id.to_string());
        Ok(NameReservation { locks: self, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_name_is_reserved_once_until_released() {
        let l = PodLocks::default();
        let r = l.reserve_name("a_ns_uid_0".into(), "p1", || None).unwrap();
        assert_eq!(
            l.reserve_name("a_ns_uid_0".into(), "p2", || None).err(),
            Some("p1".to_string())
        );
        assert!(l.reserve_name("b_ns_uid_0".into(), "p3", || None).is_ok());
        drop(r);
        // Free again, unless a stored pod has it.
        assert_eq!(
            l.reserve_name("a_ns_uid_0".into(), "p4", || Some("stored".into()))
                .err(),
            Some("stored".to_string())
        );
        assert!(l.reserve_name("a_ns_uid_0".into(), "p5", || None).is_ok());
    }

    #[tokio::test]
    async fn one_pod_at_a_time_other_pods_in_parallel() {
        let l = Arc::new(PodLocks::default());
        let g = l.lock("p1").await;
        // Another pod's lock is free.
        let other = tokio::time::timeout(Duration::from_secs(5), l.lock("p2")).await;
        assert!(other.is_ok());
        // The same pod's waits for the holder.
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.lock("p1").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(g);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("released")
            .unwrap();
        l.forget("p1");
        assert!(l.pods.lock().unwrap().get("p1").is_none());
    }
}
